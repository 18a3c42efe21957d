//! The credentials file: where it lives, how it is written (atomically and durably, mode
//! 0600), and the lock that serialises read-refresh-write across processes.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// What a login leaves behind.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Who logged in.
    pub username: String,
    /// The auth-service that issued the tokens.
    pub auth_url: String,
    /// The current access token.
    pub access_token: String,
    /// The current refresh token.
    pub refresh_token: String,
    /// When the access token expires, Unix seconds (client clock).
    pub access_expires_at: i64,
    /// When the refresh token expires unless used, Unix seconds (client clock).
    pub refresh_expires_at: i64,
    /// Granted scope.
    pub scope: String,
    /// The DPoP key (PKCS#8, base64) the session is bound to; `None` for a bearer session
    /// (`--no-dpop`). It is what makes the tokens above useless to anyone else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("auth_url", &self.auth_url)
            .field("access_expires_at", &self.access_expires_at)
            .finish_non_exhaustive()
    }
}

/// The default location: the platform config directory (`~/.config/client-cli` on Linux).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "client-cli")
        .map(|d| d.config_dir().join("credentials.json"))
}

/// The credentials file at one path.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    path: PathBuf,
}

/// Holds the store's lock until dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl CredentialStore {
    /// A store at `path` (nothing is touched yet).
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn problem(&self, problem: impl Into<String>) -> CliError {
        CliError::Credentials {
            path: self.path.display().to_string(),
            problem: problem.into(),
        }
    }

    /// Reads the credentials; `None` when there are none. Refuses a file that group or
    /// others can read or write: someone may have copied the tokens.
    pub fn load(&self) -> Result<Option<Credentials>, CliError> {
        let meta = match fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.problem(e.to_string())),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(self.problem(format!(
                "permissions are {mode:o}, but must be 600 (readable by you only); \
                 fix with `chmod 600 {}` or log in again",
                self.path.display()
            )));
        }
        let text = fs::read_to_string(&self.path).map_err(|e| self.problem(e.to_string()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|_| self.problem("not valid credentials; log in again"))
    }

    /// Writes the credentials atomically (temporary file, then rename) with mode 0600,
    /// and durably: the file's data and then its directory entry are synced, so after a
    /// crash or power loss the path holds either the old or the new tokens, never an
    /// empty file (which would mean a session rotated on the server but lost here).
    pub fn save(&self, credentials: &Credentials) -> Result<(), CliError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.problem(e.to_string()))?;
        let tmp = dir.join(format!(
            ".credentials-{}.tmp",
            uuid::Uuid::new_v4().simple()
        ));
        let json =
            serde_json::to_vec_pretty(credentials).map_err(|e| self.problem(e.to_string()))?;
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut file| {
                file.write_all(&json)?;
                file.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(self.problem(e.to_string()));
        }
        // The rename lives in the directory: sync it too.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| self.problem(format!("cannot sync its directory: {e}")))
    }

    /// Deletes the credentials; absent is fine.
    pub fn delete(&self) -> Result<(), CliError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.problem(e.to_string())),
        }
    }

    /// The lock file next to the credentials: `<file>.lock`.
    pub fn lock_path(&self) -> PathBuf {
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        PathBuf::from(lock_path)
    }

    /// Takes the exclusive lock on [`Self::lock_path`], waiting for another process to
    /// release it. Blocking, so run it off the async executor.
    ///
    /// A symbolic link at the lock path is refused (`O_NOFOLLOW`) rather than followed:
    /// otherwise whoever planted it could make us create files wherever the link points.
    pub fn lock(&self) -> Result<StoreLock, CliError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(dir).map_err(|e| self.problem(e.to_string()))?;
        let lock_path = self.lock_path();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    self.problem(format!(
                        "its lock file {} is a symbolic link; remove it",
                        lock_path.display()
                    ))
                } else {
                    self.problem(format!("cannot open its lock file: {e}"))
                }
            })?;
        file.lock()
            .map_err(|e| self.problem(format!("cannot lock: {e}")))?;
        Ok(StoreLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Credentials {
        Credentials {
            username: "alice".into(),
            auth_url: "http://localhost:8080".into(),
            access_token: "a.b.c".into(),
            refresh_token: "r".into(),
            access_expires_at: 1,
            refresh_expires_at: 2,
            scope: "read".into(),
            dpop_key: Some("c2VjcmV0LWtleQ".into()),
        }
    }

    #[test]
    fn saved_credentials_are_private_and_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("sub").join("credentials.json"));

        store.save(&sample()).unwrap();

        let mode = fs::metadata(store.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.load().unwrap(), Some(sample()));
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path().join("sub")).unwrap().count(), 1);
    }

    #[test]
    fn a_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials.json"));
        store.save(&sample()).unwrap();
        fs::set_permissions(store.path(), fs::Permissions::from_mode(0o644)).unwrap();

        let error = store.load().unwrap_err();

        assert!(error.to_string().contains("must be 600"), "{error}");
    }

    #[test]
    fn missing_credentials_are_none_and_delete_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials.json"));
        assert_eq!(store.load().unwrap(), None);
        store.delete().unwrap();
        store.save(&sample()).unwrap();
        store.delete().unwrap();
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_symlink_at_the_lock_path_is_refused_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = CredentialStore::new(dir.path().join("credentials.json"));
        let target = dir.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, store.lock_path()).unwrap();

        let error = store.lock().unwrap_err();

        assert!(error.to_string().contains("symbolic link"), "{error}");
        assert!(!target.exists(), "the link's target was not created");
    }

    #[test]
    fn debug_output_shows_no_tokens() {
        let text = format!("{:?}", sample());
        assert!(!text.contains("a.b.c"));
        assert!(!text.contains("c2VjcmV0LWtleQ"));
    }
}
