//! The reservation: one huge range of address space, and the few words of state that belong to
//! it as a whole.
//!
//! Every piece of mutable state of an instance lives inside its reservation, found by address
//! arithmetic from the base: per-slab metadata in each slab's class position 0, the shared lists'
//! link words in the shared slabs' class positions 1-2, and the reservation-wide words below
//! ([`GlobalMeta`]) in slab 0's metadata area. Memory that was never written reads as zero, and
//! zero is the initial value of every one of them: nothing is initialized, ever.

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::{
    AREA_MASK, BASE_ALIGN, GLOBAL_OFF, LINKS_SC, MAX_SC, MIN_SC, NUM_SLABS, OWNED_SLABS,
    SHARED_HEADS_OFF, SHARED_HIGH_OFF, SHARED_LIVE_OFF, SLABS_LEN, area_offset,
    shared_links_offset, slot_size, slots_per_area,
};
use crate::ownership;
use crate::purge::{self, RELEASED_BUDGET};
use crate::slab::Slab;

/// The reservation-wide state.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct GlobalMeta {
    /// One bit per owned slab: set while a thread owns it.
    pub(crate) claimed: [AtomicU64; NUM_SLABS / 64],
    /// Threads attached to the instance (they may hold pointers into the reservation).
    pub(crate) attached: AtomicU64,
    /// Set when the instance was dropped while threads were still attached: the reservation then
    /// stays mapped (its memory given back) so that their state never points at unmapped memory.
    pub(crate) dead: AtomicU64,
    /// Threads that have used the shared slabs: spreads them over the shared slabs.
    pub(crate) shared_threads: AtomicU64,
    /// Empty bytes left in the slabs nobody owns (approximate; see `purge`).
    pub(crate) released_empty: AtomicU64,
    /// One bit per owned slab that nobody owns and that keeps empty runs for its next owner.
    pub(crate) warm: [AtomicU64; NUM_SLABS / 64],
    /// One more than the highest owned slab ever claimed: the statistics look no further.
    pub(crate) slabs_used: AtomicU64,
    /// Live direct mappings (see `large`).
    pub(crate) direct_blocks: AtomicU64,
    /// Bytes of the live direct mappings, header pages included.
    pub(crate) direct_bytes: AtomicU64,
    /// Bytes of shared slabs' slots given back to the OS, all time.
    pub(crate) shared_purged: AtomicU64,
}

/// Most slabs an exiting thread cools to bring the unowned slabs' empty runs under the budget.
const COOL_MAX: usize = 8;

/// A live reservation, by its base address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Reservation {
    /// The base: aligned to [`BASE_ALIGN`], `SLABS_LEN` bytes long.
    pub(crate) base: usize,
}

