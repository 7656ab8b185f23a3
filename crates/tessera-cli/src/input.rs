//! Reading files and arguments with size caps, and writing secrets with safe permissions.

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// The largest key, claims or token file read.
pub(crate) const MAX_INPUT: u64 = 1024 * 1024;

/// Reads a file (or stdin for `-`), refusing anything over [`MAX_INPUT`].
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut buf))
            .with_context(|| format!("reading {}", path.display()))?;
    }
    if buf.len() as u64 > MAX_INPUT {
        bail!("{} is larger than 1 MiB", path.display());
    }
    Ok(buf)
}

/// Reads a UTF-8 text file (or stdin for `-`).
pub(crate) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read(path)?).with_context(|| format!("{} is not UTF-8", path.display()))
}

/// Writes a secret file readable only by its owner (mode 0600), refusing to overwrite one.
pub(crate) fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {} (it must not exist yet)", path.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Parses a duration such as `90`, `30s`, `15m`, `12h` or `7d` into seconds (1 s to 366 days).
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 30s, 15m, 12h or 7d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: unit must be s, m, h or d")),
    };
    match n.checked_mul(scale) {
        Some(s) if (1..=366 * 86_400).contains(&s) => Ok(s),
        _ => Err(format!("`{text}` must be between 1s and 366d")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        for bad in [
            "",
            "0s",
            "15x",
            "m",
            "-1s",
            "99999999999999999999d",
            "400d",
            "1.5h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
