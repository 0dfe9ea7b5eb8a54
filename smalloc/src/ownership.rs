//! Which thread owns which slab: one bit per owned slab in a small bitmap.
//!
//! A thread claims the lowest free slab with one atomic `fetch_or` (acquire) and gives it back at
//! exit with one `fetch_and` (release). Everything else about a slab's free lists and runs is
//! plain memory that only its owner reads and writes: the release of one owner and the acquire of
//! the next order every write of the first before every read of the second, so a slab's state
//! passes from thread to thread whole, without atomics on the paths in between. Claiming the
//! lowest free slab hands a thread the slab most recently released (when threads come and go),
//! with its free slots and resident pages ready for reuse.

use core::sync::atomic::Ordering;

use crate::sync::Atomic64;

/// Claims the lowest slab below `limit` whose bit in `bitmap` is clear, setting the bit. Returns
/// its number, or `None` if every slab below `limit` is taken.
pub(crate) fn claim<A: Atomic64>(bitmap: &[A], limit: usize) -> Option<usize> {
    for (w, word) in bitmap.iter().enumerate() {
        let first = w * 64;
        if first >= limit {
            break;
        }
        let valid = if limit - first >= 64 {
            u64::MAX
        } else {
            (1u64 << (limit - first)) - 1
        };
        loop {
            let free = !word.load(Ordering::Relaxed) & valid;
            if free == 0 {
                break;
            }
            let bit = 1u64 << free.trailing_zeros();
            // Acquire: the previous owner's writes to the slab happen-before our reads of it.
            if word.fetch_or(bit, Ordering::Acquire) & bit == 0 {
                return Some(first + free.trailing_zeros() as usize);
            }
        }
    }
    None
}

/// Gives slab `slab` back. The caller must own it and not touch its owner-only state afterwards.
pub(crate) fn release<A: Atomic64>(bitmap: &[A], slab: usize) {
    // Release: our writes to the slab happen-before the next owner's claim.
    bitmap[slab / 64].fetch_and(!(1u64 << (slab % 64)), Ordering::Release);
}

/// Whether slab `slab` is claimed right now (a snapshot).
pub(crate) fn is_claimed<A: Atomic64>(bitmap: &[A], slab: usize) -> bool {
    bitmap[slab / 64].load(Ordering::Relaxed) & (1u64 << (slab % 64)) != 0
}
