//! Where everything lives: the pure arithmetic that maps a slab, a size class, a run and a slot to
//! an address inside the reservation and back, and that picks a size class for a request.
//!
//! Nothing here touches memory: it is all shifts and masks. The picture is in the crate docs;
//! every constant below is derived from the three widths [`SLAB_BITS`], [`SC_BITS`] and
//! [`AREA_BITS`], and the `const` assertions at the end check that the pieces fit.

/// Bits of an address offset that select a slot and a byte inside a slot: every
/// (slab, size class) pair owns one *area* of `2^AREA_BITS` bytes = 1 GiB.
pub(crate) const AREA_BITS: u32 = 30;
/// Bits that select the size-class position inside a slab: 64 positions.
pub(crate) const SC_BITS: u32 = 6;
/// Bits that select the slab: 512 slabs.
pub(crate) const SLAB_BITS: u32 = 9;

/// Bytes of address space one slab spans (all its class positions): 64 GiB.
pub(crate) const SLAB_SPAN_BITS: u32 = SC_BITS + AREA_BITS;
/// Number of slabs.
pub(crate) const NUM_SLABS: usize = 1 << SLAB_BITS;
/// Slabs `0..OWNED_SLABS` are claimed by threads, one each, and used without atomic operations.
pub(crate) const OWNED_SLABS: usize = 480;
/// Slabs `OWNED_SLABS..NUM_SLABS` are shared by the threads that own none, through lock-free
/// compare-and-swap lists (the original smalloc algorithm).
pub(crate) const SHARED_SLABS: usize = NUM_SLABS - OWNED_SLABS;
/// Number of size-class positions in a slab.
pub(crate) const NUM_SCS: usize = 1 << SC_BITS;
/// Smallest size class: 8-byte slots, the least that can hold a free-list link.
pub(crate) const MIN_SC: u32 = 6;
/// Largest size class served from slabs: 128 MiB slots, eight to an area. Bigger requests get a
/// mapping of their own (see `large`).
pub(crate) const MAX_SC: u32 = 54;
/// Class position of each slab's metadata (positions below [`MIN_SC`] hold no slots).
pub(crate) const META_SC: u32 = 0;
/// First class position where a shared slab keeps the link words of its free lists.
pub(crate) const LINKS_SC: u32 = 1;

/// Bytes of address space the slabs occupy: 512 slabs x 64 positions x 1 GiB = 32 TiB.
pub(crate) const SLABS_LEN: usize = 1 << (SLAB_BITS + SLAB_SPAN_BITS);
/// Alignment of the reservation base: one slab span. Slots of class `sc` are then aligned to
/// `2^sc`, and the class of any address inside the reservation is bits 31-35 of the address
/// itself, which is what lets `free` find a block's class without knowing the base.
pub(crate) const BASE_ALIGN: usize = 1 << SLAB_SPAN_BITS;

/// Mask of the low [`AREA_BITS`] bits of an address.
pub(crate) const AREA_MASK: usize = (1 << AREA_BITS) - 1;

/// Runs group the slots of a class: allocation takes slots from one run until it is used up, so
/// that consecutive allocations are neighbours, and a run whose slots are all free can be given
/// back to the OS as a whole. A run is 64 KiB, or for classes of 64 KiB and more the power of two
/// that holds one slot.
pub(crate) const MIN_RUN_BITS: u32 = 16;

/// Number of entries of the per-class tables that a size class indexes on the fast path: every
/// value [`size_class`] can return (up to 128), so that a request too big for any slab finds an
/// always-empty entry instead of needing a bounds check.
pub(crate) const CLASS_TABLE_LEN: usize = 129;

// -------------------------------------------------------------- size classes