impl Reservation {
    /// The reservation-wide state.
    #[inline(always)]
    pub(crate) fn global(self) -> &'static GlobalMeta {
        // SAFETY: slab 0's metadata area is mapped for the reservation's life; GlobalMeta is all
        // atomics, for which all-zero is a valid value.
        unsafe { &*core::ptr::with_exposed_provenance(self.base + GLOBAL_OFF) }
    }

    /// Owned slab `index`.
    #[inline(always)]
    pub(crate) fn slab(self, index: usize) -> Slab {
        debug_assert!(index < OWNED_SLABS);
        Slab::new(self.base, index)
    }

    /// Claims a free owned slab for the calling thread.
    pub(crate) fn claim(self) -> Option<usize> {
        let index = ownership::claim(&self.global().claimed, OWNED_SLABS)?;
        self.global()
            .slabs_used
            .fetch_max(index as u64 + 1, Ordering::Relaxed);
        Some(index)
    }

    /// Gives owned slab `index` back, as its owner exits: tidies it, keeps its empty runs warm
    /// for the next owner, and keeps the empty runs of all the slabs nobody owns within
    /// [`RELEASED_BUDGET`] by cooling the highest-numbered warm ones (see `purge`).
    ///
    /// # Safety
    /// The caller owns the slab and does not touch it afterwards.
    pub(crate) unsafe fn release_slab(self, index: usize) {
        let g = self.global();
        let s = self.slab(index);
        // SAFETY: per the caller, until the release below.
        unsafe {
            let kept = s.tidy_for_release() as u64;
            g.released_empty.fetch_add(kept, Ordering::Relaxed);
            let mut warm = kept > 0;
            for _ in 0..COOL_MAX {
                if g.released_empty.load(Ordering::Relaxed) <= RELEASED_BUDGET {
                    break;
                }
                match ownership::highest(&g.warm, OWNED_SLABS) {
                    Some(j) if j > index || !warm => {
                        if ownership::claim_exact(&g.claimed, j) {
                            self.cool(j);
                            ownership::release(&g.claimed, j);
                        } else {
                            // Claimed meanwhile: no longer unowned.
                            ownership::clear(&g.warm, j);
                        }
                    }
                    // This slab is the highest of the warm ones: it goes.
                    _ if warm => {
                        self.cool(index);
                        warm = false;
                    }
                    _ => break,
                }
            }
            ownership::release(&g.claimed, index);
            // Marked warm only once released: a thread cooling warm slabs claims them first.
            if warm {
                ownership::set(&g.warm, index);
            }
        }
    }

    /// Gives back every empty run of slab `index`, and takes it off the warm set.
    ///
    /// # Safety
    /// The caller owns the slab.
    unsafe fn cool(self, index: usize) {
        let g = self.global();
        ownership::clear(&g.warm, index);
        // SAFETY: per the caller.
        let cooled = unsafe { self.slab(index).cool() };
        purge::uncount_released(&g.released_empty, cooled as u64);
    }

    /// Takes slab `index`, just claimed by a thread or by `trim`, off the warm set and its empty
    /// runs off the count of the unowned slabs'.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn unwarm(self, index: usize) {
        let g = self.global();
        ownership::clear(&g.warm, index);
        // SAFETY: per the caller.
        let empty = unsafe { (*self.slab(index).header()).empty };
        purge::uncount_released(&g.released_empty, empty as u64);
    }

    /// Gives owned slab `index` back (a temporary claim, as `trim`'s).
    pub(crate) fn release(self, index: usize) {
        ownership::release(&self.global().claimed, index)
    }

    /// The head word of the list of class `sc` in shared slab `shared` (`0..SHARED_SLABS`).
    #[inline(always)]
    pub(crate) fn shared_head(self, shared: usize, sc: u32) -> &'static AtomicU64 {
        let slab = OWNED_SLABS + shared;
        // SAFETY: inside the shared slab's metadata area, mapped for the reservation's life;
        // the word is only accessed atomically.
        unsafe {
            crate::sync::word(self.base + area_offset(slab, 0) + SHARED_HEADS_OFF + sc as usize * 8)
        }
    }

    /// The link word of slot `slot` of class `sc` in shared slab `shared`.
    #[inline(always)]
    pub(crate) fn shared_link(self, shared: usize, sc: u32, slot: u32) -> &'static AtomicU64 {
        debug_assert!((MIN_SC..=MAX_SC).contains(&sc) && slot < slots_per_area(sc));
        let slab = OWNED_SLABS + shared;
        let links = self.base + area_offset(slab, LINKS_SC) + shared_links_offset(sc);
        // SAFETY: the links region of the shared slab (class positions 1-2) holds 8 bytes for
        // every slot of every class; only accessed atomically.
        unsafe { crate::sync::word(links + slot as usize * 8) }
    }

    /// The count of live blocks of class `sc` in shared slab `shared` (wrapping: a block may be
    /// freed by one thread's decrement before another thread's increment lands).
    #[inline(always)]
    pub(crate) fn shared_live(self, shared: usize, sc: u32) -> &'static AtomicU64 {
        let slab = OWNED_SLABS + shared;
        // SAFETY: inside the shared slab's metadata area, mapped for the reservation's life;
        // only accessed atomically.
        unsafe {
            crate::sync::word(self.base + area_offset(slab, 0) + SHARED_LIVE_OFF + sc as usize * 8)
        }
    }

    /// The number of slots of class `sc` of shared slab `shared` ever handed out is at most this:
    /// one more than the highest slot number popped while fresh.
    #[inline(always)]
    pub(crate) fn shared_high(self, shared: usize, sc: u32) -> &'static AtomicU64 {
        let slab = OWNED_SLABS + shared;
        // SAFETY: as for shared_live.
        unsafe {
            crate::sync::word(self.base + area_offset(slab, 0) + SHARED_HIGH_OFF + sc as usize * 8)
        }
    }

    /// Address of slot `slot` of class `sc` in shared slab `shared`.
    #[inline(always)]
    pub(crate) fn shared_slot(self, shared: usize, sc: u32, slot: u32) -> usize {
        self.base + area_offset(OWNED_SLABS + shared, sc) + slot as usize * slot_size(sc)
    }

    /// The shared slab and slot number of a block of a shared slab (at offset `off`).
    #[inline(always)]
    pub(crate) fn shared_locate(off: usize, sc: u32) -> (usize, u32) {
        (
            crate::layout::slab_of(off) - OWNED_SLABS,
            ((off & AREA_MASK) / slot_size(sc)) as u32,
        )
    }
}

