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

/// Which allocator call a [`Probe`] wraps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `alloc`.
    Alloc,
    /// `dealloc`.
    Free,
}

/// Wraps each allocator call of [`steps`]: [`Untimed`] just makes the call; the `latency`
/// report times each one.
pub trait Probe {
    /// Makes the allocator call `f` (of kind `call`) and returns its result.
    fn call<R>(&mut self, call: Call, f: impl FnOnce() -> R) -> R;
}

/// The [`Probe`] of the timed cases: adds nothing around the call.
pub struct Untimed;

impl Probe for Untimed {
    #[inline(always)]
    fn call<R>(&mut self, _: Call, f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// The body shared with the multi-thread workload: `ops` operations over `slots`, which start
/// empty and are empty again on return (everything is freed).
pub fn churn<A: GlobalAlloc>(a: &A, slots: &mut [(*mut u8, usize)], ops: u64, seed: u64) {
    steps(a, slots, ops, &mut Rng::new(seed), &mut Untimed);
    free_all(a, slots);
}

/// `ops` operations over `slots` (a null pointer is an empty slot): each picks a slot at random,
/// checks and frees its block if there is one, and allocates, writes and stores a new block of a
/// [`mixed_size`]. Slot `i`'s block carries tag `i as u8`. Blocks left in the slots stay live.
///
/// # Panics
/// If a block does not hold its tag when freed (see [`check`]).
#[inline(always)]
pub fn steps<A: GlobalAlloc>(
    a: &A,
    slots: &mut [(*mut u8, usize)],
    ops: u64,
    rng: &mut Rng,
    probe: &mut impl Probe,
) {
    for _ in 0..ops {
        let i = rng.below(slots.len() as u64) as usize;
        let (old, old_size) = slots[i];
        if !old.is_null() {
            // SAFETY: the block is live and was written by `touch` with its slot index as tag.
            unsafe { check(old, old_size, i as u8) };
            // SAFETY: the block is freed once, with its own layout.
            probe.call(Call::Free, || unsafe { a.dealloc(old, layout(old_size)) });
        }
        let size = mixed_size(rng);
        // SAFETY: sizes are non-zero.
        let p = probe.call(Call::Alloc, || unsafe { alloc(a, layout(size)) });
        // SAFETY: `touch` stays inside the new block.
        unsafe { touch(p, size, i as u8) };
        slots[i] = (p, size);
    }
}

/// Checks and frees the block of every non-empty slot (written by [`steps`]) and empties it.
pub fn free_all<A: GlobalAlloc>(a: &A, slots: &mut [(*mut u8, usize)]) {
    for (i, slot) in slots.iter_mut().enumerate() {
        if !slot.0.is_null() {
            // SAFETY: the block is live, was written by `touch` with its slot index as tag, and
            // is freed once, with its own layout.
            unsafe {
                check(slot.0, slot.1, i as u8);
                a.dealloc(slot.0, layout(slot.1));
            }
            *slot = (std::ptr::null_mut(), 0);
        }
    }
}
