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

/// Claims slab `slab` if it is free. Returns whether it did.
pub(crate) fn claim_exact<A: Atomic64>(bitmap: &[A], slab: usize) -> bool {
    let bit = 1u64 << (slab % 64);
    // Acquire: as for `claim`.
    bitmap[slab / 64].fetch_or(bit, Ordering::Acquire) & bit == 0
}

/// Gives slab `slab` back. The caller must own it and not touch its owner-only state afterwards.
pub(crate) fn release<A: Atomic64>(bitmap: &[A], slab: usize) {
    // Release: our writes to the slab happen-before the next owner's claim.
    bitmap[slab / 64].fetch_and(!(1u64 << (slab % 64)), Ordering::Release);
}

/// Sets slab `slab`'s bit in `bitmap` (a set of slabs other than the claimed one).
pub(crate) fn set<A: Atomic64>(bitmap: &[A], slab: usize) {
    bitmap[slab / 64].fetch_or(1u64 << (slab % 64), Ordering::Relaxed);
}

/// Clears slab `slab`'s bit in `bitmap`.
pub(crate) fn clear<A: Atomic64>(bitmap: &[A], slab: usize) {
    bitmap[slab / 64].fetch_and(!(1u64 << (slab % 64)), Ordering::Relaxed);
}

/// The highest slab below `limit` whose bit is set in `bitmap` (a snapshot).
pub(crate) fn highest<A: Atomic64>(bitmap: &[A], limit: usize) -> Option<usize> {
    (0..limit.div_ceil(64)).rev().find_map(|w| {
        let valid = if limit - w * 64 >= 64 {
            u64::MAX
        } else {
            (1u64 << (limit - w * 64)) - 1
        };
        let bits = bitmap[w].load(Ordering::Relaxed) & valid;
        (bits != 0).then(|| w * 64 + 63 - bits.leading_zeros() as usize)
    })
}

/// Whether slab `slab` is claimed right now (a snapshot).
pub(crate) fn is_claimed<A: Atomic64>(bitmap: &[A], slab: usize) -> bool {
    bitmap[slab / 64].load(Ordering::Relaxed) & (1u64 << (slab % 64)) != 0
}
