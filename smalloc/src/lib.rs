//! # smalloc: a sparse-address-space slab allocator
//!
//! smalloc is a general-purpose memory allocator that plugs in as Rust's global allocator:
//!
//! ```
//! use smalloc::Smalloc;
//! #[global_allocator]
//! static ALLOC: Smalloc = Smalloc::new();
//! # fn main() { let v = vec![1u8, 2, 3]; assert_eq!(v.len(), 3); }
//! ```
//!
//! It rests on one observation: reserving virtual *addresses* is nearly free, only *touching*
//! memory costs. So at first use smalloc reserves one huge region (32 TiB, `MAP_NORESERVE`,
//! nothing committed) and gives every slot of every slab a fixed place in it. The size class,
//! the slab and the slot number of a block are then just bits of its address, and freeing needs
//! nothing but the pointer: no headers, no lookups, no metadata beyond one free-list head word per
//! slab.
//!
//! # Address layout
//!
//! An address handed out is `base + offset`, and the offset's 45 bits read:
//!
//! ```text
//!   44      40 39      35 34                                                  0
//!  +----------+----------+-----------------------------------------------------+
//!  |   slab   |    sc    |            slot number           |  byte in slot    |
//!  |  5 bits  |  5 bits  |            35 - sc bits          |     sc bits      |
//!  +----------+----------+-----------------------------------------------------+
//!
//!   sc  slot size  slots/slab    slot number bits   byte bits
//!  ---  ---------  ----------    ----------------   ---------
//!    3      8 B        2^32             32               3
//!    4     16 B        2^31             31               4
//!    6     64 B        2^29             29               6
//!   12      4 KiB      2^23             23              12
//!   20      1 MiB      2^15             15              20
//!   31      2 GiB      2^4               4              31
//!  0-2   unused: a slot must hold an 8-byte link word
//! ```
//!
//! Every (slab, size class) pair owns a 32 GiB *area*; 32 slabs x 32 classes x 32 GiB makes the
//! 32 TiB reservation. The base is aligned to 2 GiB, so each slot is naturally aligned to its own
//! size, and a request's class is simply the smallest `sc` with `2^sc >= max(size, align)`.
//!
//! # Free lists
//!
//! Each slab keeps a lock-free LIFO free list whose links live inside the free slots themselves,
//! encoded so that all-zero memory is already a complete list (see [`freelist`] for the
//! encodings). The 1024 head words sit inside the [`Smalloc`] value, 32 per slab, so the heads of
//! different slabs never share a cache line. Pops and pushes are single compare-and-swaps on the
//! head word, which carries a push counter against the ABA problem.
//!
//! # Threads and failover
//!
//! Each thread starts at its own slab (thread number mod 32), so threads rarely touch the same
//! head. If the pop collides with another thread, or the slab is empty, the allocation moves on to
//! the next slab of the class (and the thread adopts the slab that worked); after a whole cycle
//! with an empty slab in it, it moves to the next bigger class. When even the 2 GiB class cannot
//! serve, and for anything bigger than 2 GiB or aligned above 2 GiB, the block gets a mapping of
//! its own ([`large`]), unmapped on free.
//!
//! # Robustness
//!
//! * Nothing in `alloc`, `dealloc`, `realloc` or `alloc_zeroed` prints, panics, locks or
//!   allocates; failure is a null pointer, and a failed `realloc` leaves the old block intact.
//! * If the OS refuses the reservation (`ulimit -v`, strict overcommit), every request goes to the
//!   fallback allocator (the system allocator unless [`Smalloc::with_fallback`] says otherwise).
//! * `alloc_zeroed` does not write to slots that were never used (the kernel's pages are zero
//!   already) and zeroes reused ones.
//! * Freed slots of 32 MiB and more give their pages back to the OS at once.
//! * There are no locks, so a child created by `fork()` in a multi-threaded program allocates
//!   normally.

#![deny(missing_docs)]

pub mod freelist;
pub mod large;
pub mod layout;

#[cfg(test)]
mod tests;

use core::alloc::{GlobalAlloc, Layout};
use core::cell::Cell;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::alloc::System;

use freelist::{Pop, SlotState};
use layout::{
    AREA_BITS, BASE_ALIGN, MAX_SC, NUM_SLABS, SLABS_LEN, area_offset, grower_class, head_index,
    head_index_of, shrink_class, size_class,
};

