//! Argon2id password hashing in a fixed amount of memory.
//!
//! Each Argon2id hash with the OWASP parameters (m = 19 MiB, t = 2, p = 1) works in a
//! 19 MiB matrix. Letting every login allocate its own made the allocator keep those
//! matrices in per-thread arenas after a burst (1.2 GB after two bursts of 100 logins),
//! so a client within the rate limits could get the service killed in a small container.
//! Here the matrices are allocated once, at start: one [`Block`] array per
//! *hash permit*, handed to a hash with its permit and given back when the hash ends.
//! No login allocates more than a few hundred bytes for its hash, whatever the load.
//!
//! In front of the permits sits a bounded wait: at most `max_waiting` logins and
//! registrations wait for one; the next gets [`HashError::Busy`] (503 with
//! `Retry-After`) at once. Other requests (refresh, logout, JWKS) never come here.
//!
//! A permit and its memory travel *into* the blocking task, so a client that hangs up
//! while its hash runs cannot free a permit early and let a further hash start: at most
//! `max_concurrent_hashes` hashes run and at most that many blocks exist, always.
//!
//! Stored hashes are standard Argon2 PHC strings; verifying parses one, runs Argon2 with
//! its salt and parameters in a pool block and compares the outputs in constant time. A
//! hash whose parameters need more memory than a block holds is refused with an error
//! saying so, never given a larger allocation.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context as _, anyhow, bail};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::configuration::PasswordSettings;

/// Argon2 memory cost of new hashes, in KiB: 19 MiB, the OWASP minimum for Argon2id.
pub const M_COST_KIB: u32 = 19 * 1024;
/// Argon2 passes over memory of new hashes.
pub const T_COST: u32 = 2;
/// Argon2 lanes of new hashes.
pub const P_COST: u32 = 1;
/// Bytes of one pool block: the memory one hash works in.
pub const BLOCK_BYTES: usize = M_COST_KIB as usize * 1024;
/// Salt length of new hashes (the PHC recommendation).
const SALT_BYTES: usize = 16;
/// Output length of new hashes.
const OUTPUT_BYTES: usize = 32;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every permit is in use and `passwords.max_waiting` requests already wait: the
    /// caller gets a 503 with `Retry-After` at once instead of joining the queue.
    #[error("too many password checks are waiting")]
    Busy,
    /// Our own failure, or a stored hash this pool cannot check.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// One pool block: the Argon2 matrix of one running hash.
type Memory = Box<[Block]>;

/// Argon2id hashing and verification on the blocking pool, in pre-allocated memory,
/// behind a bounded wait.
#[derive(Debug, Clone)]
pub struct Passwords {
    /// A hash of a random password, verified against when the user does not exist so
    /// that unknown usernames cost the same time as wrong passwords.
    dummy_hash: Arc<str>,
    pool: Arc<Pool>,
}

#[derive(Debug)]
struct Pool {
    /// Hashes running, plus requests waiting for a permit: `permits + max_waiting`.
    /// Failing to get one of these is the immediate 503.
    admission: Arc<Semaphore>,
    /// One per block: holding one means a block is free for you in `free`.
    hashing: Arc<Semaphore>,
    /// The blocks not lent out; one per idle permit.
    free: Arc<Mutex<Vec<Memory>>>,
    /// Blocks in the pool, for error messages.
    permits: usize,
}

/// A block lent to one hash, with the permits that let it run. Dropping it (when the
/// blocking task ends, even by panic) returns the block before releasing the permits.
struct Lease {
    memory: Option<Memory>,
    free: Arc<Mutex<Vec<Memory>>>,
    _hashing: OwnedSemaphorePermit,
    _admission: OwnedSemaphorePermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(memory) = self.memory.take() {
            self.free
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
        }
    }
}

impl Lease {
    fn memory(&mut self) -> anyhow::Result<&mut [Block]> {
        self.memory
            .as_deref_mut()
            .ok_or_else(|| anyhow!("a password-hash lease without memory"))
    }
}

