//! The master key ring from `[secrets]` and `TESSERA_MASTER_KEY` (docs/factors.md): the key
//! that seals TOTP/HOTP seeds at rest, kept out of the database (OWASP ASVS V6.4).

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use tessera_token::seal::{KeyRing, MasterKey};
use zeroize::Zeroizing;

use crate::config::FileConfig;

/// The variable that may hold the current master key's text instead of a file.
pub(crate) const MASTER_KEY_VAR: &str = "TESSERA_MASTER_KEY";

/// The ring of the configuration: the current key from `TESSERA_MASTER_KEY` or
/// `secrets.master_key_file`, and the previous ones from `secrets.previous_master_key_files`.
/// `None` when no master key is configured. `var` reads an environment variable (the process
/// environment in `tessera`, a map in tests). Every error names the setting at fault and
/// never the key.
pub(crate) fn master_keys(
    file: &FileConfig,
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Arc<KeyRing>>> {
    let secrets = &file.secrets;
    let from_env = var(MASTER_KEY_VAR)
        .map(Zeroizing::new)
        .filter(|v| !v.trim().is_empty());
    let has_file = !secrets.master_key_file.as_os_str().is_empty();
    let current = match (from_env, has_file) {
        (Some(_), true) => bail!(
            "both {MASTER_KEY_VAR} and secrets.master_key_file = {:?} give a master key: set one",
            secrets.master_key_file.display()
        ),
        (Some(text), false) => {
            MasterKey::from_text(&text).map_err(|e| anyhow::anyhow!("{MASTER_KEY_VAR}: {e}"))?
        }
        (None, true) => read_key(&secrets.master_key_file, "secrets.master_key_file")?,
        (None, false) => {
            if !secrets.previous_master_key_files.is_empty() {
                bail!(
                    "secrets.previous_master_key_files is set but there is no current master key \
                     (secrets.master_key_file or {MASTER_KEY_VAR})"
                );
            }
            return Ok(None);
        }
    };
    let mut ids = vec![current.id_hex()];
    let mut previous = Vec::with_capacity(secrets.previous_master_key_files.len());
    for path in &secrets.previous_master_key_files {
        let key = read_key(path, "secrets.previous_master_key_files")?;
        if ids.contains(&key.id_hex()) {
            bail!(
                "secrets.previous_master_key_files: {:?} holds a key already in the ring (id {})",
                path.display(),
                key.id_hex()
            );
        }
        ids.push(key.id_hex());
        previous.push(key);
    }
    Ok(Some(Arc::new(KeyRing::new(current, previous))))
}

/// Reads one key file: it must be readable by its owner only (like an SSH private key) and
/// hold one key's text.
fn read_key(path: &Path, setting: &str) -> Result<MasterKey> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .with_context(|| format!("{setting} = {:?}: cannot read", path.display()))?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{setting} = {:?} is readable by other users (mode {mode:o}); \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    let bytes = Zeroizing::new(
        crate::input::read(path)
            .with_context(|| format!("{setting} = {:?}: cannot read", path.display()))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| anyhow::anyhow!("{setting} = {:?}: not text", path.display()))?;
    MasterKey::from_text(text).map_err(|e| anyhow::anyhow!("{setting} = {:?}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn key_file(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        path
    }

    fn err(file: &FileConfig, env: Option<&str>) -> String {
        let env = env.map(str::to_owned);
        match master_keys(file, &|_| env.clone()) {
            Ok(_) => panic!("accepted"),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn the_ring_comes_from_a_file_or_the_environment_never_both() {
        let dir = tempfile::tempdir().unwrap();
        let (_, current) = MasterKey::generate().unwrap();
        let (_, old) = MasterKey::generate().unwrap();
        let mut file = FileConfig::default();
        assert!(master_keys(&file, &|_| None).unwrap().is_none());

        let ring = master_keys(&file, &|_| Some(current.to_string()))
            .unwrap()
            .unwrap();
        assert_eq!(
            ring.current().id_hex(),
            MasterKey::from_text(&current).unwrap().id_hex()
        );

        file.secrets.master_key_file = key_file(dir.path(), "k", &format!("{}\n", *current), 0o600);
        file.secrets.previous_master_key_files = vec![key_file(dir.path(), "old", &old, 0o400)];
        let ring = master_keys(&file, &|_| None).unwrap().unwrap();
        let sealed = KeyRing::new(MasterKey::from_text(&old).unwrap(), vec![])
            .seal(b"seed", b"aad")
            .unwrap();
        assert_eq!(&*ring.open(&sealed, b"aad").unwrap(), b"seed");
        assert!(!ring.is_current(&sealed));

        let e = err(&file, Some(&current));
        assert!(
            e.contains("TESSERA_MASTER_KEY") && e.contains("set one"),
            "{e}"
        );
        assert!(!e.contains(current.as_str()));
    }

    #[test]
    fn bad_keys_and_loose_files_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (_, current) = MasterKey::generate().unwrap();
        let mut file = FileConfig::default();
        let e = err(&file, Some("not a key"));
        assert!(
            e.contains("TESSERA_MASTER_KEY") && e.contains("64 hex digits"),
            "{e}"
        );
        file.secrets.master_key_file = key_file(dir.path(), "k", &current, 0o644);
        let e = err(&file, None);
        assert!(
            e.contains("secrets.master_key_file") && e.contains("chmod 600"),
            "{e}"
        );
        file.secrets.master_key_file = key_file(dir.path(), "short", "abcd", 0o600);
        let e = err(&file, None);
        assert!(
            e.contains("secrets.master_key_file") && e.contains("32 random bytes"),
            "{e}"
        );
        file.secrets.master_key_file = key_file(dir.path(), "k2", &current, 0o600);
        file.secrets.previous_master_key_files =
            vec![key_file(dir.path(), "same", &current, 0o600)];
        let e = err(&file, None);
        assert!(e.contains("already in the ring"), "{e}");
        file.secrets.master_key_file = PathBuf::new();
        let e = err(&file, None);
        assert!(e.contains("no current master key"), "{e}");
    }
}