/// Smallest size class whose freed slots are purged (their pages returned to the OS): 32 MiB,
/// the size above which glibc, too, always gives memory back on free. Smaller slots keep their
/// pages, so that reusing them (a `Vec` growing through 4, 8, 16 MiB over and over) costs no
/// page faults.
pub const PURGE_SC: u32 = 25;

/// `base` before the reservation is attempted. Like [`FAILED`], it is a non-canonical address, so
/// `ptr - base` of any real pointer is far above [`SLABS_LEN`] and no pointer is mistaken for a
/// slot, and a single sign test on the hot path sends both states to the slow path.
const UNINIT: usize = 1 << 63;
/// `base` after the OS refused the reservation: everything goes to the fallback allocator.
const FAILED: usize = (1 << 63) | 1;

/// The allocator. All its state is a reservation base and 1024 free-list head words.
///
/// Create it with [`Smalloc::new`] (system allocator as fallback) or [`Smalloc::with_fallback`].
/// Each instance reserves its own 32 TiB region the first time it is used; a 47-bit address space
/// holds at most three of them, so use one (the global allocator) unless you know why not.
///
/// Dropping an instance returns its reservation to the OS (statics are never dropped), so every
/// block it handed out must be gone by then.
#[repr(C)]
pub struct Smalloc<F = System> {
    /// Address of the reservation, or [`UNINIT`] / [`FAILED`]. Read by every call, written once:
    /// kept on a cache line of its own so that no head's compare-and-swap evicts it.
    base: CacheLine<AtomicUsize>,
    /// Free-list heads, indexed by `slab * 32 + sc` (the top bits of a slot's offset). Each slab's
    /// 32 heads fill 256 bytes, so two slabs never share a cache line (nor a 128-byte pair).
    heads: CacheLine<[AtomicU64; NUM_SLABS * layout::NUM_SCS]>,
    /// Serves everything if the reservation fails.
    fallback: F,
}

/// Aligns its content to 128 bytes: a cache line, or a pair of them on CPUs that prefetch pairs.
#[repr(C, align(128))]
struct CacheLine<T>(T);

impl Smalloc<System> {
    /// A new allocator, falling back on [`std::alloc::System`] if the reservation fails.
    /// Reserves nothing yet: that happens on first use or in [`Smalloc::init`].
    pub const fn new() -> Self {
        Self::with_fallback(System)
    }
}

impl Default for Smalloc<System> {
    fn default() -> Self {
        Self::new()
    }
}

thread_local! {
    /// This thread's current slab, shifted to its place in a head index (`slab << 5`, so the fast
    /// path only ors in the class), or [`NO_SLAB`] before its first allocation.
    /// Const-initialized and without a destructor, so reading it never allocates and works
    /// during thread exit.
    static THREAD_SLAB: Cell<u32> = const { Cell::new(NO_SLAB) };
}
/// Marks a thread that has not been given a slab yet.
const NO_SLAB: u32 = u32::MAX;
/// Counts threads, to hand out starting slabs round-robin.
static THREAD_COUNT: AtomicU32 = AtomicU32::new(0);

/// The calling thread's slab, shifted left by [`layout::SC_BITS`]: `home_slab_bits() | sc` is
/// the index of its head word for class `sc`.
#[inline(always)]
fn home_slab_bits() -> usize {
    let s = THREAD_SLAB.get();
    if (s as usize) < NUM_SLABS << layout::SC_BITS {
        s as usize
    } else {
        first_slab() << layout::SC_BITS
    }
}

/// The calling thread's slab.
#[inline(always)]
fn home_slab() -> usize {
    home_slab_bits() >> layout::SC_BITS
}

/// Makes `slab` the calling thread's slab.
#[inline(always)]
fn set_home_slab(slab: usize) {
    THREAD_SLAB.set((slab << layout::SC_BITS) as u32);
}

#[cold]
#[inline(never)]
fn first_slab() -> usize {
    let s = THREAD_COUNT.fetch_add(1, Ordering::Relaxed) as usize % NUM_SLABS;
    set_home_slab(s);
    s
}

/// Writes zeroes where a slot handed to `alloc_zeroed` may hold something else.
///
/// # Safety
/// `p` must be a slot of at least `size` bytes (and at least 8) that the caller owns.
#[inline(always)]
unsafe fn zero_slot(p: *mut u8, state: SlotState, size: usize) {
    match state {
        SlotState::Fresh => {}
        // SAFETY: the slot is ours and at least 8 bytes; only its link word is non-zero.
        SlotState::Purged => unsafe { p.cast::<u64>().write(0) },
        // SAFETY: the slot is ours and at least `size` bytes.
        SlotState::Dirty => unsafe { p.write_bytes(0, size) },
    }
}

