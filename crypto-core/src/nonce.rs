//! Nonces from a fast userspace CSPRNG seeded by the operating system.
//!
//! Every seal needs 12 fresh random bytes. A `getrandom` syscall per message
//! costs more than sealing a short message, so each thread keeps a ChaCha20
//! generator seeded from the OS and reseeds it:
//!
//! * after [`RESEED_AFTER`] nonces, to bound how much output one seed yields;
//! * in the child after `fork()`. A forked child inherits its parent's
//!   generator state byte for byte; without a reseed parent and child would
//!   produce the *same* nonces under the same key, which for GCM reveals the
//!   XOR of plaintexts and the authentication key. A `pthread_atfork` child
//!   handler bumps a generation counter that every draw checks (one relaxed
//!   atomic load), so the C library and the Node addon are safe in programs
//!   that fork.

use std::cell::RefCell;
use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng, TryRngCore};

/// Length of an AES-GCM nonce as chatseal uses it (96 bits).
pub const NONCE_LEN: usize = 12;

/// Nonces drawn from one seed before the thread's generator is reseeded.
pub const RESEED_AFTER: u64 = 1 << 20;

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER_FORK_HANDLER: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only async-signal-safe work is allowed here: one atomic add.
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

fn register_fork_handler() {
    REGISTER_FORK_HANDLER.call_once(|| {
        // SAFETY: registers a handler that performs one atomic add; it takes
        // no locks and allocates nothing, so it is safe to run after fork().
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        // ENOMEM is the only documented failure; without the handler a fork
        // could repeat nonces, so refuse to continue rather than risk it.
        assert_eq!(rc, 0, "pthread_atfork failed; refusing to generate nonces");
    });
}

struct ThreadGenerator {
    rng: ChaCha20Rng,
    generation: u64,
    drawn: u64,
}

impl ThreadGenerator {
    fn seeded() -> Self {
        let mut seed = [0u8; 32];
        fill_from_os(&mut seed);
        let rng = ChaCha20Rng::from_seed(seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Self {
            rng,
            generation: FORK_GENERATION.load(Ordering::SeqCst),
            drawn: 0,
        }
    }
}

thread_local! {
    static GENERATOR: RefCell<Option<ThreadGenerator>> = const { RefCell::new(None) };
}

/// Fills `out` with bytes from the operating system's CSPRNG.
///
/// Panics if the OS has no randomness to give: there is no safe fallback.
pub fn fill_from_os(out: &mut [u8]) {
    rand_core::OsRng
        .try_fill_bytes(out)
        .expect("the operating system's random number generator failed");
}

/// A fresh 96-bit nonce.
pub fn fresh() -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    draw(&mut nonce, 1);
    nonce
}

/// Fresh 96-bit nonces, one in each slot of `out`: for a batch, one visit to
/// the thread's generator instead of one per nonce.
pub fn fill(out: &mut [[u8; NONCE_LEN]]) {
    // In slices, so that a reseed still comes within a few nonces of
    // RESEED_AFTER however large `out` is.
    for part in out.chunks_mut(64) {
        let count = part.len() as u64;
        draw(part.as_flattened_mut(), count);
    }
}

/// Fills `out` (`count` nonces) from this thread's generator, seeding it
/// first when it is new, has given RESEED_AFTER nonces, or was inherited
/// across a fork.
fn draw(out: &mut [u8], count: u64) {
    register_fork_handler();
    GENERATOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let stale = match slot.as_ref() {
            None => true,
            Some(g) => {
                g.drawn >= RESEED_AFTER || g.generation != FORK_GENERATION.load(Ordering::Relaxed)
            }
        };
        if stale {
            *slot = Some(ThreadGenerator::seeded());
        }
        let generator = slot.as_mut().expect("seeded above");
        generator.rng.fill_bytes(out);
        generator.drawn += count;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn nonces_do_not_repeat_within_a_thread_or_across_threads() {
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(fresh()));
        }
        let other: Vec<_> = std::thread::spawn(|| (0..10_000).map(|_| fresh()).collect())
            .join()
            .unwrap();
        for n in other {
            assert!(seen.insert(n), "two threads drew the same nonce");
        }
    }

    #[test]
    fn a_batch_of_nonces_repeats_none_and_none_of_single_draws() {
        let mut batch = [[0u8; NONCE_LEN]; 150];
        fill(&mut batch);
        let mut seen: HashSet<_> = (0..1_000).map(|_| fresh()).collect();
        for n in batch {
            assert_ne!(n, [0u8; NONCE_LEN], "a slot was left unfilled");
            assert!(seen.insert(n), "a batch repeated a nonce");
        }
        fill(&mut batch);
        for n in batch {
            assert!(seen.insert(n), "a second batch repeated a nonce");
        }
    }

    #[test]
    fn a_forked_child_draws_different_nonces_than_its_parent() {
        fresh(); // make sure this thread's generator exists before the fork
        let mut fds = [0i32; 2];
        // SAFETY: plain pipe/fork/read/write/waitpid on descriptors we own;
        // the child only calls `fresh()`, writes and exits.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0);
            if pid == 0 {
                let n = fresh();
                libc::write(fds[1], n.as_ptr().cast(), n.len());
                libc::_exit(0);
            }
            let parent = fresh();
            let mut child = [0u8; NONCE_LEN];
            assert_eq!(libc::read(fds[0], child.as_mut_ptr().cast(), NONCE_LEN), 12);
            let mut status = 0;
            libc::waitpid(pid, &mut status, 0);
            libc::close(fds[0]);
            libc::close(fds[1]);
            assert_ne!(
                parent, child,
                "child repeated the parent's nonce after fork"
            );
        }
    }
}
