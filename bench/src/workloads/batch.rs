//! `batch`: allocate 1,000 blocks, then free them all, last-in-first-out or in random order.
//! Random order is the harder case for free-list allocators: the next batch gets its blocks back
//! in a scrambled order.

use std::alloc::GlobalAlloc;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::common::{alloc, layout};
use crate::rng::Rng;

/// Blocks per batch.
pub const BATCH: usize = 1000;

/// Runs `batches` batches and returns the time taken. Sizes (8-256 B) and the free order are
/// drawn once, before timing, from a fixed seed.
pub fn run<A: GlobalAlloc>(a: &A, random: bool, batches: u64) -> Duration {
    let mut rng = Rng::new(0xBA7C);
    let sizes: Vec<usize> = (0..BATCH).map(|_| rng.range(8, 256) as usize).collect();
    let mut order: Vec<usize> = (0..BATCH).rev().collect();
    if random {
        rng.shuffle(&mut order);
    }
    let mut ptrs = vec![std::ptr::null_mut::<u8>(); BATCH];
    let start = Instant::now();
    for b in 0..batches {
        for (slot, &size) in ptrs.iter_mut().zip(&sizes) {
            // SAFETY: sizes are non-zero; the first byte is inside the block.
            unsafe {
                let p = alloc(a, layout(size));
                p.write(b as u8);
                *slot = p;
            }
        }
        black_box(&mut ptrs);
        for &i in &order {
            // SAFETY: each block is freed once, with the layout it was allocated with.
            unsafe { a.dealloc(ptrs[i], layout(sizes[i])) };
        }
    }
    start.elapsed()
}