/// Copies `len` bytes of a block that `realloc` moves from `src` to `dst`.
///
/// When `dst` is known to read as zero past its link word (a fresh or purged slot, or a new
/// mapping), source pages that hold only zeroes are not copied: the destination has them
/// already. That keeps pages the program never touched (a big `Vec::with_capacity`, or a C
/// `realloc` of a whole slot whose size is all smalloc knows) from being committed by the copy.
/// Reading an untouched page maps the kernel's shared zero page, which costs no memory.
///
/// # Safety
/// `src` must be readable and `dst` writable for `len` bytes, and the two must not overlap.
unsafe fn move_bytes(dst: *mut u8, state: SlotState, src: *const u8, len: usize) {
    const CHUNK: usize = 4096;
    if state == SlotState::Dirty || len <= 2 * CHUNK {
        // SAFETY: forwarded from the caller.
        return unsafe { ptr::copy_nonoverlapping(src, dst, len) };
    }
    // The first chunk always, as it overwrites the destination's link word.
    // SAFETY: forwarded from the caller; len > CHUNK.
    unsafe { ptr::copy_nonoverlapping(src, dst, CHUNK) };
    let mut off = CHUNK;
    while off < len {
        let n = CHUNK.min(len - off);
        // SAFETY: [off, off + n) lies within both blocks.
        unsafe {
            if !is_all_zero(src.add(off), n) {
                ptr::copy_nonoverlapping(src.add(off), dst.add(off), n);
            }
        }
        off += n;
    }
}

/// Whether the `n` bytes at `p` are all zero. Stops at the first non-zero word, so a chunk of
/// real data costs a few loads.
///
/// # Safety
/// `p` must be readable for `n` bytes.
unsafe fn is_all_zero(p: *const u8, n: usize) -> bool {
    let words = n / 8;
    // SAFETY: every read lies within the n bytes at p; unaligned reads are allowed.
    unsafe {
        (0..words).all(|i| p.cast::<u64>().add(i).read_unaligned() == 0)
            && (words * 8..n).all(|i| *p.add(i) == 0)
    }
}

impl<F> Smalloc<F> {
    /// A new allocator that sends every request to `fallback` if the OS refuses the reservation.
    pub const fn with_fallback(fallback: F) -> Self {
        Smalloc {
            base: CacheLine(AtomicUsize::new(UNINIT)),
            heads: CacheLine([const { AtomicU64::new(0) }; NUM_SLABS * layout::NUM_SCS]),
            fallback,
        }
    }

    /// Makes the reservation now instead of at the first allocation. Optional and idempotent:
    /// the allocator initializes itself lazily, thread-safely and exactly once on first use. Call
    /// it from a constructor (`#[ctor::ctor]`, or through `smalloc-macros`) to take the one-time
    /// cost at program start.
    ///
    /// # Safety
    /// Calling it is always sound, any number of times and from any thread; it is `unsafe` only
    /// to keep the signature users of the original smalloc already call from their constructors.
    pub unsafe fn init(&self) {
        if self.base.0.load(Ordering::Acquire) == UNINIT {
            self.reserve();
        }
    }

    /// Whether the reservation is in place (`false` before first use and if the OS refused it,
    /// in which case every request is served by the fallback allocator).
    pub fn is_reserved(&self) -> bool {
        (self.base.0.load(Ordering::Acquire) as isize) >= 0
    }

    /// The address range of this instance's slabs, if reserved. Every slot smalloc hands out lies
    /// in it; direct mappings and fallback blocks do not.
    pub fn slab_range(&self) -> Option<core::ops::Range<usize>> {
        let base = self.base.0.load(Ordering::Acquire);
        ((base as isize) >= 0).then(|| base..base + SLABS_LEN)
    }

