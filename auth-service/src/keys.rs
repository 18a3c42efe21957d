//! The key directory (`docs/ARCHITECTURE.md` § Keys): RSA keys as `*.pem` files and the refresh-token
//! secret, generated on first start when allowed.
//!
//! * Every `*.pem` holding a PKCS#8 `PRIVATE KEY` or a `PUBLIC KEY` is published in the
//!   JWKS and accepted for verification.
//! * The signing key is the private key whose file name sorts last. Generated keys are
//!   named `signing-<UTC timestamp>.pem`, so dropping in a newer key and restarting rotates
//!   signing while tokens signed by the old key stay valid until they expire.
//! * `refresh-token.secret` holds the HMAC key refresh tokens are derived with; it never
//!   leaves this directory (Redis holds no usable token material).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::{SecureRandom as _, SystemRandom};
use secrecy::ExposeSecret as _;
use shared_claims::protocol::{Clock as _, SystemClock};
use shared_claims::{JwkSet, RsaPublicKey, RsaSigningKey, generate_rsa_pkcs8_pem};

use crate::configuration::KeySettings;

/// Name of the refresh-token secret inside the key directory.
pub const REFRESH_SECRET_FILE: &str = "refresh-token.secret";

/// Bits of generated RSA keys.
const GENERATED_KEY_BITS: usize = 2048;

/// The loaded keys.
pub struct KeyMaterial {
    /// Signs every access token.
    pub signing: RsaSigningKey,
    /// Every public key, the signing key's first: what the JWKS publishes.
    pub public_keys: Vec<RsaPublicKey>,
    /// HMAC key of refresh tokens.
    pub refresh_secret: Vec<u8>,
    /// Whether the secret was created just now: then every refresh token issued before
    /// (if any) has become invalid, which the caller checks against the session store.
    pub refresh_secret_generated: bool,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The refresh secret never goes into a log line.
        f.debug_struct("KeyMaterial")
            .field("signing", &self.signing)
            .field("public_keys", &self.public_keys.len())
            .finish_non_exhaustive()
    }
}

impl KeyMaterial {
    /// The JWK Set to serve.
    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.public_keys.iter().map(RsaPublicKey::to_jwk).collect(),
        }
    }
}

/// Loads the directory, first generating a key and a secret in it if it has none and
/// `generate_if_missing` allows.
pub fn load_or_generate(settings: &KeySettings) -> anyhow::Result<KeyMaterial> {
    let dir = &settings.dir;
    if settings.generate_if_missing {
        fs::create_dir_all(dir)
            .with_context(|| format!("cannot create key directory {}", dir.display()))?;
    }
    let mut files = pem_files(dir)?;
    if !files.iter().any(|(_, text)| text.contains("PRIVATE KEY")) {
        if !settings.generate_if_missing {
            bail!(
                "no private key in {} and keys.generate_if_missing is false",
                dir.display()
            );
        }
        let path = generate_key(dir)?;
        tracing::info!(path = %path.display(), "generated a new RSA signing key");
        files = pem_files(dir)?;
    }

    let mut signing = None;
    let mut public_keys = Vec::new();
    for (path, text) in &files {
        if text.contains("PRIVATE KEY") {
            refuse_if_readable_by_others(path)?;
            let key = RsaSigningKey::from_pkcs8_pem(text)
                .with_context(|| format!("cannot load private key {}", path.display()))?;
            public_keys.push(key.public_key().clone());
            signing = Some(key);
        } else {
            let key = RsaPublicKey::from_spki_pem(text)
                .with_context(|| format!("cannot load public key {}", path.display()))?;
            public_keys.push(key);
        }
    }
    let signing = signing.context("no private key found")?;
    let mut seen = std::collections::HashSet::new();
    public_keys.retain(|k| seen.insert(k.thumbprint()));
    public_keys.sort_by_key(|k| k != signing.public_key());

    let (refresh_secret, refresh_secret_generated) =
        load_or_generate_secret(dir, settings.generate_if_missing)?;
    tracing::info!(kid = signing.kid(), keys = public_keys.len(), "keys loaded");
    Ok(KeyMaterial {
        signing,
        public_keys,
        refresh_secret,
        refresh_secret_generated,
    })
}

/// `*.pem` files with their text, sorted by file name.
fn pem_files(dir: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let mut files = Vec::new();
    let entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read key directory {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "pem") && path.is_file() {
            let text = fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push((path, text));
        }
    }
    files.sort();
    Ok(files)
}

