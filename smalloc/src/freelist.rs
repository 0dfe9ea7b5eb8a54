//! The free lists: one lock-free LIFO per slab, with its links stored inside the free slots.
//!
//! # Head word
//!
//! Each slab has one 64-bit head word:
//!
//! ```text
//!   63                      32 31                       0
//!  [ push counter (wrapping) ][ first free slot number  ]
//! ```
//!
//! The counter grows by one on every push, so a pop whose compare-and-swap sees the same word it
//! read knows that no slot was pushed in between: the link it read from the first slot is still
//! that slot's link (no ABA). Pops leave the counter alone; a pop always changes the slot number.
//!
//! # Link word (zero is initialization)
//!
//! A free slot's first 8 bytes hold its link word:
//!
//! ```text
//!   63                      32 31                       0
//!  [ slot state              ][ next - slot - 1 (mod n) ]
//! ```
//!
//! The next slot is stored *relative to the slot's own number*, minus one, modulo the number of
//! slots `n`. So a slot that was never written (all zeroes) links to the slot right after it, a
//! head word of zero points at slot 0, and the last slot (`n - 1`), which is never handed out,
//! is where the chain of untouched slots ends: a fresh, all-zero slab already *is* a complete
//! free list, with no setup writes at all.
//!
//! The state half records what the slot's memory looks like, which lets `alloc_zeroed` skip work:
//! [`SlotState::Fresh`] slots were never handed out and are all zero; [`SlotState::Purged`] slots
//! had their pages given back to the OS on free and are zero except for the link word;
//! [`SlotState::Dirty`] slots may hold anything.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::slot_mask;

/// Low half of a head word or link word.
const LOW: u64 = 0xFFFF_FFFF;
/// One step of the push counter in the head word.
const COUNTER_ONE: u64 = 1 << 32;

/// The state of a free slot's memory, kept in the high half of its link word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum SlotState {
    /// Never handed out: every byte is zero (the kernel's fresh pages).
    Fresh = 0,
    /// Handed out before and freed: the bytes are whatever the last user left.
    Dirty = 1,
    /// Freed and its pages purged: zero apart from the link word.
    Purged = 2,
}

impl SlotState {
    /// Decodes the high half of a link word. Anything unknown is treated as dirty.
    #[inline(always)]
    pub const fn from_bits(bits: u32) -> SlotState {
        match bits {
            0 => SlotState::Fresh,
            2 => SlotState::Purged,
            _ => SlotState::Dirty,
        }
    }
}

/// The first free slot named by head word `h`.
#[inline(always)]
pub const fn head_first(h: u64) -> u32 {
    h as u32
}

/// The push counter of head word `h`.
#[inline(always)]
pub const fn head_counter(h: u64) -> u32 {
    (h >> 32) as u32
}

/// The head word after popping from `h`: first slot becomes `next`, counter unchanged.
#[inline(always)]
pub const fn head_after_pop(h: u64, next: u32) -> u64 {
    (h & !LOW) | next as u64
}

/// The head word after pushing `slot` onto `h`: `slot` is first, counter one higher (wrapping).
#[inline(always)]
pub const fn head_after_push(h: u64, slot: u32) -> u64 {
    (h & !LOW).wrapping_add(COUNTER_ONE) | slot as u64
}

/// The link word a free slot `slot` stores to point at `next`.
///
/// The class does not enter into it: the wrapping 32-bit difference decodes back to `next`
/// exactly, and reducing it modulo the slab's slot count would change nothing after decoding.
#[inline(always)]
pub const fn encode_link(slot: u32, next: u32, state: SlotState) -> u64 {
    let rel = next.wrapping_sub(slot).wrapping_sub(1);
    ((state as u64) << 32) | rel as u64
}

/// The slot that free slot `slot` of class `sc` points at, given its link word.
///
/// The mask changes nothing for links this allocator wrote, but keeps a link scribbled over by a
/// use-after-free bug in the program pointing inside the slab, rather than anywhere in memory.
#[inline(always)]
pub const fn decode_next(slot: u32, link: u64, sc: u32) -> u32 {
    slot.wrapping_add(1).wrapping_add(link as u32) & slot_mask(sc)
}

/// The state half of a link word.
#[inline(always)]
pub const fn link_state(link: u64) -> SlotState {
    SlotState::from_bits((link >> 32) as u32)
}

/// Outcome of one pop attempt on one slab.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pop {
    /// Got a slot: its address and the state its memory is in.
    Got(*mut u8, SlotState),
    /// The slab has no free slot.
    Empty,
    /// Another thread changed the head between our read and our compare-and-swap.
    Collision,
}

/// Tries once to pop the first free slot of a slab.
///
/// `area` is the address of the slab's slot 0 for class `sc`.
///
/// # Safety
/// `head` must be the head word of the slab whose slots start at `area`, inside the live
/// reservation; every slot that the head word can name must be mapped.
#[inline(always)]
pub unsafe fn try_pop(head: &AtomicU64, area: usize, sc: u32) -> Pop {
    let h = head.load(Ordering::Acquire);
    let first = head_first(h);
    if first == slot_mask(sc) {
        return Pop::Empty;
    }
    let slot = area + ((first as usize) << sc);
    // SAFETY: `slot` is inside the reservation (first < sentinel) and 8-aligned, so the atomic
    // load cannot fault. Another thread may have popped this slot already and be writing to it;
    // the value we read is only trusted if the CAS below proves the head (and so the slot's
    // membership in the list, thanks to the push counter) did not change meanwhile.
    let link = unsafe { (*(slot as *const AtomicU64)).load(Ordering::Relaxed) };
    let next = decode_next(first, link, sc);
    match head.compare_exchange(
        h,
        head_after_pop(h, next),
        Ordering::Acquire,
        Ordering::Relaxed,
    ) {
        Ok(_) => Pop::Got(slot as *mut u8, link_state(link)),
        Err(_) => Pop::Collision,
    }
}

/// Pushes the slot at `ptr` (slot number `slot` of class `sc`) onto the free list `head`.
///
/// # Safety
/// `ptr` must be a slot of the slab `head` belongs to, currently handed out, and dead: nobody may
/// use it after this call.
#[inline(always)]
pub unsafe fn push(head: &AtomicU64, ptr: *mut u8, slot: u32, state: SlotState) {
    // SAFETY: the slot is ours until the CAS publishes it, and is at least 8 bytes, 8-aligned.
    let link = unsafe { &*(ptr as *const AtomicU64) };
    let mut h = head.load(Ordering::Relaxed);
    loop {
        link.store(encode_link(slot, head_first(h), state), Ordering::Relaxed);
        // Release: the link and everything the user wrote happen-before the pop that takes it.
        match head.compare_exchange_weak(
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
