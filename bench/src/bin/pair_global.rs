//! `pair_global`: N alloc/free pairs of a run-time size through Rust's global allocator
//! (`std::alloc::alloc` and `dealloc`, which call smalloc through `__rust_alloc` like every `Box`
//! and `Vec` of a program that installs it), printing ns per pair. The Rust counterpart of the C
//! program of `scripts/c-pair.sh`: both pay a call per allocation and per free, where `bench
//! pair64` inlines the allocator into its loop.
//!
//! Usage: `pair_global [PAIRS] [SIZE]` (defaults 10000000 and 64).

use std::alloc::{Layout, alloc, dealloc};
use std::hint::black_box;
use std::time::Instant;

use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

fn main() {
    let mut args = std::env::args().skip(1);
    let pairs: u64 = args
        .next()
        .map_or(10_000_000, |a| a.parse().expect("PAIRS"));
    let size: usize = args.next().map_or(64, |a| a.parse().expect("SIZE"));
    let layout = Layout::from_size_align(black_box(size), 8).expect("a valid size");
    // The first use sets the allocator up: keep it out of the timing, as the C program does.
    for _ in 0..10_000 {
        // SAFETY: a non-zero layout; the block is freed with it.
        unsafe { dealloc(black_box(alloc(layout)), layout) };
    }
    let start = Instant::now();
    for _ in 0..pairs {
        // SAFETY: as above.
        unsafe {
            let p = alloc(layout);
            if p.is_null() {
                std::process::abort();
            }
            dealloc(black_box(p), layout);
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / pairs as f64;
    println!("{ns:.3}");
}
