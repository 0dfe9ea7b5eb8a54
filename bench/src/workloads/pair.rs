//! `pair`: allocate one block and free it again, over and over. The fastest path of every
//! allocator: the block comes straight back from (and goes straight into) a thread cache or free
//! list head.

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::common::{alloc, layout};

/// Block sizes of the pair cases.
pub const SIZES: [usize; 4] = [8, 64, 512, 4096];

/// Allocates and frees `pairs` blocks of `size` bytes, one at a time, and returns the time taken.
///
/// Never inlined, so that instruction counters (see `scripts/instructions-per-pair.sh`) count a
/// loop of its own.
#[inline(never)]
pub fn run<A: GlobalAlloc>(a: &A, size: usize, pairs: u64) -> Duration {
    timed_pairs(a, layout(size), pairs)
}

/// [`run`] with the size fixed at compile time (64 B), as in `Box::new` of a fixed-size type:
/// the allocator's size-class arithmetic then folds away. Never inlined, like `run`.
#[inline(never)]
pub fn run_fixed64<A: GlobalAlloc>(a: &A, pairs: u64) -> Duration {
    const L: Layout = match Layout::from_size_align(64, 8) {
        Ok(l) => l,
        Err(_) => panic!("64 B aligned to 8 is a valid layout"),
    };
    timed_pairs(a, L, pairs)
}

/// The loop of [`run`] and [`run_fixed64`]; always inlined, so a constant `l` stays constant.
///
/// `black_box` hides the pointer from the optimizer, which could otherwise drop the pair (Rust
/// may elide an allocation whose result is unused).
#[inline(always)]
fn timed_pairs<A: GlobalAlloc>(a: &A, l: Layout, pairs: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..pairs {
        // SAFETY: l has a non-zero size; the block is freed with the layout it was allocated with.
        unsafe {
            let p = alloc(a, l);
            a.dealloc(black_box(p), l);
        }
    }
    start.elapsed()
}
