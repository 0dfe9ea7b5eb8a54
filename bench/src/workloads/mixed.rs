//! `mixed`: a working set of live blocks in which every operation frees one block at random and
//! allocates a new one whose size comes from a realistic distribution
//! ([`mixed_size`]). Each new block is written (first cache line, one
//! byte per page, last byte) and checked again before it is freed.

use std::alloc::GlobalAlloc;
use std::time::{Duration, Instant};

use super::common::{alloc, check, layout, mixed_size, touch};
use crate::rng::Rng;

/// Live blocks per thread.
pub const LIVE: usize = 256;

/// Runs `ops` operations on one thread and returns the time taken.
pub fn run<A: GlobalAlloc>(a: &A, ops: u64) -> Duration {
    let mut slots = vec![(std::ptr::null_mut::<u8>(), 0usize); LIVE];
    let start = Instant::now();
    churn(a, &mut slots, ops, 0x313D);
    start.elapsed()
}

/// The body shared with the multi-thread workload: `ops` operations over `slots`, which start
/// empty and are empty again on return (everything is freed).
pub fn churn<A: GlobalAlloc>(a: &A, slots: &mut [(*mut u8, usize)], ops: u64, seed: u64) {
    let mut rng = Rng::new(seed);
    for _ in 0..ops {
        let i = rng.below(slots.len() as u64) as usize;
        let (old, old_size) = slots[i];
        if !old.is_null() {
            // SAFETY: the block is live, was written by `touch` with its slot index as tag, and is
            // freed with its own layout.
            unsafe {
                check(old, old_size, i as u8);
                a.dealloc(old, layout(old_size));
            }
        }
        let size = mixed_size(&mut rng);
        // SAFETY: sizes are non-zero; `touch` stays inside the new block.
        unsafe {
            let p = alloc(a, layout(size));
            touch(p, size, i as u8);
            slots[i] = (p, size);
        }
    }
    for (i, slot) in slots.iter_mut().enumerate() {
        if !slot.0.is_null() {
            // SAFETY: as above.
            unsafe {
                check(slot.0, slot.1, i as u8);
                a.dealloc(slot.0, layout(slot.1));
            }
            *slot = (std::ptr::null_mut(), 0);
        }
    }
}
