//! Seal and open throughput at the sizes of issue 2 (64 B … 1 MiB), and
//! rewrap (issue 13: what `keys rewrap` costs per stored message, text form
//! as the store keeps it).
//!
//! `cargo bench -p chatseal-core --bench seal_open`; results and the OpenSSL
//! comparison are in docs/benchmarks.md.

use std::hint::black_box;

use chatseal_core::{Keyring, Sealer, chat_context};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 5] = [64, 256, 1024, 16 * 1024, 1024 * 1024];

fn seal_open(c: &mut Criterion) {
    let sealer = Sealer::new(Keyring::generate());
    let context = chat_context("lobby", "0192f0c1-7a3e-7cc0-9b1e-3f5a2d4c8e10", "ann");
    for (name, open) in [("seal", false), ("open", true)] {
        let mut group = c.benchmark_group(name);
        for size in SIZES {
            let plaintext = vec![0x5a_u8; size];
            let envelope = sealer.seal("lobby", &context, &plaintext).unwrap();
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, _| {
                if open {
                    b.iter(|| {
                        sealer
                            .open("lobby", black_box(&context), black_box(&envelope))
                            .unwrap()
                    })
                } else {
                    b.iter(|| {
                        sealer
                            .seal("lobby", black_box(&context), black_box(&plaintext))
                            .unwrap()
                    })
                }
            });
        }
        group.finish();
    }
}

fn rewrap(c: &mut Criterion) {
    let sealer = Sealer::new(Keyring::generate());
    let context = chat_context("lobby", "0192f0c1-7a3e-7cc0-9b1e-3f5a2d4c8e10", "ann");
    let old: Vec<(usize, String)> = [64, 256, 1024, 16 * 1024]
        .into_iter()
        .map(|size| {
            let text = sealer.seal_text("lobby", &context, &vec![0x5a_u8; size]);
            (size, text.unwrap())
        })
        .collect();
    sealer.rotate().unwrap();
    let mut group = c.benchmark_group("rewrap");
    for (size, text) in &old {
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(BenchmarkId::from_parameter(size), size, |b, _| {
            b.iter(|| {
                sealer
                    .rewrap_text("lobby", black_box(&context), black_box(text))
                    .unwrap()
            })
        });
    }
    // Already under the primary: authenticated, nothing sealed.
    let current = sealer
        .seal_text("lobby", &context, &[0x5a_u8; 256])
        .unwrap();
    group.bench_function("unchanged/256", |b| {
        b.iter(|| {
            sealer
                .rewrap_text("lobby", black_box(&context), black_box(&current))
                .unwrap()
        })
    });
    group.finish();
}

/// 256 B messages (issue 18's size) one call at a time, into a caller's
/// buffer, and 64 to a batch call; beside them the floor: `ring`'s
/// AES-256-GCM alone over the same bytes (the envelope's 18-byte header and
/// a 47-byte context as associated data, 256 B sealed in place, a counter
/// nonce), which no envelope can beat.
fn chat_sized(c: &mut Criterion) {
    use chatseal_core::sealer::SealRequest;
    use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    const BATCH: usize = 64;
    let sealer = Sealer::new(Keyring::generate());
    let context = chat_context("lobby", "0192f0c1-7a3e-7cc0-9b1e-3f5a2d4c8e10", "ann");
    let plaintext = [0x5a_u8; 256];
    let mut group = c.benchmark_group("seal256");
    group.throughput(Throughput::Elements(1));
    group.bench_function("seal", |b| {
        b.iter(|| {
            sealer
                .seal("lobby", black_box(&context), black_box(&plaintext))
                .unwrap()
        })
    });
    let mut out = vec![0_u8; plaintext.len() + chatseal_core::OVERHEAD];
    group.bench_function("seal_into", |b| {
        b.iter(|| {
            sealer
                .seal_into(
                    "lobby",
                    black_box(&context),
                    black_box(&plaintext),
                    &mut out,
                )
                .unwrap()
        })
    });
    // Two rooms taken in turn, as a server with many active rooms seals: a
    // cache that favoured a thread's last room would show its cost here.
    let mut turn = false;
    group.bench_function("seal_into_rooms_in_turn", |b| {
        b.iter(|| {
            turn = !turn;
            sealer
                .seal_into(
                    if turn { "lobby" } else { "design" },
                    black_box(&context),
                    black_box(&plaintext),
                    &mut out,
                )
                .unwrap()
        })
    });
    let items: Vec<SealRequest<'_>> = (0..BATCH)
        .map(|_| SealRequest {
            room: "lobby",
            epoch: 0,
            context: &context,
            plaintext: &plaintext,
        })
        .collect();
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("seal_batch_64", |b| {
        b.iter(|| sealer.seal_batch(black_box(&items)).unwrap())
    });
    group.bench_function("seal_batch_packed_64", |b| {
        b.iter(|| sealer.seal_batch_packed(black_box(&items)).unwrap())
    });
    group.throughput(Throughput::Elements(1));
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7_u8; 32]).unwrap());
    let mut aad = [0_u8; 18 + 47];
    aad[18..18 + context.len().min(47)].copy_from_slice(&context[..context.len().min(47)]);
    let mut buffer = plaintext;
    let mut counter = 0_u64;
    group.bench_function("ring_aes_gcm_floor", |b| {
        b.iter(|| {
            counter += 1;
            let mut nonce = [0_u8; 12];
            nonce[4..].copy_from_slice(&counter.to_be_bytes());
            key.seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(black_box(&aad)),
                black_box(&mut buffer),
            )
            .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, seal_open, rewrap, chat_sized);
criterion_main!(benches);
