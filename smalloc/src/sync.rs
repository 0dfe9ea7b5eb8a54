//! The one atomic type the concurrent algorithms are written against.
//!
//! The lists (`remote`, `shared`) and slab ownership (`ownership`) are generic over
//! [`Atomic64`], so that the same code runs on `core`'s `AtomicU64` words inside the reservation
//! and, in the `loom` model tests (`RUSTFLAGS="--cfg loom"`), on loom's checked atomics, which
//! explore every interleaving and memory-ordering outcome the C++/Rust memory model allows.

use core::sync::atomic::{AtomicU64, Ordering};

/// A 64-bit atomic word: the operations the lock-free algorithms need.
pub(crate) trait Atomic64 {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, value: u64, order: Ordering);
    /// Atomic exchange.
    fn swap(&self, value: u64, order: Ordering) -> u64;
    /// Atomic compare-and-exchange (never fails spuriously).
    fn compare_exchange(
        &self,
        current: u64,
        new: u64,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u64, u64>;
    /// Atomic bitwise or; returns the previous value.
    fn fetch_or(&self, value: u64, order: Ordering) -> u64;
    /// Atomic bitwise and; returns the previous value.
    fn fetch_and(&self, value: u64, order: Ordering) -> u64;
}

/// Forwards every method of [`Atomic64`] to the inherent method of the same name.
macro_rules! forward_atomic64 {
    ($t:ty) => {
        impl $crate::sync::Atomic64 for $t {
            #[inline(always)]
            fn load(&self, order: core::sync::atomic::Ordering) -> u64 {
                <$t>::load(self, order)
            }
            #[inline(always)]
            fn store(&self, value: u64, order: core::sync::atomic::Ordering) {
                <$t>::store(self, value, order)
            }
            #[inline(always)]
            fn swap(&self, value: u64, order: core::sync::atomic::Ordering) -> u64 {
                <$t>::swap(self, value, order)
            }
            #[inline(always)]
            fn compare_exchange(
                &self,
                current: u64,
                new: u64,
                success: core::sync::atomic::Ordering,
                failure: core::sync::atomic::Ordering,
            ) -> Result<u64, u64> {
                <$t>::compare_exchange(self, current, new, success, failure)
            }
            #[inline(always)]
            fn fetch_or(&self, value: u64, order: core::sync::atomic::Ordering) -> u64 {
                <$t>::fetch_or(self, value, order)
            }
            #[inline(always)]
            fn fetch_and(&self, value: u64, order: core::sync::atomic::Ordering) -> u64 {
                <$t>::fetch_and(self, value, order)
            }
        }
    };
}
#[cfg(loom)]
pub(crate) use forward_atomic64;

forward_atomic64!(AtomicU64);

/// The atomic word at `addr`, an 8-aligned address inside the reservation.
///
/// # Safety
/// `addr` must be 8-aligned and lie in mapped, writable memory of the reservation that is only
/// ever accessed atomically (every such word in smalloc's metadata is), for the lifetime `'a`.
#[inline(always)]
pub(crate) unsafe fn word<'a>(addr: usize) -> &'a AtomicU64 {
    // SAFETY: per the caller, an aligned, live word used only atomically; all-zero is a valid
    // AtomicU64.
    unsafe { &*core::ptr::with_exposed_provenance::<AtomicU64>(addr) }
}