    /// How many bytes the block at `ptr` can really hold: its slot size, or the data pages of a
    /// direct mapping. `None` for blocks from the fallback allocator, which smalloc cannot size.
    ///
    /// # Safety
    /// `ptr` must be a live block allocated by this instance.
    pub unsafe fn usable_size(&self, ptr: *const u8) -> Option<usize> {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            Some(1 << layout::sc_of(off))
        } else if base == FAILED {
            None
        } else {
            // SAFETY: a live block of ours outside the slabs is a direct mapping.
            Some(unsafe { large::usable_size(ptr as *mut u8) })
        }
    }

    /// Reserves the region and publishes its base, or [`FAILED`]. Lock-free: racing threads each
    /// try, the first to publish wins and the others unmap theirs. Returns the published value.
    #[cold]
    #[inline(never)]
    fn reserve(&self) -> usize {
        let mine = match plat::reserve(SLABS_LEN + BASE_ALIGN) {
            Some(start) => {
                let start = start.as_ptr() as usize;
                let base = start.next_multiple_of(BASE_ALIGN);
                let lead = base - start;
                let tail = BASE_ALIGN - lead;
                // SAFETY: lead and tail are page-aligned parts of the fresh reservation, outside
                // [base, base + SLABS_LEN); nothing has used them.
                unsafe {
                    if lead > 0 {
                        plat::unmap(NonNull::new_unchecked(start as *mut u8), lead);
                    }
                    if tail > 0 {
                        plat::unmap(NonNull::new_unchecked((base + SLABS_LEN) as *mut u8), tail);
                    }
                    // Untouched slabs cost nothing in a core dump, but touched ones would: keep
                    // the heap out, as the core dump of a 32 TiB process is rarely wanted.
                    plat::exclude_from_core_dumps(
                        NonNull::new_unchecked(base as *mut u8),
                        SLABS_LEN,
                    );
                }
                base
            }
            None => FAILED,
        };
        match self
            .base
            .0
            .compare_exchange(UNINIT, mine, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => mine,
            Err(winner) => {
                if mine != FAILED {
                    // SAFETY: our reservation was never published, so nobody uses it.
                    unsafe { plat::unmap(NonNull::new_unchecked(mine as *mut u8), SLABS_LEN) };
                }
                winner
            }
        }
    }

    /// The head word of (`slab`, `sc`).
    #[inline(always)]
    fn head(&self, slab: usize, sc: u32) -> &AtomicU64 {
        self.head_at(head_index(slab, sc))
    }

    /// The head word with index `hi` (`slab * 32 + sc`).
    #[inline(always)]
    fn head_at(&self, hi: usize) -> &AtomicU64 {
        debug_assert!(hi < NUM_SLABS * layout::NUM_SCS);
        // SAFETY: callers derive hi from a slab < 32 and a class < 32, so it is < 1024.
        unsafe { self.heads.0.get_unchecked(hi) }
    }

    /// One pop attempt on (`slab`, `sc`).
    #[inline(always)]
    fn try_pop(&self, base: usize, slab: usize, sc: u32) -> Pop {
        self.try_pop_at(base, head_index(slab, sc), sc)
    }

    /// One pop attempt on the slab whose head word has index `hi` (of class `sc`).
    #[inline(always)]
    fn try_pop_at(&self, base: usize, hi: usize, sc: u32) -> Pop {
        // SAFETY: the head and the area belong together and lie in the live reservation.
        unsafe { freelist::try_pop(self.head_at(hi), base + area_offset(hi), sc) }
    }

    /// Pops a slot of class `sc` or bigger, up to class `max_sc`, failing over across slabs and
    /// classes. `None` when every slab of every class in that range is exhausted.
    #[inline(never)]
    fn pop_failover(&self, base: usize, sc: u32, max_sc: u32) -> Option<(*mut u8, SlotState)> {
        let home = home_slab();
        for sc in sc..=max_sc {
            loop {
                let mut saw_empty = false;
                for k in 0..NUM_SLABS {
                    let slab = (home + k) % NUM_SLABS;
                    match self.try_pop(base, slab, sc) {
                        Pop::Got(p, state) => {
                            if slab != home {
                                set_home_slab(slab);
                            }
                            return Some((p, state));
                        }
                        Pop::Empty => saw_empty = true,
                        Pop::Collision => {}
                    }
                }
                if saw_empty {
                    break;
                }
                // Only collisions: every other thread is making progress; go around again.
            }
        }
        None
    }

    /// Pushes the slot at `ptr` (at offset `off`) back onto its slab's free list.
    ///
    /// # Safety
    /// `ptr` must be a live slot of this instance at offset `off` from the base.
    #[inline(always)]
    unsafe fn free_slot(&self, ptr: *mut u8, off: usize) {
        let hi = head_index_of(off);
        let sc = (hi & (layout::NUM_SCS - 1)) as u32;
        if sc >= PURGE_SC {
            // SAFETY: forwarded.
            return unsafe { self.free_big_slot(ptr, off) };
        }
        // Shifting left first drops the slab and class bits without a 64-bit mask constant.
        let slot = ((off << (usize::BITS - AREA_BITS)) >> (usize::BITS - AREA_BITS + sc)) as u32;
        // SAFETY: the slot is ours and dead per the caller; off < SLABS_LEN so hi < 1024.
        unsafe { freelist::push(self.head_at(hi), ptr, slot, SlotState::Dirty) };
    }

    /// [`Self::free_slot`] for slots big enough to be worth returning their pages to the OS.
    ///
    /// # Safety
    /// As for [`Self::free_slot`].
    #[cold]
    #[inline(never)]
    unsafe fn free_big_slot(&self, ptr: *mut u8, off: usize) {
        let d = layout::decode(off);
        // SAFETY: the whole slot is ours and dead; it is page-aligned (>= 32 MiB, base aligned).
        let purged = unsafe { plat::purge(NonNull::new_unchecked(ptr), 1 << d.sc) };
        let state = if purged {
            SlotState::Purged
        } else {
            SlotState::Dirty
        };
        // SAFETY: as in free_slot.
        unsafe { freelist::push(self.head(d.slab, d.sc), ptr, d.slot, state) };
    }
}

