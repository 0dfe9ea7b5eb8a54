//! Where everything lives: the pure arithmetic that maps (slab, size class, slot) to an address
//! inside the reservation and back, and that picks a size class for a request.
//!
//! Nothing here touches memory; it is all shifts and masks on offsets from the reservation base.
//! See the crate docs for the picture.

/// Number of bits of an offset that select a slot and a byte inside a slot: every
/// (slab, size class) pair owns one *area* of `2^AREA_BITS` bytes = 32 GiB.
pub const AREA_BITS: u32 = 35;
/// Bits that select the size class (`sc`): 32 values, of which 3..=31 are used.
pub const SC_BITS: u32 = 5;
/// Bits that select the slab within a size class: 32 slabs.
pub const SLAB_BITS: u32 = 5;

/// Number of slabs in each size class.
pub const NUM_SLABS: usize = 1 << SLAB_BITS;
/// Number of size-class positions (some unused) in a slab.
pub const NUM_SCS: usize = 1 << SC_BITS;
/// Smallest size class: 8-byte slots, the least that can hold a free-list link word.
pub const MIN_SC: u32 = 3;
/// Largest size class: 2 GiB slots.
pub const MAX_SC: u32 = 31;
/// Bytes of address space the slabs occupy: 32 slabs x 32 classes x 32 GiB = 32 TiB.
pub const SLABS_LEN: usize = 1 << (SLAB_BITS + SC_BITS + AREA_BITS);
/// Alignment of the reservation base. Slots of class `sc` are aligned to `2^sc` relative to the
/// base, so aligning the base to the largest slot makes every slot naturally aligned.
pub const BASE_ALIGN: usize = 1 << MAX_SC;

/// Mask of the low [`AREA_BITS`] bits of an offset.
const AREA_MASK: usize = (1 << AREA_BITS) - 1;

/// The size class that serves a request of `size` bytes aligned to `align` (a power of two): the
/// smallest `sc >= MIN_SC` with `2^sc >= max(size, align)`. Since slots are naturally aligned, a
/// big enough slot is also aligned enough.
///
/// The result may exceed [`MAX_SC`] (up to 64); such requests are served by direct mappings.
/// `size` and `align` must not both be zero (Rust layouts have `align >= 1`).
#[inline(always)]
pub const fn size_class(size: usize, align: usize) -> u32 {
    let need = if size > align { size } else { align };
    // ceil(log2(need)) with a floor of MIN_SC, in one bit scan: `| 7` keeps the operand >= 7
    // (so it is never zero and the result never below 3).
    (need.wrapping_sub(1) | ((1 << MIN_SC) - 1)).ilog2() + 1
}

/// Number of slots in each slab of class `sc`: `2^(35 - sc)`, from 2^32 (8 B) down to 16 (2 GiB).
#[inline(always)]
pub const fn slots_per_slab(sc: u32) -> u64 {
    1 << (AREA_BITS - sc)
}

/// Mask for slot numbers of class `sc`; also the sentinel slot number (the last slot of every
/// slab is never handed out and marks the end of its free list).
#[inline(always)]
pub const fn slot_mask(sc: u32) -> u32 {
    // A table lookup is one memory operand; the shift by a runtime class costs five instructions.
    SLOT_MASKS[sc as usize & (NUM_SCS - 1)]
}

/// [`slot_mask`] of every class position: `2^(35 - sc) - 1` (zero for the unused classes 0-2).
const SLOT_MASKS: [u32; NUM_SCS] = {
    let mut masks = [0; NUM_SCS];
    let mut sc = MIN_SC;
    while sc < NUM_SCS as u32 {
        masks[sc as usize] = u32::MAX >> (sc - MIN_SC);
        sc += 1;
    }
    masks
};

/// Offset from the base of slot `slot` of slab `slab` in class `sc`.
#[inline(always)]
pub const fn slot_offset(slab: usize, sc: u32, slot: u32) -> usize {
    (slab << (SC_BITS + AREA_BITS)) | ((sc as usize) << AREA_BITS) | ((slot as usize) << sc)
}

/// Offset of the start of the area whose free-list head has index `head_index` (see
/// [`head_index`]): the offset of its slot 0. The head index *is* the top bits of the offset.
#[inline(always)]
pub const fn area_offset(head_index: usize) -> usize {
    head_index << AREA_BITS
}

/// The index of the free-list head of the area that contains `offset`: `slab * 32 + sc`, which is
/// simply the offset's top bits. Valid for `offset < SLABS_LEN`.
#[inline(always)]
pub const fn head_index_of(offset: usize) -> usize {
    offset >> AREA_BITS
}

/// The index of the free-list head of (`slab`, `sc`).
#[inline(always)]
pub const fn head_index(slab: usize, sc: u32) -> usize {
    (slab << SC_BITS) | sc as usize
}

/// What an offset inside the slabs encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    /// Slab number, `0..NUM_SLABS`.
    pub slab: usize,
    /// Size class.
    pub sc: u32,
    /// Slot number within the slab.
    pub slot: u32,
    /// Byte offset within the slot.
    pub byte: usize,
}

/// Splits an offset `< SLABS_LEN` into slab, size class, slot and byte.
#[inline(always)]
pub const fn decode(offset: usize) -> Decoded {
    let hi = head_index_of(offset);
    let sc = (hi & (NUM_SCS - 1)) as u32;
    let in_area = offset & AREA_MASK;
    Decoded {
        slab: hi >> SC_BITS,
        sc,
        slot: (in_area >> sc) as u32,
        byte: in_area & ((1 << sc) - 1),
    }
}

/// Size class of the area that contains `offset` (`offset < SLABS_LEN`).
#[inline(always)]
pub const fn sc_of(offset: usize) -> u32 {
    (head_index_of(offset) & (NUM_SCS - 1)) as u32
}

/// The class a growing `realloc` moves to when the block no longer fits its slot.
///
/// Blocks that grow once tend to grow again (`Vec`, `String`), so rather than the tightest class
/// they jump to the next of a few landmark sizes: 64 B, 128 B, 4 KiB, 16 KiB, 64 KiB, 256 KiB,
/// 2 MiB. Past 2 MiB each step is the tightest class, because big slots are scarce (a slab holds
/// only 16 slots of 2 GiB). `needed` is the tightest class for the new size and alignment.
#[inline]
pub const fn grower_class(needed: u32) -> u32 {
    match needed {
        0..=6 => 6,
        7 => 7,
        8..=12 => 12,
        13..=14 => 14,
        15..=16 => 16,
        17..=18 => 18,
        19..=21 => 21,
        _ => needed,
    }
}

/// The class a shrinking `realloc` moves to, if any: a block that now needs a class at least two
/// steps below its slot (a quarter of the slot or less) moves down, so that shrinking (for example
/// `Vec::shrink_to_fit`) returns the big slot. `None` means the block stays where it is.
#[inline]
pub const fn shrink_class(current: u32, needed: u32) -> Option<u32> {
    if needed + 2 <= current {
        Some(needed)
    } else {
        None
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(m) => Some(m & !(align - 1)),
        None => None,
    }
}