/// Reserves the address range and returns its base, aligned to [`BASE_ALIGN`], or `None` if the
/// OS refuses.
pub(crate) fn reserve() -> Option<usize> {
    reserve_aligned(SLABS_LEN, BASE_ALIGN)
}

/// Reserves `len` bytes of address space starting at a multiple of `align` (a power of two, at
/// least a page), kept out of core dumps and of transparent huge pages; returns the start, or
/// `None` if the OS refuses.
pub(crate) fn reserve_aligned(len: usize, align: usize) -> Option<usize> {
    let start = smalloc_plat::reserve(len.checked_add(align)?)?
        .as_ptr()
        .expose_provenance();
    let base = start.next_multiple_of(align);
    let lead = base - start;
    let tail = align - lead;
    // SAFETY: lead and tail are page-aligned parts of the fresh reservation outside
    // [base, base + len); nothing has used any of it.
    unsafe {
        let at = |a: usize| NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(a));
        if lead > 0 {
            smalloc_plat::unmap(at(start), lead);
        }
        if tail > 0 {
            smalloc_plat::unmap(at(base + len), tail);
        }
        // Untouched slabs cost nothing in a core dump, but touched ones would: keep the heap out,
        // as the core dump of a 32 TiB process is rarely wanted.
        smalloc_plat::exclude_from_core_dumps(at(base), len);
        // Where transparent huge pages are on, one touched 4 KiB page of a sparse region could
        // cost 2 MiB. Small classes of many threads are spread wide; keep them in small pages.
        smalloc_plat::no_huge_pages(at(base), len);
    }
    Some(base)
}

/// Unmaps the reservation at `base`.
///
/// # Safety
/// Nothing may use the reservation afterwards: no live block, no attached thread.
pub(crate) unsafe fn unmap(base: usize) {
    // SAFETY: per the caller.
    unsafe {
        smalloc_plat::unmap(
            NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(base)),
            SLABS_LEN,
        )
    };
}

/// Marks the reservation dead and gives all its memory back, but keeps its addresses mapped:
/// threads still attached may read their (now zeroed) state through it.
///
/// # Safety
/// No block of the reservation may be live, and no thread may be inside the allocator for it.
pub(crate) unsafe fn retire(base: usize) {
    let r = Reservation { base };
    r.global().dead.store(1, Ordering::Release);
    let global_page = (base + GLOBAL_OFF) & !(smalloc_plat::page_size() - 1);
    // SAFETY: per the caller nothing in the reservation is live; the page holding the global
    // state (with the dead mark) is kept.
    unsafe {
        let at = |a: usize| NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(a));
        smalloc_plat::purge(at(base), global_page - base);
        let after = global_page + smalloc_plat::page_size();
        smalloc_plat::purge(at(after), base + SLABS_LEN - after);
    }
}
