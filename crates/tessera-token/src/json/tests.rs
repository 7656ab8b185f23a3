use super::*;

fn check(json: &str) -> Result<(), Error> {
    check_object(json.as_bytes(), Part::Payload, 4)
}

fn reason(json: &str) -> JsonReason {
    match check(json) {
        Err(Error::Json { reason, .. }) => reason,
        other => panic!("{json}: {other:?}"),
    }
}

#[test]
fn accepts_plain_objects() {
    check(r#"{"a":1,"b":[true,null,"x",{"c":1.5}]}"#).expect("valid");
    check(" {} ").expect("whitespace around");
}

#[test]
fn rejects_duplicates_at_any_level_and_through_escapes() {
    assert_eq!(reason(r#"{"a":1,"a":1}"#), JsonReason::DuplicateMember);
    assert_eq!(
        reason(r#"{"x":[{"a":1,"a":2}]}"#),
        JsonReason::DuplicateMember
    );
    assert_eq!(reason(r#"{"a":1,"\u0061":2}"#), JsonReason::DuplicateMember);
}

#[test]
fn large_objects_switch_to_the_hash_set_and_still_catch_duplicates() {
    let many: Vec<String> = (0..100).map(|i| format!(r#""k{i}":{i}"#)).collect();
    check(&format!("{{{}}}", many.join(","))).expect("100 distinct names");
    assert_eq!(
        reason(&format!(r#"{{{},"k3":0}}"#, many.join(","))),
        JsonReason::DuplicateMember
    );
    assert_eq!(
        reason(&format!(r#"{{{},"k99":0}}"#, many.join(","))),
        JsonReason::DuplicateMember
    );
}

#[test]
fn caps_depth_and_requires_an_object() {
    check(r#"{"a":[[["x"]]]}"#).expect("depth 4");
    assert_eq!(reason(r#"{"a":[[[["x"]]]]}"#), JsonReason::TooDeep);
    assert_eq!(reason(r#"{"a":{"b":{"c":{"d":{}}}}}"#), JsonReason::TooDeep);
    for not_object in ["[]", "1", "\"s\"", "null", "true"] {
        assert_eq!(reason(not_object), JsonReason::NotObject, "{not_object}");
    }
    for syntax in [
        "",
        "{",
        "{}{}",
        "{'a':1}",
        "{\"a\":01}",
        "{\"a\":NaN}",
        "{\"a\":\"\\ud800\"}",
    ] {
        assert_eq!(reason(syntax), JsonReason::Syntax, "{syntax}");
    }
}

#[test]
fn deep_input_is_stopped_by_the_cap_not_the_stack() {
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(reason(&deep), JsonReason::TooDeep);
}
