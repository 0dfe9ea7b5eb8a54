//! Shared slabs: the original smalloc free lists, for the threads that own no slab.
//!
//! A thread that cannot claim a slab of its own (more threads than owned slabs, or a thread
//! already past its exit destructor) allocates from the shared slabs. Each (shared slab, class)
//! has one lock-free LIFO list: a head word changed only by compare-and-swap, carrying a push
//! counter against the ABA problem, and a *link word* per slot, encoded so that all-zero memory is
//! a complete free list.
//!
//! # Head word
//!
//! ```text
//!   63                      32 31                       0
//!  [ push counter (wrapping) ][ first free slot number  ]
//! ```
//!
//! The counter grows by one on every push, so a pop whose compare-and-swap sees the same word it
//! read knows that no slot was pushed in between: the link it read is still the first slot's link.
//!
//! # Link word (zero is initialization)
//!
//! ```text
//!   63                      32 31                       0
//!  [ slot state              ][ next - slot - 1 (mod n) ]
//! ```
//!
//! The next slot is stored relative to the slot's own number, minus one (wrapping at 2^32): a link word that was never written (zero) names the slot right after it, a head word of zero
//! names slot 0, and the last slot (`n - 1`), never handed out, ends the chain. A fresh area is a
//! complete free list with no setup writes.
//!
//! Unlike the original design, the link words do not live in the slots: they sit in a side table
//! of the slab (class positions 1 and 2 of its address range, see `layout`). A pop reads the link
//! of a slot that another thread may have popped a moment before; in a side table that read is an
//! atomic load of a word nobody writes non-atomically, so it is no data race, whatever the program
//! does with the slot. (Inside the slot it would race with the new owner's plain writes.)
//!
//! The state half records what the slot's memory looks like, which lets `alloc_zeroed` skip work.

use core::sync::atomic::Ordering;

use crate::sync::Atomic64;

/// Low half of a head word or link word.
const LOW: u64 = 0xFFFF_FFFF;
/// One step of the push counter in the head word.
const COUNTER_ONE: u64 = 1 << 32;

/// The state of a free slot's memory, kept in the high half of its link word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum SlotState {
    /// Never handed out: every byte is zero (the kernel's fresh pages).
    Fresh = 0,
    /// Handed out before and freed: the bytes are whatever the last user left.
    Dirty = 1,
    /// Freed and its pages given back to the OS: every byte is zero.
    Purged = 2,
}

impl SlotState {
    /// Decodes the high half of a link word. Anything unknown is treated as dirty.
    #[inline(always)]
    pub(crate) const fn from_bits(bits: u32) -> SlotState {
        match bits {
            0 => SlotState::Fresh,
            2 => SlotState::Purged,
            _ => SlotState::Dirty,
        }
    }

    /// Whether the slot reads as all zeroes.
    #[inline(always)]
    pub(crate) const fn is_zero(self) -> bool {
        !matches!(self, SlotState::Dirty)
    }
}

/// The first free slot named by head word `h`.
#[inline(always)]
pub(crate) const fn head_first(h: u64) -> u32 {
    h as u32
}

/// The push counter of head word `h`.
#[cfg(test)]
#[inline(always)]
// Read by the unit tests only (the loom build has none of them).
#[cfg_attr(loom, allow(dead_code))]
pub(crate) const fn head_counter(h: u64) -> u32 {
    (h >> 32) as u32
}

/// The head word after popping from `h`: first slot becomes `next`, counter unchanged.
#[inline(always)]
pub(crate) const fn head_after_pop(h: u64, next: u32) -> u64 {
    (h & !LOW) | next as u64
}

/// The head word after pushing `slot` onto `h`: `slot` is first, counter one higher (wrapping).
#[inline(always)]
pub(crate) const fn head_after_push(h: u64, slot: u32) -> u64 {
    (h & !LOW).wrapping_add(COUNTER_ONE) | slot as u64
}

/// The link word a free slot `slot` stores to point at `next`.
#[inline(always)]
pub(crate) const fn encode_link(slot: u32, next: u32, state: SlotState) -> u64 {
    let rel = next.wrapping_sub(slot).wrapping_sub(1);
    ((state as u64) << 32) | rel as u64
}

/// The slot that free slot `slot` points at, given its link word. The link words live in a side
/// table the program never writes, so they need no bounds check; `try_pop` still treats any slot
/// at or past the sentinel as the end.
#[inline(always)]
pub(crate) const fn decode_next(slot: u32, link: u64) -> u32 {
    slot.wrapping_add(1).wrapping_add(link as u32)
}

/// The state half of a link word.
#[inline(always)]
pub(crate) const fn link_state(link: u64) -> SlotState {
    SlotState::from_bits((link >> 32) as u32)
}

/// Outcome of one pop attempt on one list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pop {
    /// Got a slot: its number and the state its memory is in.
    Got(u32, SlotState),
    /// The list is empty.
    Empty,
    /// Another thread changed the head between our read and our compare-and-swap.
    Collision,
}

/// Tries once to pop the first free slot of a list of `sentinel + 1` slots, whose last slot
/// (`sentinel`) is the end marker. `link(n)` is slot `n`'s link word.
#[inline]
pub(crate) fn try_pop<'a, A: Atomic64 + 'a>(
    head: &A,
    sentinel: u32,
    link: impl Fn(u32) -> &'a A,
) -> Pop {
    let h = head.load(Ordering::Acquire);
    let first = head_first(h);
    if first >= sentinel {
        return Pop::Empty;
    }
    // May be stale if another thread pops `first` meanwhile; the compare-and-swap below then
    // fails, because that pop and the push that must follow before `first` can be first again
    // both change the head word (the push through its counter).
    // Relaxed suffices: the acquire load of the head synchronizes with the push that wrote it, and
    // that push stored this link before its release.
    let l = link(first).load(Ordering::Relaxed);
    let next = decode_next(first, l);
    match head.compare_exchange(
        h,
        head_after_pop(h, next),
        Ordering::Acquire,
        Ordering::Relaxed,
    ) {
        Ok(_) => Pop::Got(first, link_state(l)),
        Err(_) => Pop::Collision,
    }
}

/// Pushes slot `slot` (with link word `link`) onto the list `head`, its memory in `state`.
///
/// The slot must be handed out and dead: nobody may use it after this call.
#[inline]
pub(crate) fn push<A: Atomic64>(head: &A, link: &A, slot: u32, state: SlotState) {
    let mut h = head.load(Ordering::Relaxed);
    loop {
        link.store(encode_link(slot, head_first(h), state), Ordering::Relaxed);
        // Release: the link, and everything the program wrote to the slot, happen-before the pop
        // that takes it.
        match head.compare_exchange(
            h,
            head_after_push(h, slot),
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => return,
            Err(now) => h = now,
        }
    }
}
