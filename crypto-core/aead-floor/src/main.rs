//! The AES-256-GCM floor of a chat envelope, library by library.
//!
//! An envelope is at least one AES-256-GCM seal of the message with 65 bytes
//! of associated data (the 18-byte header and a 47-byte chat context, see
//! docs/format.md). Whatever the engine does around it, it cannot be faster
//! than the primitive it calls, so this asks which well-kept primitive is
//! fastest on the machine at hand: `ring` (what the engine uses), `aws-lc-rs`,
//! `graviola` and RustCrypto's `aes-gcm`.
//!
//! Each library first seals the same bytes under the same key and nonce, and
//! the run stops unless all of them agree with `ring` byte for byte: the race
//! is over the same work. Rounds then interleave the libraries, so a slow
//! second of the machine does not land on one of them, and the median of the
//! rounds is printed.
//!
//! `cargo run --release --manifest-path crypto-core/aead-floor/Cargo.toml [-- SIZE...]`

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const KEY: [u8; 32] = [0x42; 32];
const AAD_LEN: usize = 18 + 47;
const ROUNDS: usize = 5;
const ROUND_TIME: Duration = Duration::from_millis(400);

#[derive(Clone, Copy)]
enum Lib {
    Ring,
    AwsLc,
    Graviola,
    RustCrypto,
}

const LIBS: [(Lib, &str); 4] = [
    (Lib::Ring, "ring"),
    (Lib::AwsLc, "aws-lc-rs"),
    (Lib::Graviola, "graviola"),
    (Lib::RustCrypto, "aes-gcm (RustCrypto)"),
];

/// The keys, expanded once, as an engine keeps them.
struct Keys {
    ring: ring::aead::LessSafeKey,
    aws_lc: aws_lc_rs::aead::LessSafeKey,
    graviola: graviola::aead::AesGcm,
    rust_crypto: aes_gcm::Aes256Gcm,
}

impl Keys {
    fn new() -> Self {
        use aes_gcm::KeyInit;
        Self {
            ring: ring::aead::LessSafeKey::new(
                ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, &KEY).expect("ring key"),
            ),
            aws_lc: aws_lc_rs::aead::LessSafeKey::new(
                aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &KEY)
                    .expect("aws-lc key"),
            ),
            graviola: graviola::aead::AesGcm::new(&KEY),
            rust_crypto: aes_gcm::Aes256Gcm::new_from_slice(&KEY).expect("aes-gcm key"),
        }
    }

    /// Seals `buf` in place and returns the tag.
    #[inline(always)]
    fn seal(&self, lib: Lib, nonce: [u8; 12], aad: &[u8], buf: &mut [u8]) -> [u8; 16] {
        let mut tag = [0_u8; 16];
        match lib {
            Lib::Ring => {
                use ring::aead::{Aad, Nonce};
                let t = self
                    .ring
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .expect("ring seal");
                tag.copy_from_slice(t.as_ref());
            }
            Lib::AwsLc => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let t = self
                    .aws_lc
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        buf,
                    )
                    .expect("aws-lc seal");
                tag.copy_from_slice(t.as_ref());
            }
            Lib::Graviola => self.graviola.encrypt(&nonce, aad, buf, &mut tag),
            Lib::RustCrypto => {
                use aes_gcm::AeadInPlace;
                let t = self
                    .rust_crypto
                    .encrypt_in_place_detached(&nonce.into(), aad, buf)
                    .expect("aes-gcm seal");
                tag.copy_from_slice(&t);
            }
        }
        tag
    }
}

fn nonce(counter: u64) -> [u8; 12] {
    let mut n = [0_u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n
}

/// Nanoseconds per seal over one round of about `ROUND_TIME`.
fn round(keys: &Keys, lib: Lib, aad: &[u8], buf: &mut [u8], per_round: u64) -> f64 {
    let start = Instant::now();
    for i in 0..per_round {
        black_box(keys.seal(lib, nonce(i), black_box(aad), black_box(&mut *buf)));
    }
    start.elapsed().as_nanos() as f64 / per_round as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> ExitCode {
    let sizes: Vec<usize> = match std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<Vec<usize>, _>>()
    {
        Ok(s) if !s.is_empty() => s,
        Ok(_) => vec![64, 256, 1024],
        Err(e) => {
            eprintln!("error: sizes are byte counts: {e}");
            return ExitCode::FAILURE;
        }
    };
    let keys = Keys::new();
    let aad: Vec<u8> = (0..AAD_LEN as u8).collect();

    #[cfg(target_arch = "x86_64")]
    println!(
        "cpu: aes {} pclmulqdq {} avx2 {} vaes {} vpclmulqdq {} avx512f {}",
        std::arch::is_x86_feature_detected!("aes"),
        std::arch::is_x86_feature_detected!("pclmulqdq"),
        std::arch::is_x86_feature_detected!("avx2"),
        std::arch::is_x86_feature_detected!("vaes"),
        std::arch::is_x86_feature_detected!("vpclmulqdq"),
        std::arch::is_x86_feature_detected!("avx512f"),
    );
    println!("AES-256-GCM, {AAD_LEN} B associated data, median of {ROUNDS} interleaved rounds");

    for size in sizes {
        let plaintext: Vec<u8> = (0..size).map(|i| i as u8).collect();

        // The same work: every library's output equals ring's.
        let mut expected = plaintext.clone();
        let expected_tag = keys.seal(Lib::Ring, nonce(7), &aad, &mut expected);
        for (lib, name) in LIBS {
            let mut out = plaintext.clone();
            let tag = keys.seal(lib, nonce(7), &aad, &mut out);
            if out != expected || tag != expected_tag {
                eprintln!("error: {name} does not agree with ring at {size} B");
                return ExitCode::FAILURE;
            }
        }

        // How many seals make a round: calibrated on ring, the same count for all.
        let mut buf = plaintext.clone();
        let probe = round(&keys, Lib::Ring, &aad, &mut buf, 10_000);
        let per_round = ((ROUND_TIME.as_nanos() as f64 / probe) as u64).max(1_000);

        let mut times: Vec<Vec<f64>> = vec![Vec::new(); LIBS.len()];
        for _ in 0..ROUNDS {
            for (i, (lib, _)) in LIBS.iter().enumerate() {
                times[i].push(round(&keys, *lib, &aad, &mut buf, per_round));
            }
        }
        println!("\n{size} B:");
        for (i, (_, name)) in LIBS.iter().enumerate() {
            let ns = median(times[i].clone());
            let (lo, hi) = times[i]
                .iter()
                .fold((f64::MAX, 0_f64), |(lo, hi), &t| (lo.min(t), hi.max(t)));
            println!(
                "  {name:22} {ns:8.1} ns  {:6.2} M/s   (rounds {lo:.1}–{hi:.1} ns)",
                1_000.0 / ns
            );
        }
    }
    ExitCode::SUCCESS
}
