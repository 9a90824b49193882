//! Password hashing with bounded memory: at most N argon2id hashes at once
//! (N = the cores by default), each in a 19 MiB buffer allocated once and
//! reused, wiped after every use.
//!
//! argon2's own `hash_password` allocates its 19 MiB per call, on whichever
//! blocking thread runs it; glibc keeps freed memory in per-thread arenas,
//! so 1,200 parallel logins left the process at 9.35 GB. Here the number of
//! buffers is the number of slots, whatever the load: logins beyond the
//! slots wait in a bounded queue, and beyond the queue are refused at once.
//! An unknown user is checked against a dummy hash in the same buffers, so
//! it costs the same time and no more memory than a real one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

/// The parameters of every new hash: OWASP's minimum for argon2id (19 MiB,
/// 2 passes, 1 lane), as [`crate::auth::hash_password`].
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).expect("valid argon2 parameters")
}

/// The hashing slots are all taken and the queue is full.
#[derive(Debug, thiserror::Error)]
#[error("too many logins at once; retry shortly")]
pub struct Busy;

/// Hashes and checks passwords in a fixed number of reusable buffers.
#[derive(Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    max_waiting: usize,
    waiting: AtomicUsize,
    buffers: Mutex<Vec<Vec<Block>>>,
    /// Made once, by the first login for an unknown name; the others wait
    /// for it (1,200 at once each making their own was a 54 s queue).
    dummy: OnceCell<String>,
}

impl Hasher {
    /// `concurrency` hashes at once (0 = one per core), `queue` waiting
    /// (0 = no cap).
    pub fn new(concurrency: usize, queue: usize) -> Arc<Hasher> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = if concurrency == 0 { cores } else { concurrency };
        Arc::new(Hasher {
            slots: Arc::new(Semaphore::new(concurrency)),
            max_waiting: crate::guards::no_cap_if_zero(queue),
            waiting: AtomicUsize::new(0),
            buffers: Mutex::new(Vec::new()),
            dummy: OnceCell::new(),
        })
    }

    /// Runs `f` with a buffer of at least `blocks` blocks, in a slot, off the
    /// async threads.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        blocks: usize,
        f: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, Busy> {
        // Both counts are given back by guards, not by code after an
        // `.await`: hyper drops this future when the client closes
        // mid-request, and a count never given back would fill the queue
        // for good (every later login refused as busy).
        let queued = Queued::enter(&self.waiting, self.max_waiting)?;
        let permit = Arc::clone(&self.slots).acquire_owned().await;
        drop(queued);
        let permit = permit.map_err(|_| Busy)?;
        let this = Arc::clone(self);
        // The hash runs to the end even if this future is dropped: the
        // gauge goes down with it, in the blocking task.
        tokio::task::spawn_blocking(move || {
            let _running = Running::start();
            let mut buffer = this.take_buffer(blocks);
            let out = f(&mut buffer);
            // Kept for the next hash, so the wipe cannot be optimised away.
            buffer.fill(Block::default());
            this.give_back(buffer);
            drop(permit);
            out
        })
        .await
        .map_err(|_| Busy)
    }

    fn take_buffer(&self, blocks: usize) -> Vec<Block> {
        let pooled = self.buffers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match pooled {
            Some(b) if b.len() >= blocks => b,
            // A hash made with more memory than ours (an older setting):
            // its own buffer, freed after.
            _ => vec![Block::default(); blocks],
        }
    }

    fn give_back(&self, buffer: Vec<Block>) {
        if buffer.len() == params().block_count() {
            self.buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(buffer);
        }
    }

    /// A new PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) for `password`.
    pub async fn hash(self: &Arc<Self>, password: Zeroizing<String>) -> Result<String, Busy> {
        let params = params();
        let blocks = params.block_count();
        self.run(blocks, move |memory| hash_with(&password, memory))
            .await
    }

    /// Whether `password` matches `stored`; `None` (no such user) is checked
    /// against a dummy hash, at the same cost, and is false.
    pub async fn verify(
        self: &Arc<Self>,
        password: Zeroizing<String>,
        stored: Option<String>,
    ) -> Result<bool, Busy> {
        let known = stored.is_some();
        let hash = match stored {
            Some(h) => h,
            None => self.dummy().await?,
        };
        let blocks = PasswordHash::new(&hash)
            .ok()
            .and_then(|h| Params::try_from(&h).ok())
            .map_or(params().block_count(), |p| p.block_count());
        let ok = self
            .run(blocks, move |memory| verify_with(&password, &hash, memory))
            .await?;
        Ok(ok && known)
    }

    async fn dummy(self: &Arc<Self>) -> Result<String, Busy> {
        self.dummy
            .get_or_try_init(|| self.hash(Zeroizing::new("chatseal timing equaliser".to_owned())))
            .await
            .cloned()
    }
}