fn generate_key(dir: &Path) -> anyhow::Result<PathBuf> {
    let pem = generate_rsa_pkcs8_pem(GENERATED_KEY_BITS).context("RSA key generation failed")?;
    let name = format!(
        "signing-{}-{}.pem",
        chrono::DateTime::from_timestamp_millis(SystemClock.now_ms())
            .unwrap_or_default()
            .format("%Y%m%dT%H%M%S%.3fZ"),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let path = dir.join(name);
    write_private_file(&path, pem.expose_secret().as_bytes())?;
    Ok(path)
}

/// The secret, and whether it was generated now.
fn load_or_generate_secret(dir: &Path, generate: bool) -> anyhow::Result<(Vec<u8>, bool)> {
    let path = dir.join(REFRESH_SECRET_FILE);
    if path.exists() {
        refuse_if_readable_by_others(&path)?;
        let text =
            fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let secret = STANDARD
            .decode(text.trim())
            .with_context(|| format!("{} is not base64", path.display()))?;
        if secret.len() < 32 {
            bail!("{} must hold at least 32 bytes", path.display());
        }
        return Ok((secret, false));
    }
    if !generate {
        bail!(
            "{} is missing and keys.generate_if_missing is false",
            path.display()
        );
    }
    let mut secret = vec![0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| anyhow::anyhow!("the system random generator failed"))?;
    write_private_file(&path, format!("{}\n", STANDARD.encode(&secret)).as_bytes())?;
    tracing::info!(path = %path.display(), "generated a new refresh-token secret");
    Ok((secret, true))
}

/// Writes a file readable by its owner only, atomically (a reader never sees half a key)
/// and never over an existing file.
fn write_private_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension(format!("{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    let linked = fs::hard_link(&tmp, path);
    fs::remove_file(&tmp)?;
    linked.with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// A private key or secret that group or others can read may already have been copied:
/// refuse to start on it rather than sign with it.
fn refuse_if_readable_by_others(path: &Path) -> anyhow::Result<()> {
    let mode = fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "{} is readable by group or others (mode {:o}); a secret must be readable by \
             its owner only: run `chmod 600 {}` (and consider it compromised if others \
             could read it)",
            path.display(),
            mode & 0o777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_directory_gets_a_private_key_and_secret_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let settings = KeySettings {
            dir: dir.path().join("keys"),
            generate_if_missing: true,
        };
        let first = load_or_generate(&settings).unwrap();
        let files: Vec<_> = fs::read_dir(&settings.dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2, "{files:?}");
        for file in &files {
            assert_eq!(
                fs::metadata(file).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(first.signing.public_key().bits(), 2048);
        assert_eq!(first.signing.kid(), first.signing.public_key().thumbprint());

        // A restart reuses what is there.
        let second = load_or_generate(&settings).unwrap();
        assert_eq!(second.signing.kid(), first.signing.kid());
        assert_eq!(second.refresh_secret, first.refresh_secret);
    }

    #[test]
    fn a_private_key_or_secret_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = KeySettings {
            dir: dir.path().to_owned(),
            generate_if_missing: true,
        };
        let first = load_or_generate(&settings).unwrap();
        assert!(first.refresh_secret_generated);
        assert!(
            !load_or_generate(&settings)
                .unwrap()
                .refresh_secret_generated
        );
        let key = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "pem"))
            .unwrap();
        let secret = dir.path().join(REFRESH_SECRET_FILE);

        for (path, mode) in [(&key, 0o640), (&key, 0o604), (&secret, 0o644)] {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
            let error = load_or_generate(&settings).unwrap_err().to_string();
            assert!(error.contains("readable by group or others"), "{error}");
            assert!(error.contains("chmod 600"), "{error}");
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(load_or_generate(&settings).is_ok());
    }

    #[test]
    fn without_generation_an_empty_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let settings = KeySettings {
            dir: dir.path().to_owned(),
            generate_if_missing: false,
        };
        assert!(load_or_generate(&settings).is_err());
    }

    #[test]
    fn the_last_private_key_by_name_signs_and_every_key_is_published() {
        let dir = tempfile::tempdir().unwrap();
        let settings = KeySettings {
            dir: dir.path().to_owned(),
            generate_if_missing: true,
        };
        let old = load_or_generate(&settings).unwrap();
        // A newer key dropped in by the operator.
        let newer = generate_key(dir.path()).unwrap();
        fs::rename(&newer, dir.path().join("zz-newest.pem")).unwrap();
        let rotated = load_or_generate(&settings).unwrap();
        assert_ne!(rotated.signing.kid(), old.signing.kid());
        let kids: Vec<_> = rotated
            .jwks()
            .keys
            .into_iter()
            .filter_map(|k| k.kid)
            .collect();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0], rotated.signing.kid());
        assert!(kids.contains(&old.signing.kid().to_owned()));
    }
}
