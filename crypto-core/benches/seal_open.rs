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

criterion_group!(benches, seal_open, rewrap);
criterion_main!(benches);