impl<F: GlobalAlloc> Smalloc<F> {
    /// The allocation path shared by `alloc` and `alloc_zeroed`: one pop from the thread's slab,
    /// everything else out of line.
    #[inline(always)]
    unsafe fn alloc_impl<const ZERO: bool>(&self, layout: Layout) -> *mut u8 {
        let sc = size_class(layout.size(), layout.align());
        let base = self.base.0.load(Ordering::Acquire);
        if sc <= MAX_SC && (base as isize) >= 0 {
            if let Pop::Got(p, state) = self.try_pop_at(base, home_slab_bits() | sc as usize, sc) {
                if ZERO {
                    // SAFETY: the slot is ours and holds 2^sc >= max(size, 8) bytes.
                    unsafe { zero_slot(p, state, layout.size()) };
                }
                return p;
            }
        }
        // SAFETY: forwarded from the caller.
        unsafe { self.alloc_slow(layout, sc, ZERO) }
    }

    /// Everything `alloc` does not do in its first pop: first-use reservation, the fallback
    /// allocator, failover across slabs and classes, and direct mappings.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&self, layout: Layout, sc: u32, zero: bool) -> *mut u8 {
        let mut base = self.base.0.load(Ordering::Acquire);
        if base == UNINIT {
            base = self.reserve();
        }
        if base == FAILED {
            // SAFETY: forwarded from the caller.
            return unsafe {
                if zero {
                    self.fallback.alloc_zeroed(layout)
                } else {
                    self.fallback.alloc(layout)
                }
            };
        }
        // SAFETY: forwarded from the caller.
        unsafe {
            self.alloc_from(base, sc, layout.size(), layout.align(), zero)
                .0
        }
    }

    /// A block of class `sc` or bigger holding `size` bytes aligned to `align`, or a direct
    /// mapping if the slabs cannot serve it, with the state its memory is in (direct mappings
    /// are fresh). With `zero`, the block is zeroed. `base` must be the live reservation and `sc`
    /// at least `size_class(size, align)`.
    unsafe fn alloc_from(
        &self,
        base: usize,
        sc: u32,
        size: usize,
        align: usize,
        zero: bool,
    ) -> (*mut u8, SlotState) {
        if sc <= MAX_SC {
            if let Some((p, state)) = self.pop_failover(base, sc, MAX_SC) {
                if zero {
                    // SAFETY: the slot is ours and holds at least 2^sc >= max(size, 8) bytes.
                    unsafe { zero_slot(p, state, size) };
                }
                return (p, state);
            }
        }
        (large::alloc(size, align), SlotState::Fresh)
    }

    /// Frees a block that is not in the slabs: a direct mapping, or a fallback block.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        match self.base.0.load(Ordering::Acquire) {
            // SAFETY: with no reservation every block came from the fallback.
            FAILED => unsafe { self.fallback.dealloc(ptr, layout) },
            // Nothing was ever allocated, so this cannot be one of ours.
            UNINIT => {}
            // SAFETY: a live block of ours outside the slabs is a direct mapping.
            _ => unsafe { large::dealloc(ptr) },
        }
    }

    /// `realloc` of a slot: stay in place when it still fits (unless the block shrank to a
    /// quarter of the slot or less), otherwise move to a grower class.
    #[inline(always)]
    unsafe fn realloc_slot(
        &self,
        base: usize,
        ptr: *mut u8,
        off: usize,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let current = layout::sc_of(off);
        let needed = size_class(new_size, layout.align());
        if needed <= current {
            let Some(target) = shrink_class(current, needed) else {
                return ptr;
            };
            // Only a smaller slot is worth the copy.
            if let Some((p, _)) = self.pop_failover(base, target, current - 1) {
                // SAFETY: both blocks are live and distinct; new_size fits both.
                unsafe {
                    ptr::copy_nonoverlapping(ptr, p, new_size);
                    self.free_slot(ptr, off);
                }
                return p;
            }
            // No smaller slot to be had: keeping the block where it is is still correct.
            return ptr;
        }
        // SAFETY: base is the live reservation.
        let (p, state) =
            unsafe { self.alloc_from(base, grower_class(needed), new_size, layout.align(), false) };
        if !p.is_null() {
            // SAFETY: the old block holds layout.size() < new_size bytes; blocks are distinct.
            unsafe {
                move_bytes(p, state, ptr, layout.size());
                self.free_slot(ptr, off);
            }
        }
        p
    }

    /// `realloc` of a block outside the slabs.
    #[cold]
    #[inline(never)]
    unsafe fn realloc_slow(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let base = self.base.0.load(Ordering::Acquire);
        match base {
            // SAFETY: with no reservation every block came from the fallback.
            FAILED => return unsafe { self.fallback.realloc(ptr, layout, new_size) },
            UNINIT => return ptr::null_mut(),
            _ => {}
        }
        // SAFETY: a live block of ours outside the slabs is a direct mapping.
        let usable = unsafe { large::usable_size(ptr) };
        let needed = size_class(new_size, layout.align());
        if new_size <= usable {
            // Much smaller and slab-sized: move into a slot, so the mapping goes back whole.
            if needed <= MAX_SC && new_size <= usable / 4 {
                if let Some((p, _)) = self.pop_failover(base, needed, MAX_SC) {
                    // SAFETY: both blocks are live and distinct; new_size fits both.
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, p, new_size);
                        large::dealloc(ptr);
                    }
                    return p;
                }
            }
            // SAFETY: new_size <= usable.
            unsafe { large::shrink_in_place(ptr, new_size) };
            return ptr;
        }
        if layout.align() <= plat::page_size() {
            // SAFETY: ptr is a live direct mapping.
            let p = unsafe { large::grow(ptr, new_size) };
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: base is the live reservation.
        let (p, state) = unsafe { self.alloc_from(base, needed, new_size, layout.align(), false) };
        if !p.is_null() {
            // SAFETY: the old block holds layout.size() <= usable < new_size bytes.
            unsafe {
                move_bytes(p, state, ptr, layout.size());
                large::dealloc(ptr);
            }
        }
        p
    }
}