/// Bytes of a slot of class `sc`: two classes per power of two. Even classes are powers of two,
/// `2^(sc/2)`; odd classes lie halfway between, `3 * 2^(sc/2 - 1)`: 8, 16, 24, 32, 48, 64, 96,
/// 128, 192, 256, ... bytes. A slot is aligned to its size if a power of two, else to a third of
/// it (the largest power of two that divides it). Zero for positions that hold no slots.
#[inline(always)]
pub(crate) const fn slot_size(sc: u32) -> usize {
    SLOT_SIZES[sc as usize & 255]
}

/// [`slot_size`] of every position below 256 (a power of two, so the index needs only a mask).
const SLOT_SIZES: [usize; 256] = {
    let mut t = [0; 256];
    let mut sc = MIN_SC;
    while sc <= MAX_SC {
        t[sc as usize] = if sc.is_multiple_of(2) {
            1 << (sc / 2)
        } else {
            3 << (sc / 2 - 1)
        };
        sc += 1;
    }
    // Position 7 would be 12-byte slots, aligned to 4: too small to hold an aligned link word.
    t[7] = 0;
    t
};

/// The alignment of every slot of class `sc`: the largest power of two dividing its size (zero
/// for positions that hold no slots).
#[inline(always)]
pub(crate) const fn slot_align(sc: u32) -> usize {
    let size = slot_size(sc);
    size & size.wrapping_neg()
}

/// The size class that serves a request of `size` bytes aligned to `align` (a power of two): the
/// smallest class whose slots hold `size` bytes and are aligned to `align`. The result may exceed
/// [`MAX_SC`] (up to 128); such requests are served by direct mappings.
#[inline(always)]
pub(crate) fn size_class(size: usize, align: usize) -> u32 {
    (class_offset(size, align) / HOT_ENTRY) as u32
}

/// Bytes of one entry of a fast-path class table (`slab::HotClass`).
pub(crate) const HOT_ENTRY: usize = 32;

/// [`size_class`] times [`HOT_ENTRY`]: the offset of the class's entry in a fast-path table,
/// which is what `alloc` needs. Small requests, the common case, find it in a table: one load
/// instead of a dozen instructions. The alignment is a constant at nearly every call site, so
/// only one of the alignment tests remains.
#[inline(always)]
pub(crate) fn class_offset(size: usize, align: usize) -> usize {
    if size <= SMALL_MAX {
        if align <= 8 {
            return SMALL_BY_8[(size + 7) >> 3] as usize;
        }
        if align == 16 {
            return SMALL_BY_16[(size + 15) >> 4] as usize;
        }
    }
    size_class_computed(size, align) as usize * HOT_ENTRY
}

/// Requests up to this size (with alignments up to 16) find their class in a table.
const SMALL_MAX: usize = 1024;
/// [`class_offset`] of every size up to [`SMALL_MAX`] aligned to at most 8, by
/// `(size + 7) / 8`.
static SMALL_BY_8: [u16; SMALL_MAX / 8 + 1] = small_offsets::<{ SMALL_MAX / 8 + 1 }>(8);
/// [`class_offset`] of every size up to [`SMALL_MAX`] aligned to 16, by `(size + 15) / 16`.
static SMALL_BY_16: [u16; SMALL_MAX / 16 + 1] = small_offsets::<{ SMALL_MAX / 16 + 1 }>(16);

/// The table of class offsets for the `N` sizes `0, align, 2 * align, ...`.
const fn small_offsets<const N: usize>(align: usize) -> [u16; N] {
    let mut t = [0; N];
    let mut i = 0;
    while i < N {
        t[i] = (size_class_computed(i * align, align) as usize * HOT_ENTRY) as u16;
        i += 1;
    }
    t
}