/// The number of hash permits `settings` asks for: `max_concurrent_hashes`, or one per
/// CPU core when it is unset. Zero is an error, never rounded up.
pub fn hash_permits(settings: &PasswordSettings) -> anyhow::Result<usize> {
    match settings.max_concurrent_hashes {
        Some(0) => bail!(
            "passwords.max_concurrent_hashes is 0: at least one password hash must be able \
             to run (each permit holds one {} MiB Argon2 block); leave it unset for one per \
             CPU core",
            BLOCK_BYTES >> 20
        ),
        Some(n) if n > Semaphore::MAX_PERMITS => {
            bail!("passwords.max_concurrent_hashes is too large")
        }
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(2, |n| n.get())),
    }
}

/// Memory the pool holds for `permits` permits, in bytes.
pub fn pool_bytes(permits: usize) -> usize {
    permits.saturating_mul(BLOCK_BYTES)
}

/// The parameters of new hashes.
fn standard_params() -> anyhow::Result<Params> {
    Params::new(M_COST_KIB, T_COST, P_COST, Some(OUTPUT_BYTES))
        .map_err(|e| anyhow!("argon2 parameters: {e}"))
}

/// One zeroed block, failing cleanly (instead of aborting) when memory is short.
fn allocate_block() -> anyhow::Result<Memory> {
    let blocks = M_COST_KIB as usize;
    let mut memory = Vec::new();
    memory.try_reserve_exact(blocks).with_context(|| {
        format!(
            "cannot allocate a {} MiB password-hash block",
            BLOCK_BYTES >> 20
        )
    })?;
    // Writing every block makes the pages resident now: the memory a deployment needs
    // is taken at start, not discovered during the first burst of logins.
    memory.resize(blocks, Block::new());
    Ok(memory.into_boxed_slice())
}

impl Passwords {
    /// Allocates the pool (`max_concurrent_hashes` × 19 MiB, touched now) and prepares
    /// the dummy hash, which takes one hash's time.
    pub async fn new(settings: &PasswordSettings) -> anyhow::Result<Self> {
        let permits = hash_permits(settings)?;
        let admitted = permits
            .checked_add(settings.max_waiting)
            .filter(|n| *n <= Semaphore::MAX_PERMITS)
            .ok_or_else(|| anyhow!("passwords.max_waiting is too large"))?;
        // Asking for the whole pool at once (without touching it) turns an impossible
        // setting into this error instead of an out-of-memory kill halfway through.
        Vec::<u8>::new()
            .try_reserve_exact(pool_bytes(permits))
            .map_err(|_| {
                anyhow!(
                    "passwords.max_concurrent_hashes = {permits} needs {} MiB, more than \
                     this machine can allocate",
                    pool_bytes(permits) >> 20
                )
            })?;
        let free = (0..permits)
            .map(|_| allocate_block())
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| {
                format!(
                    "passwords.max_concurrent_hashes = {permits} needs {} MiB",
                    pool_bytes(permits) >> 20
                )
            })?;
        let pool = Arc::new(Pool {
            admission: Arc::new(Semaphore::new(admitted)),
            hashing: Arc::new(Semaphore::new(permits)),
            free: Arc::new(Mutex::new(free)),
            permits,
        });
        tracing::info!(
            permits,
            max_waiting = settings.max_waiting,
            pool_mib = pool_bytes(permits) >> 20,
            "password-hash pool allocated"
        );
        let random = SecretString::from(uuid::Uuid::new_v4().to_string());
        let dummy_hash = Self::hash_with(&pool, random)
            .await
            .map_err(|e| anyhow!("cannot prepare the dummy password hash: {e}"))?;
        Ok(Self {
            dummy_hash: dummy_hash.into(),
            pool,
        })
    }

    /// Hashes a new password into a standard Argon2id PHC string.
    pub async fn hash(&self, password: crate::users::Password) -> Result<String, HashError> {
        Self::hash_with(&self.pool, password.into_secret()).await
    }

    async fn hash_with(pool: &Pool, password: SecretString) -> Result<String, HashError> {
        let mut lease = pool.lease().await?;
        tokio::task::spawn_blocking(move || {
            hash_into(lease.memory()?, password.expose_secret().as_bytes())
        })
        .await
        .context("password hashing task failed")?
        .map_err(HashError::Unexpected)
    }

    /// Checks `password` against `hash`, or against the dummy hash when there is no user,
    /// so both paths take the same time. Returns whether it matched a real hash.
    pub async fn verify(
        &self,
        password: SecretString,
        hash: Option<&str>,
    ) -> Result<bool, HashError> {
        let is_real = hash.is_some();
        let hash = hash.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let mut lease = self.pool.lease().await?;
        let matched = tokio::task::spawn_blocking(move || {
            verify_into(lease.memory()?, password.expose_secret().as_bytes(), &hash)
        })
        .await
        .context("password verification task failed")??;
        Ok(is_real && matched)
    }
}