/// A place in the queue, given back when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn enter(waiting: &'a AtomicUsize, max: usize) -> Result<Queued<'a>, Busy> {
        if waiting.fetch_add(1, Ordering::SeqCst) >= max {
            waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        Ok(Queued(waiting))
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One hash counted in the running gauge while it lives.
struct Running;

impl Running {
    fn start() -> Running {
        crate::metrics::hashing(1.0);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        crate::metrics::hashing(-1.0);
    }
}

fn hash_with(password: &str, memory: &mut [Block]) -> String {
    let params = params();
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_raw = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut *out, memory)
        .expect("argon2 with valid parameters and a big enough buffer");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("valid parameters"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&*out).expect("32 bytes is a valid output")),
    }
    .to_string()
}

fn verify_with(password: &str, hash: &str, memory: &mut [Block]) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_raw) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = Zeroizing::new(vec![0u8; expected.len()]);
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt_raw, &mut out, memory)
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_interoperate_with_argon2s_own() {
        let hasher = Hasher::new(1, 4);
        let pw = || Zeroizing::new("correct horse".to_owned());
        let ours = hasher.hash(pw()).await.unwrap();
        assert!(ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(crate::auth::verify_password("correct horse", Some(&ours)));
        let theirs = crate::auth::hash_password("correct horse");
        assert!(hasher.verify(pw(), Some(theirs.clone())).await.unwrap());
        assert!(hasher.verify(pw(), Some(ours)).await.unwrap());
        let wrong = Zeroizing::new("wrong horse".to_owned());
        assert!(!hasher.verify(wrong, Some(theirs)).await.unwrap());
        assert!(!hasher.verify(pw(), None).await.unwrap());
        assert!(
            !hasher
                .verify(pw(), Some("not a hash".into()))
                .await
                .unwrap()
        );
        // One slot: one buffer, reused.
        assert_eq!(hasher.buffers.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_login_dropped_while_queued_gives_its_place_back() {
        let hasher = Hasher::new(1, 1);
        // The one slot is held: a hash queues.
        let held = Arc::clone(&hasher.slots).acquire_owned().await.unwrap();
        let queued = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.hash(Zeroizing::new("password1".to_owned())).await }
        });
        while hasher.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        // The client goes away: hyper drops the handler's future.
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        assert_eq!(hasher.waiting.load(Ordering::SeqCst), 0);
        drop(held);
        // The queue (of one) is free again.
        hasher
            .hash(Zeroizing::new("password2".to_owned()))
            .await
            .expect("admitted");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let hasher = Hasher::new(1, 1);
        let _held = Arc::clone(&hasher.slots).acquire_owned().await.unwrap();
        let _queued = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.hash(Zeroizing::new("password1".to_owned())).await }
        });
        while hasher.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let r = hasher.hash(Zeroizing::new("password2".to_owned())).await;
        assert!(r.is_err());
    }

    #[tokio::test]
    async fn a_queue_of_zero_means_no_cap() {
        let hasher = Hasher::new(1, 0);
        hasher
            .hash(Zeroizing::new("password1".to_owned()))
            .await
            .expect("admitted");
    }
}