/// [`size_class`] by arithmetic.
///
/// Let `x = max(size, align) - 1` (at least 7) have `b` bits: `2^b` is the smallest power of two
/// that fits, class `2b`. The class below it, `2b - 1`, has slots of `3/4 * 2^b` bytes aligned to
/// `2^(b-2)`; it fits when the second-highest bit of `x` is clear and the alignment allows.
#[inline(always)]
pub(crate) const fn size_class_computed(size: usize, align: usize) -> u32 {
    let need = if size > align { size } else { align };
    let x = need.wrapping_sub(1) | 7;
    let b = usize::BITS - x.leading_zeros();
    let upper_half = (x >> (b - 2)) & 1;
    let misaligned = (align > (1 << (b - 2))) as usize;
    2 * b - 1 + (upper_half | misaligned) as u32
}

/// The class position of an address inside the reservation: bits 30-35 of the address (the base
/// is aligned to a slab span). For other addresses it is some number below 64, which indexes the
/// per-class tables harmlessly.
#[inline(always)]
pub(crate) const fn sc_of_addr(addr: usize) -> u32 {
    ((addr >> AREA_BITS) & (NUM_SCS - 1)) as u32
}

/// The slab of an offset from the base (`off < SLABS_LEN`).
#[inline(always)]
pub(crate) const fn slab_of(off: usize) -> usize {
    off >> SLAB_SPAN_BITS
}

/// Offset from the base of the area of (`slab`, `sc`): its first slot, or for the class
/// positions below [`MIN_SC`], the metadata kept there.
#[inline(always)]
pub(crate) const fn area_offset(slab: usize, sc: u32) -> usize {
    (slab << SLAB_SPAN_BITS) | ((sc as usize) << AREA_BITS)
}

/// log2 of the bytes of a run of class `sc` (its address span).
#[inline(always)]
pub(crate) const fn run_bits(sc: u32) -> u32 {
    let bits = usize::BITS - (slot_size(sc) - 1).leading_zeros();
    if bits > MIN_RUN_BITS {
        bits
    } else {
        MIN_RUN_BITS
    }
}

/// Slots in one run of class `sc` (a run's tail shorter than a slot is left unused).
#[inline(always)]
pub(crate) const fn slots_per_run(sc: u32) -> u32 {
    ((1 << run_bits(sc)) / slot_size(sc)) as u32
}

/// Bytes of a run of class `sc` that its slots cover.
#[inline(always)]
pub(crate) const fn run_slots_len(sc: u32) -> usize {
    slots_per_run(sc) as usize * slot_size(sc)
}

/// Runs in one area of class `sc`.
#[inline(always)]
pub(crate) const fn runs_per_area(sc: u32) -> u32 {
    1 << (AREA_BITS - run_bits(sc))
}

/// Slots in one area of class `sc`, for the shared slabs (which have no runs): from 2^27 (8 B)
/// down to 8 (128 MiB).
#[inline(always)]
pub(crate) const fn slots_per_area(sc: u32) -> u32 {
    ((1 << AREA_BITS) / slot_size(sc)) as u32
}

// -------------------------------------------------------------- metadata inside a slab

