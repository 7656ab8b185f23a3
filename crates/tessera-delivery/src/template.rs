//! Body templates for the webhook: strings with `{to}`, `{code}`, `{message}`, `{purpose}`
//! placeholders (`{{` and `}}` for literal braces), compiled once at configuration time.
//!
//! A JSON template is parsed first and placeholders are substituted inside its string values,
//! so a value (a message, an address) can never change the document's structure: no injection,
//! whatever it contains. Keys and non-string values are kept as written.

use serde_json::{Map, Value};
use zeroize::Zeroizing;

/// A value a placeholder stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    /// The phone number (E.164) or address.
    To,
    /// The code's digits.
    Code,
    /// The whole text: "Your … code is 123456. It expires in 5 minutes."
    Message,
    /// `sign_in` or `verify_address`.
    Purpose,
}

/// The placeholders' names, for error messages.
pub(crate) const PLACEHOLDERS: &str = "{to}, {code}, {message}, {purpose}";

/// The values substituted for one message.
pub(crate) struct Values<'a> {
    pub(crate) to: &'a str,
    pub(crate) code: &'a str,
    pub(crate) message: &'a str,
    pub(crate) purpose: &'a str,
}

impl Values<'_> {
    fn get(&self, field: Field) -> &str {
        match field {
            Field::To => self.to,
            Field::Code => self.code,
            Field::Message => self.message,
            Field::Purpose => self.purpose,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Field(Field),
}

/// One templated string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Text(Vec<Segment>);

impl Text {
    /// Compiles `s`; the error names the position and what is wrong.
    pub(crate) fn parse(s: &str) -> Result<Text, String> {
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut chars = s.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let rest = s.get(i + 1..).unwrap_or("");
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed '{{' at byte {i} in {s:?} (write {{{{ for a literal brace)"
                        ));
                    };
                    let name = rest.get(..end).unwrap_or("");
                    let field = match name {
                        "to" => Field::To,
                        "code" => Field::Code,
                        "message" => Field::Message,
                        "purpose" => Field::Purpose,
                        other => {
                            return Err(format!(
                                "unknown placeholder {{{other}}} in {s:?}; the placeholders are \
                                 {PLACEHOLDERS} (write {{{{ for a literal brace)"
                            ));
                        }
                    };
                    if !text.is_empty() {
                        segments.push(Segment::Text(std::mem::take(&mut text)));
                    }
                    segments.push(Segment::Field(field));
                    // Skip the name and the closing brace.
                    for _ in 0..=name.chars().count() {
                        chars.next();
                    }
                }
                '}' => {
                    return Err(format!(
                        "unmatched '}}' at byte {i} in {s:?} (write }}}} for a literal brace)"
                    ));
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Text(segments))
    }

    /// Whether the text uses `field`.
    pub(crate) fn uses(&self, field: Field) -> bool {
        self.0.contains(&Segment::Field(field))
    }

    /// The text with the values in place.
    pub(crate) fn render(&self, values: &Values<'_>) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::new());
        for segment in &self.0 {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Field(f) => out.push_str(values.get(*f)),
            }
        }
        out
    }
}

/// A JSON document whose string values are templates.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    /// A number, boolean or null, kept as written.
    Literal(Value),
    /// A string value, templated.
    String(Text),
    /// An array.
    Array(Vec<Json>),
    /// An object (keys kept as written, in order).
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses the JSON text `s` and compiles every string value in it.
    pub(crate) fn parse(s: &str) -> Result<Json, String> {
        let value: Value =
            serde_json::from_str(s).map_err(|e| format!("is not valid JSON: {e}"))?;
        if !value.is_object() {
            return Err("must be a JSON object ({...})".into());
        }
        Json::compile(value)
    }

    fn compile(value: Value) -> Result<Json, String> {
        Ok(match value {
            Value::String(s) => Json::String(Text::parse(&s)?),
            Value::Array(items) => Json::Array(
                items
                    .into_iter()
                    .map(Json::compile)
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Json::Object(
                map.into_iter()
                    .map(|(k, v)| {
                        if k.contains(['{', '}']) {
                            return Err(format!(
                                "placeholders go in string values, not in the key {k:?}"
                            ));
                        }
                        Ok((k, Json::compile(v)?))
                    })
                    .collect::<Result<_, String>>()?,
            ),
            other => Json::Literal(other),
        })
    }

    /// Whether any string value uses `field`.
    pub(crate) fn uses(&self, field: Field) -> bool {
        match self {
            Json::Literal(_) => false,
            Json::String(t) => t.uses(field),
            Json::Array(items) => items.iter().any(|j| j.uses(field)),
            Json::Object(entries) => entries.iter().any(|(_, j)| j.uses(field)),
        }
    }

    /// The document with the values in place, serialised.
    pub(crate) fn render(&self, values: &Values<'_>) -> Zeroizing<Vec<u8>> {
        let value = self.value(values);
        // Serialising a `Value` built from valid parts cannot fail (no non-string keys, no
        // non-finite floats: they came from parsed JSON).
        Zeroizing::new(serde_json::to_vec(&value).unwrap_or_default())
    }

    fn value(&self, values: &Values<'_>) -> Value {
        match self {
            Json::Literal(v) => v.clone(),
            Json::String(t) => Value::String(t.render(values).to_string()),
            Json::Array(items) => Value::Array(items.iter().map(|j| j.value(values)).collect()),
            Json::Object(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, j)| (k.clone(), j.value(values)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            to: "+447700900123",
            code: "123456",
            message: "Your \"Tessera\" code is 123456.\n",
            purpose: "sign_in",
        }
    }

    #[test]
    fn placeholders_and_escapes() {
        let t = Text::parse("{{literal}} {to}: {message}").expect("valid");
        assert_eq!(
            t.render(&values()).as_str(),
            "{literal} +447700900123: Your \"Tessera\" code is 123456.\n"
        );
        assert!(t.uses(Field::Message) && !t.uses(Field::Code));
        for (bad, says) in [
            ("{phone}", "unknown placeholder {phone}"),
            ("{to", "unclosed '{' at byte 0"),
            ("a}b", "unmatched '}' at byte 1"),
            ("{}", "unknown placeholder {}"),
        ] {
            let e = Text::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn json_values_are_substituted_as_strings_so_nothing_is_injected() {
        let t = Json::parse(
            r#"{"to":"{to}","text":"{message}","n":[1,"{code}",true,null],"o":{"p":"{purpose}"}}"#,
        )
        .expect("valid");
        let mut v = values();
        v.message = "\",\"admin\":true,\"x\":\"";
        let body = t.render(&v);
        let parsed: Value = serde_json::from_slice(&body).expect("valid JSON out");
        assert_eq!(parsed["text"], "\",\"admin\":true,\"x\":\"");
        assert!(parsed.get("admin").is_none());
        assert_eq!(parsed["n"][1], "123456");
        assert_eq!(parsed["n"][0], 1);
        assert_eq!(parsed["o"]["p"], "sign_in");
        assert!(t.uses(Field::To) && t.uses(Field::Code));
    }

    #[test]
    fn bad_json_templates_are_refused() {
        for (bad, says) in [
            ("{\"to\": {to}}", "not valid JSON"),
            ("[\"{to}\"]", "must be a JSON object"),
            ("{\"{to}\": 1}", "not in the key"),
            ("{\"a\": \"{number}\"}", "unknown placeholder {number}"),
        ] {
            let e = Json::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
