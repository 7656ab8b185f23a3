//! `tessera keys …`: generate, convert and publish keys.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use tessera_token::{Algorithm, Jwk, JwkSet, KeySet};

use crate::Failure;
use crate::input;

#[derive(clap::Subcommand, Debug)]
pub(crate) enum KeysCommand {
    /// Generate a private key and print it as a JWK (with `kid` and `alg`).
    Generate {
        /// Algorithm the key is bound to: HS256/384/512, RS256/384/512, PS256/384/512,
        /// ES256/384/512 or EdDSA.
        #[arg(long)]
        alg: Algorithm,
        /// Key id; defaults to the RFC 7638 thumbprint.
        #[arg(long)]
        kid: Option<String>,
        /// RSA modulus size in bits: 2048, 3072, 4096 or 8192.
        #[arg(long, default_value_t = 2048)]
        rsa_bits: usize,
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Turn private JWKs (or JWK Sets) into the public JWK Set to publish.
    Public {
        /// Files holding a JWK or a JWK Set; `-` or nothing reads standard input.
        files: Vec<PathBuf>,
    },
    /// Print a key's RFC 7638 SHA-256 thumbprint.
    Thumbprint {
        /// File holding one JWK.
        file: PathBuf,
    },
    /// Convert a PEM key (PKCS#8 `PRIVATE KEY` or SPKI `PUBLIC KEY`) into a JWK.
    FromPem {
        /// The PEM file.
        file: PathBuf,
        /// Algorithm to bind. Required for RSA keys (RS* or PS*); EC and Ed25519 keys default to
        /// the algorithm of their curve.
        #[arg(long)]
        alg: Option<Algorithm>,
        /// Key id; defaults to the RFC 7638 thumbprint.
        #[arg(long)]
        kid: Option<String>,
    },
    /// Convert a JWK into PEM (PKCS#8 for private keys, SPKI for public keys).
    ToPem {
        /// File holding one JWK.
        file: PathBuf,
    },
    /// Generate a master key (64 hex digits) for `[secrets] master_key_file` or
    /// `TESSERA_MASTER_KEY`: it seals second-factor seeds (docs/factors.md).
    GenerateMaster {
        /// Write the key to this new file (mode 0600) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Re-seal every second-factor seed under the current master key, in one transaction
    /// (the old key must be listed in `[secrets] previous_master_key_files`).
    RotateMaster(crate::factors::RotateArgs),
}

pub(crate) fn run(cmd: KeysCommand) -> Result<(), Failure> {
    match cmd {
        KeysCommand::Generate {
            alg,
            kid,
            rsa_bits,
            out,
        } => {
            let jwk = Jwk::generate_with(alg, kid, rsa_bits).context("generating the key")?;
            let json = jwk.to_json() + "\n";
            match out {
                Some(path) => {
                    input::write_secret(&path, json.as_bytes())?;
                    eprintln!(
                        "tessera: wrote {alg} key `{}` to {}",
                        jwk.kid().unwrap_or_default(),
                        path.display()
                    );
                }
                None => print!("{json}"),
            }
        }
        KeysCommand::Public { files } => {
            let files = if files.is_empty() {
                vec![PathBuf::from("-")]
            } else {
                files
            };
            let mut all = JwkSet::default();
            for file in &files {
                let bytes = input::read(file)?;
                let set = JwkSet::from_json_or_single(&bytes).with_context(|| {
                    format!("{} holds no usable JWK or JWK Set", file.display())
                })?;
                all.keys.extend(set.keys);
            }
            let public = all
                .to_public()
                .context("a symmetric (oct) key has no public half and must never be published")?;
            // Refuse to publish a set that verifiers would reject (duplicate kids, no alg, ...).
            KeySet::from_jwks(&public).context("the keys do not form a usable JWK Set")?;
            println!("{}", public.to_json());
        }
        KeysCommand::Thumbprint { file } => println!("{}", read_jwk(&file)?.thumbprint()),
        KeysCommand::FromPem { file, alg, kid } => {
            let text = input::read_text(&file)?;
            let jwk = Jwk::from_pem(&text, alg, kid)
                .with_context(|| format!("{} is not a usable PEM key", file.display()))?;
            if jwk.algorithm().is_err() {
                return Err(Failure::Usage(anyhow::anyhow!(
                    "{} is an RSA key: give --alg (RS256/384/512 or PS256/384/512)",
                    file.display()
                )));
            }
            println!("{}", jwk.to_json());
        }
        KeysCommand::GenerateMaster { out } => {
            let (key, text) = tessera_token::seal::MasterKey::generate()
                .map_err(|e| anyhow::anyhow!("generating the master key: {e}"))?;
            match out {
                Some(path) => {
                    input::write_secret(&path, format!("{}\n", *text).as_bytes())?;
                    eprintln!(
                        "tessera: wrote master key {} to {}",
                        key.id_hex(),
                        path.display()
                    );
                }
                None => println!("{}", *text),
            }
        }
        KeysCommand::RotateMaster(args) => crate::factors::rotate_master(args)?,
        KeysCommand::ToPem { file } => {
            let pem = read_jwk(&file)?.to_pem().context("converting to PEM")?;
            print!("{pem}");
        }
    }
    Ok(())
}

/// Reads one JWK from a file.
pub(crate) fn read_jwk(file: &std::path::Path) -> Result<Jwk> {
    let bytes = input::read(file)?;
    match Jwk::from_json(&bytes) {
        Ok(jwk) => Ok(jwk),
        Err(e) if bytes.starts_with(b"-----BEGIN") => {
            bail!(
                "{} is PEM; convert it with `tessera keys from-pem` ({e})",
                file.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("{} is not a usable JWK", file.display())),
    }
}