/// Offset, inside a slab's metadata area, of its header (remote-free list, run bookkeeping).
pub(crate) const HEADER_OFF: usize = 0;
/// Offset of the owner's per-class fast-path state ([`CLASS_TABLE_LEN`] entries of 32 bytes).
pub(crate) const HOT_OFF: usize = 4096;
/// Offset of the owner's per-class bookkeeping ([`NUM_SCS`] entries of 64 bytes).
pub(crate) const COLD_OFF: usize = HOT_OFF + 8192;
/// Offset of the shared-list head words of a shared slab ([`NUM_SCS`] words).
pub(crate) const SHARED_HEADS_OFF: usize = COLD_OFF + 4096;
/// Offset of a shared slab's per-class counts of live blocks ([`NUM_SCS`] words), for the
/// statistics.
pub(crate) const SHARED_LIVE_OFF: usize = SHARED_HEADS_OFF + 2048;
/// Offset of a shared slab's per-class high-water marks (slots ever handed out, [`NUM_SCS`]
/// words): the statistics scan for resident pages up to them.
pub(crate) const SHARED_HIGH_OFF: usize = SHARED_HEADS_OFF + 3072;
/// Offset of the reservation-wide state, in slab 0's metadata area only.
pub(crate) const GLOBAL_OFF: usize = SHARED_HEADS_OFF + 4096;
/// Offset of a slab's inbox of remote frees (`remote::INBOX_LEN` words).
pub(crate) const INBOX_OFF: usize = 1 << 20;
/// Offset of the registry of direct mappings (`large`), in slab 0's metadata area only:
/// [`REGISTRY_LEN`] words.
pub(crate) const REGISTRY_OFF: usize = 1 << 24;
/// Entries of the registry of direct mappings: four times the most mappings Linux lets a process
/// have by default (`vm.max_map_count`, 65530), so that probe sequences stay short.
pub(crate) const REGISTRY_LEN: usize = 1 << 18;
/// Offset of the run tables. The first [`EARLY_RUNS`] runs of every class have their metadata
/// side by side in one page, so that a thread using a few blocks of many classes touches one page
/// of run metadata, not one per class; the later runs of class `sc` have a table of their own at
/// `RUNS_OFF + 4096 + sc * RUN_TABLE_LEN`, so that a class with many runs costs 32 bytes of
/// metadata per run.
pub(crate) const RUNS_OFF: usize = 1 << 26;
/// Runs of each class whose metadata shares the first page of the run tables.
pub(crate) const EARLY_RUNS: u32 = 2;
/// Bytes of one class's table of later runs.
pub(crate) const RUN_TABLE_LEN: usize = RUN_META_LEN << (AREA_BITS - MIN_RUN_BITS);
/// Bytes of all run tables.
pub(crate) const RUNS_LEN: usize = 4096 + NUM_SCS * RUN_TABLE_LEN;
/// Bytes of one run's metadata.
pub(crate) const RUN_META_LEN: usize = 32;

/// The class a growing `realloc` moves to when the block no longer fits its slot.
///
/// Up to 3 KiB the block takes the tightest class: small strings and vectors are the most
/// numerous blocks, and each wasted byte of theirs is resident memory (a page holds many slots).
/// From 4 KiB the block jumps to the next of 16 KiB, 64 KiB, 256 KiB, 2 MiB, 16 MiB and 128 MiB,
/// skipping copies for blocks that grow again (`Vec`, `String`; a doubling `Vec` is copied at
/// every third doubling instead of every one): a slot of whole pages costs memory only for the
/// pages the program touches. `needed` is the tightest class for the new size and alignment.
#[inline]
pub(crate) const fn grower_class(needed: u32) -> u32 {
    match needed {
        24..=28 => 28,
        29..=32 => 32,
        33..=36 => 36,
        37..=42 => 42,
        43..=48 => 48,
        49..=54 => 54,
        _ => needed,
    }
}

/// The class a shrinking `realloc` moves to, if any: a block that now needs a class two powers of
/// two below its slot (a quarter of the slot or less) moves down, so that shrinking (for example
/// `Vec::shrink_to_fit`) returns the big slot. `None` means the block stays where it is.
#[inline]
pub(crate) const fn shrink_class(current: u32, needed: u32) -> Option<u32> {
    if needed + 4 <= current {
        Some(needed)
    } else {
        None
    }
}

/// `x`, computed into a register before it is used: a code-generation barrier that costs no
/// instruction (an empty `asm!` block), for an address the fast path uses more than once.
#[inline(always)]
pub(crate) fn in_register(mut x: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: an empty assembly block that only claims to change the register.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags))
    };
    x
}

/// Rounds `n` up to a multiple of `align` (a power of two); `None` on overflow.
#[inline]
pub(crate) const fn round_up(n: usize, align: usize) -> Option<usize> {
    match n.checked_add(align - 1) {
        Some(m) => Some(m & !(align - 1)),
        None => None,
    }
}

