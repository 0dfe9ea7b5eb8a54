//! Criterion benchmarks of the allocation hot paths, for regression tracking:
//! `cargo bench -p bench` (add `-- pair` etc. to filter).
//!
//! Each benchmark calls the allocator instance directly through `GlobalAlloc`, exactly as the
//! `bench` binary does, so the figures are comparable with its `pair` and `batch` tables.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;

use bench::allocators::{self, AllocatorId};
use bench::with_allocator;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

/// One alloc/free pair of `size` bytes through `a`.
#[inline(always)]
fn pair<A: GlobalAlloc>(a: &A, l: Layout) {
    // SAFETY: l has a non-zero size; the block is freed at once with the same layout.
    unsafe {
        let p = a.alloc(l);
        assert!(!p.is_null());
        a.dealloc(black_box(p), l);
    }
}

/// The allocators every group measures: smalloc and the system allocator always (the pair the
/// core crate's performance claims are about), plus the other peers.
fn ids() -> Vec<AllocatorId> {
    AllocatorId::all()
}

fn pairs(c: &mut Criterion) {
    allocators::check_smalloc_reserved().expect("smalloc must own its reservation");
    let mut g = c.benchmark_group("pair");
    g.throughput(Throughput::Elements(1));
    for size in [8usize, 64, 4096] {
        let l = Layout::from_size_align(size, 8).unwrap();
        for id in ids() {
            g.bench_with_input(BenchmarkId::new(id.name(), size), &l, |b, &l| {
                with_allocator!(id, |a| b.iter(|| pair(a, l)))
            });
        }
    }
    g.finish();
}

fn batches(c: &mut Criterion) {
    const N: usize = 1000;
    let mut g = c.benchmark_group("batch-1000-lifo");
    g.throughput(Throughput::Elements(N as u64));
    let l = Layout::from_size_align(64, 8).unwrap();
    for id in [AllocatorId::Smalloc, AllocatorId::System] {
        g.bench_function(id.name(), |b| {
            with_allocator!(id, |a| b.iter_batched_ref(
                || Vec::with_capacity(N),
                |v: &mut Vec<*mut u8>| {
                    // SAFETY: non-zero layout; every block is freed once with it.
                    unsafe {
                        for _ in 0..N {
                            v.push(a.alloc(l));
                        }
                        while let Some(p) = v.pop() {
                            a.dealloc(black_box(p), l);
                        }
                    }
                },
                BatchSize::SmallInput,
            ))
        });
    }
    g.finish();
}

fn growth(c: &mut Criterion) {
    let mut g = c.benchmark_group("realloc-grow-to-64KiB");
    for id in [AllocatorId::Smalloc, AllocatorId::System] {
        g.bench_function(id.name(), |b| {
            with_allocator!(id, |a| b.iter(|| {
                let mut buf = bench::workloads::growth::GrowBuf::new(a, 1);
                for _ in 0..1024 {
                    buf.push_bytes(black_box(&[7u8; 64]));
                }
                black_box(buf.as_bytes().len())
            }))
        });
    }
    g.finish();
}

criterion_group!(benches, pairs, batches, growth);
criterion_main!(benches);