// SAFETY: every method upholds the GlobalAlloc contract: blocks are at least `layout.size()`
// bytes, aligned to `layout.align()` (slots are naturally aligned and their class covers the
// alignment; direct mappings are aligned explicitly), stay valid until freed, and are never
// handed out twice (each pop is won by exactly one compare-and-swap). Failure returns null.
unsafe impl<F: GlobalAlloc> GlobalAlloc for Smalloc<F> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.alloc_impl::<false>(layout) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { self.alloc_impl::<true>(layout) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            // SAFETY: the caller hands back a live block of ours, and it lies in the slabs.
            unsafe { self.free_slot(ptr, off) }
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.dealloc_slow(ptr, layout) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            // SAFETY: forwarded from the caller; the block lies in the slabs.
            unsafe { self.realloc_slot(base, ptr, off, layout, new_size) }
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.realloc_slow(ptr, layout, new_size) }
        }
    }
}

impl<F> Drop for Smalloc<F> {
    fn drop(&mut self) {
        let base = *self.base.0.get_mut();
        if (base as isize) >= 0 {
            // SAFETY: dropping needs exclusive access, and every block must be gone by now (see
            // the type's docs), so nothing uses the reservation any more.
            unsafe { plat::unmap(NonNull::new_unchecked(base as *mut u8), SLABS_LEN) };
        }
    }
}