// ------------------------------------------------------------------ compile-time checks

// The slabs fit a 47-bit address space with room to spare (and next to other big reservations).
const _: () = assert!(SLABS_LEN + BASE_ALIGN <= 1 << 46);
// Enough slabs for real thread counts, and some left to share.
const _: () = assert!(OWNED_SLABS >= 256 && SHARED_SLABS >= 16 && OWNED_SLABS < NUM_SLABS);
// Class positions: metadata and shared links below the smallest class, every class in range.
const _: () = assert!(META_SC < LINKS_SC && LINKS_SC < MIN_SC);
const _: () = assert!(MAX_SC < NUM_SCS as u32 && NUM_SCS < CLASS_TABLE_LEN);
const _: () = assert!(size_class_computed(usize::MAX, 1) < CLASS_TABLE_LEN as u32);
const _: () = assert!(CLASS_TABLE_LEN - 1 == 128 && slot_size(7) == 0);
const _: () = assert!(slot_size(MIN_SC) == 8 && slot_size(MAX_SC) == 128 << 20);
// Every area of a slab class holds several slots; the largest class holds eight.
const _: () = assert!(slots_per_area(MAX_SC) == 8);
// Slot numbers of the shared lists fit the 32-bit halves of their head and link words.
const _: () = assert!(slots_per_area(MIN_SC) as u64 <= 1 << 32);
// Run slot counts fit the u32 bookkeeping.
const _: () = assert!(slots_per_run(MIN_SC) <= 1 << 16);
// The fixed metadata pages and the inbox come before the run tables, and the tables fit.
const _: () = assert!(GLOBAL_OFF + 4096 <= INBOX_OFF);
const _: () = assert!(INBOX_OFF + 8 * crate::remote::INBOX_LEN as usize <= RUNS_OFF);
const _: () = assert!(RUNS_OFF + RUNS_LEN <= 1 << AREA_BITS);
const _: () = assert!(EARLY_RUNS as usize * NUM_SCS * RUN_META_LEN <= 4096);
const _: () = assert!(runs_per_area(MIN_SC) as usize * RUN_META_LEN == RUN_TABLE_LEN);
// The fast-path class table and the bookkeeping fit their places.
const _: () = assert!(CLASS_TABLE_LEN * 32 <= COLD_OFF - HOT_OFF);
const _: () = assert!(NUM_SCS * 64 <= SHARED_HEADS_OFF - COLD_OFF);
const _: () = assert!(NUM_SCS * 8 <= SHARED_LIVE_OFF - SHARED_HEADS_OFF);
const _: () = assert!(SHARED_LIVE_OFF + NUM_SCS * 8 <= SHARED_HIGH_OFF);
const _: () = assert!(SHARED_HIGH_OFF + NUM_SCS * 8 <= GLOBAL_OFF);
// The registry of direct mappings lies between the inbox and the run tables.
const _: () = assert!(INBOX_OFF + 8 * crate::remote::INBOX_LEN as usize <= REGISTRY_OFF);
const _: () = assert!(REGISTRY_OFF + 8 * REGISTRY_LEN <= RUNS_OFF);
// The shared slabs' link words (8 bytes per slot, for every class) fit the positions between
// the metadata and the smallest class.
const _: () = assert!(shared_links_len() <= ((MIN_SC - LINKS_SC) as usize) << AREA_BITS);

/// Bytes of a shared slab's link words, all classes together.
pub(crate) const fn shared_links_len() -> usize {
    shared_links_offset(MAX_SC + 1)
}

/// Offset of class `sc`'s link words inside a shared slab's links region.
pub(crate) const fn shared_links_offset(sc: u32) -> usize {
    let mut c = MIN_SC;
    let mut total = 0;
    while c < sc {
        if slot_size(c) != 0 {
            total += 8 * slots_per_area(c) as usize;
        }
        c += 1;
    }
    total
}