impl Pool {
    /// A block and its permits; [`HashError::Busy`] at once when the wait is full.
    async fn lease(&self) -> Result<Lease, HashError> {
        let admission = Arc::clone(&self.admission)
            .try_acquire_owned()
            .map_err(|_| HashError::Busy)?;
        let hashing = Arc::clone(&self.hashing)
            .acquire_owned()
            .await
            .context("the password-hash pool is closed")?;
        let memory = self
            .free
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .ok_or_else(|| {
                anyhow!(
                    "no free password-hash block behind a granted permit (pool of {})",
                    self.permits
                )
            })?;
        Ok(Lease {
            memory: Some(memory),
            free: Arc::clone(&self.free),
            _hashing: hashing,
            _admission: admission,
        })
    }
}

/// Hashes `password` with a fresh salt and the standard parameters in `memory`.
fn hash_into(memory: &mut [Block], password: &[u8]) -> anyhow::Result<String> {
    let params = standard_params()?;
    let mut salt = [0u8; SALT_BYTES];
    getrandom::fill(&mut salt).map_err(|e| anyhow!("no randomness for a salt: {e}"))?;
    let mut output = [0u8; OUTPUT_BYTES];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut output, memory)
        .map_err(|e| anyhow!("argon2 hashing failed: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow!("argon2 params: {e}"))?,
        salt: Some(Salt::new(&salt).map_err(|e| anyhow!("argon2 salt: {e}"))?),
        hash: Some(Output::new(&output).map_err(|e| anyhow!("argon2 output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Runs Argon2 with the salt and parameters of the PHC string `stored` in `memory` and
/// compares with its output in constant time.
fn verify_into(memory: &mut [Block], password: &[u8], stored: &str) -> anyhow::Result<bool> {
    let phc = PasswordHash::new(stored)
        .map_err(|e| anyhow!("a stored password hash is not a PHC string: {e}"))?;
    let algorithm = Algorithm::new(phc.algorithm.as_str())
        .map_err(|e| anyhow!("a stored password hash is not Argon2: {e}"))?;
    let version = phc
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(|e| anyhow!("a stored password hash has an unknown Argon2 version: {e}"))?
        .unwrap_or_default();
    let params = Params::try_from(&phc)
        .map_err(|e| anyhow!("a stored password hash has invalid Argon2 parameters: {e}"))?;
    if params.block_count() > memory.len() {
        bail!(
            "a stored password hash needs m={} KiB, more than the {} KiB of a password-hash \
             block; it cannot be checked here",
            params.m_cost(),
            memory.len() * Block::SIZE / 1024
        );
    }
    let (Some(salt), Some(expected)) = (&phc.salt, &phc.hash) else {
        bail!("a stored password hash has no salt or no output");
    };
    let mut buffer = [0u8; Output::MAX_LENGTH];
    let computed = buffer
        .get_mut(..expected.len())
        .ok_or_else(|| anyhow!("a stored password hash has an oversized output"))?;
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, computed, memory)
        .map_err(|e| anyhow!("argon2 verification failed: {e}"))?;
    let computed = Output::new(computed).map_err(|e| anyhow!("argon2 output: {e}"))?;
    // `Output`'s equality is constant-time.
    Ok(computed == *expected)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    fn settings(max_concurrent_hashes: Option<usize>, max_waiting: usize) -> PasswordSettings {
        PasswordSettings {
            max_concurrent_hashes,
            max_waiting,
        }
    }

    fn block() -> Memory {
        allocate_block().unwrap()
    }

    #[test]
    fn new_hashes_are_standard_argon2id_phc_strings_the_crate_itself_accepts() {
        let hash = hash_into(&mut block(), b"correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        let parsed = PasswordHash::new(&hash).unwrap();
        let argon2 = Argon2::default();
        assert!(argon2.verify_password(b"correct horse", &parsed).is_ok());
        assert!(argon2.verify_password(b"wrong horse", &parsed).is_err());
    }

    #[test]
    fn hashes_made_by_the_crate_verify_in_a_pool_block() {
        let hash = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let mut memory = block();
        assert!(verify_into(&mut memory, b"correct horse", &hash).unwrap());
        assert!(!verify_into(&mut memory, b"correct hors", &hash).unwrap());
    }

    #[test]
    fn hashes_with_smaller_parameters_still_verify() {
        let params = Params::new(8 * 1024, 1, 1, None).unwrap();
        let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"old password")
            .unwrap()
            .to_string();
        assert!(verify_into(&mut block(), b"old password", &hash).unwrap());
    }

    #[test]
    fn a_hash_needing_more_memory_than_a_block_is_refused_clearly() {
        let stored = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$\
                      AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let error = verify_into(&mut block(), b"whatever", stored).unwrap_err();
        assert!(error.to_string().contains("needs m=65536 KiB"), "{error:#}");
    }

    #[test]
    fn a_malformed_stored_hash_is_an_error_not_a_match() {
        let error = verify_into(&mut block(), b"whatever", "not a hash").unwrap_err();
        assert!(error.to_string().contains("PHC"), "{error:#}");
    }

    #[test]
    fn zero_hash_permits_are_refused_not_rounded_up() {
        let error = hash_permits(&settings(Some(0), 8)).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("passwords.max_concurrent_hashes is 0"),
            "{error:#}"
        );
        assert_eq!(hash_permits(&settings(Some(3), 8)).unwrap(), 3);
        assert!(hash_permits(&settings(None, 8)).unwrap() >= 1);
    }

    #[tokio::test]
    async fn a_pool_larger_than_the_machine_is_refused_at_start() {
        let error = Passwords::new(&settings(Some(usize::MAX >> 20), 8))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("needs"), "{error:#}");
    }

    #[tokio::test]
    async fn beyond_the_permits_and_the_wait_callers_are_turned_away_at_once() {
        let passwords = Passwords::new(&settings(Some(1), 1)).await.unwrap();
        // One lease runs, one waits: the pool is full.
        let running = passwords.pool.lease().await.unwrap();
        let waiting = {
            let pool = Arc::clone(&passwords.pool);
            tokio::spawn(async move { pool.lease().await.map(|_| ()) })
        };
        while passwords.pool.admission.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let turned_away = passwords.verify("a password".to_owned().into(), None).await;
        assert!(matches!(turned_away, Err(HashError::Busy)));
        // When the running hash ends, the waiter gets the block back.
        drop(running);
        waiting.await.unwrap().unwrap();
        assert_eq!(passwords.pool.free.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn verifying_uses_the_pool_and_gives_its_block_back() {
        let passwords = Passwords::new(&settings(Some(2), 0)).await.unwrap();
        let hash = Passwords::hash_with(&passwords.pool, "long enough".to_owned().into())
            .await
            .unwrap();
        assert!(
            passwords
                .verify("long enough".to_owned().into(), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !passwords
                .verify("long enough".to_owned().into(), None)
                .await
                .unwrap()
        );
        assert_eq!(passwords.pool.free.lock().unwrap().len(), 2);
        assert_eq!(passwords.pool.admission.available_permits(), 2);
    }
}
