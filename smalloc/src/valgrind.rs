//! Running under valgrind: a reservation that fits valgrind's address space, and client requests
//! that tell memcheck where every block begins and ends.
//!
//! # Why a second layout
//!
//! valgrind gives the program it runs a small address space: on x86_64 Linux, valgrind 3.19 maps
//! at most 32 GiB in one piece and about 112 GiB in all, below 128 GiB. smalloc's reservation
//! (32 TiB) cannot be had there, and without this module smalloc would fall back to the system
//! allocator, which memcheck replaces with its own: a program tested under memcheck would test
//! memcheck's allocator, not smalloc.
//!
//! So when smalloc finds itself under valgrind (the `RUNNING_ON_VALGRIND` client request, a few
//! no-op rotates when not under valgrind, asked once, when the reservation is made), it reserves
//! a small region instead and serves every request from it with the *shared-slab* algorithm of
//! `shared` (the original smalloc design: one lock-free list per slab and class, link words in a
//! side table, zero is initialization) over a smaller geometry:
//!
//! ```text
//!   offset:  | slab: 1 bit | class: 6 bits | byte in area: 26 bits |     8 GiB in all
//!   class positions 0-5: metadata (list heads, link words, block sizes); 6-46: slots of
//!   8 B to 8 MiB, 64 MiB of them per class and slab; bigger requests: direct mappings
//! ```
//!
//! The native layout is untouched, and so are the fast paths: `Smalloc::base` holds the
//! region's address with the top bit set, a non-canonical value like `UNINIT` and `FAILED`, which
//! no thread's state holds and no pointer lies near. Every native fast-path check then fails (a
//! thread never attaches, so its fast-path table is the always-empty one), every call reaches a
//! slow path, and the slow paths hand the tagged base to this module. Its cost natively is one
//! client request when the reservation is made.
//!
//! # What memcheck is told
//!
//! * `MALLOCLIKE_BLOCK` for every block handed out, with the size the program asked for (the rest
//!   of the slot stays inaccessible) and `is_zeroed` for `alloc_zeroed`/`calloc`; `FREELIKE_BLOCK`
//!   on every free; `RESIZEINPLACE_BLOCK` when `realloc` keeps the block where it is.
//! * `MAKE_MEM_NOACCESS` over every slot area when the region is reserved, and over the tail of a
//!   direct mapping past the requested size: an access anywhere in the heap outside a live block
//!   is an error, as under memcheck's own allocator.
//! * The allocator itself never reads or writes a free block: the free lists' link words live in
//!   a side table (as in the shared slabs natively), the requested sizes in another, so memcheck
//!   has nothing of the allocator's own work to excuse. The metadata positions stay accessible.
//!
//! To make memcheck's reports as useful as its own allocator's:
//!
//! * **Redzones**: a request is served from the class of `size + 16` bytes, so at least 16
//!   inaccessible bytes follow every block: an overrun by a few bytes is reported, not silently
//!   written into the next block.
//! * **Exact sizes**: the requested size of each live block is recorded (a side table of 32-bit
//!   words for slots, a small table for direct mappings), so `usable_size` (and the C ABI's
//!   `malloc_usable_size`) return it and C's `realloc` copies only bytes the program owns.
//! * **Double frees**: freeing a block that is not live (its recorded size is zero) is reported
//!   through `FREELIKE_BLOCK` ("Invalid free") and otherwise ignored, so the free list is never
//!   corrupted.
//! * **Quarantine**: freed blocks of slots up to 64 KiB wait in a ring of 1024 before their slot
//!   is reused, so a use after free is reported even after a few more allocations (memcheck's
//!   allocator does the same with `--freelist-vol`).
//!
//! # What differs from a native run
//!
//! Every call is a slow-path call (nothing is per-thread), the size classes are the same but
//! every request takes a class 16 bytes bigger, `realloc` never remaps a direct mapping (it moves
//! the block), and `trim` gives nothing back. What memcheck checks is still smalloc: its blocks,
//! their classes in the address bits, `realloc`'s moves and the C ABI's sorting of pointers.

use core::ptr::{self, NonNull, with_exposed_provenance_mut};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::large;
use crate::layout::{MIN_SC, NUM_SCS, SC_BITS, size_class, slot_size};
use crate::shared::{self, Pop, SlotState};
use crate::thread;

// ------------------------------------------------------------------ client requests

/// valgrind's request codes (`valgrind.h`, `memcheck.h` of valgrind 3.19).
const RUNNING_ON_VALGRIND: usize = 0x1001;
const MALLOCLIKE_BLOCK: usize = 0x1301;
const FREELIKE_BLOCK: usize = 0x1302;
const RESIZEINPLACE_BLOCK: usize = 0x130b;
/// memcheck's `MAKE_MEM_NOACCESS`: `VG_USERREQ_TOOL_BASE('M', 'C')`.
const MAKE_MEM_NOACCESS: usize = 0x4d43_0000;

/// A client request: `args` is the request code and its five arguments; returns valgrind's
/// answer, or `default` when not running under valgrind (where the sequence is four rotates of
/// `rdi` by 128 bits in all, and an exchange of `rbx` with itself: it changes nothing).
#[inline(always)]
fn request(default: usize, args: [usize; 6]) -> usize {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        let mut result = default;
        // SAFETY: the sequence of valgrind.h for amd64. Natively the rotates leave `rdi` as it
        // was (3 + 13 + 61 + 51 = 128 bits) and only change flags, which the asm may clobber;
        // `xchg rbx, rbx` changes nothing. Under valgrind the core reads the six words at `rax`
        // and writes its answer to `rdx`. The block stays alive across the asm.
        unsafe {
            core::arch::asm!(
                "rol rdi, 3",
                "rol rdi, 13",
                "rol rdi, 61",
                "rol rdi, 51",
                "xchg rbx, rbx",
                in("rax") args.as_ptr(),
                inout("rdx") result,
                options(nostack),
            );
        }
        result
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    {
        let _ = args;
        default
    }
}

/// Whether the program runs under valgrind (any tool).
pub(crate) fn running() -> bool {
    request(0, [RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]) != 0
}

/// Tells valgrind that `[p, p + size)` is a new heap block, defined if `zeroed`.
#[inline(always)]
fn malloclike(p: usize, size: usize, zeroed: bool) {
    request(0, [MALLOCLIKE_BLOCK, p, size, 0, zeroed as usize, 0]);
}

/// Tells valgrind that the block at `p` is freed (memcheck reports it if `p` is no live block).
#[inline(always)]
fn freelike(p: usize) {
    request(0, [FREELIKE_BLOCK, p, 0, 0, 0, 0]);
}

/// Tells valgrind that the block at `p` now has `new` bytes instead of `old`.
#[inline(always)]
fn resize_in_place(p: usize, old: usize, new: usize) {
    request(0, [RESIZEINPLACE_BLOCK, p, old, new, 0, 0]);
}

/// Marks `[p, p + len)` inaccessible for memcheck.
#[inline(always)]
fn make_noaccess(p: usize, len: usize) {
    request(0, [MAKE_MEM_NOACCESS, p, len, 0, 0, 0]);
}

// ------------------------------------------------------------------ geometry

/// Bits of an area: 64 MiB per (slab, class).
const AREA_BITS: u32 = 26;
/// Slabs of the region, all shared.
const SLABS: usize = 2;
/// Bytes of address space a slab spans.
const SLAB_SPAN_BITS: u32 = SC_BITS + AREA_BITS;
/// Bytes of the region: 8 GiB.
pub(crate) const LEN: usize = SLABS << SLAB_SPAN_BITS;
/// Alignment of the region's base: an area, so that every slot is aligned as its class says.
const ALIGN: usize = 1 << AREA_BITS;
/// Mask of the byte in an area.
const AREA_MASK: usize = (1 << AREA_BITS) - 1;
/// Largest class served from the region (8 MiB slots, eight to an area).
const MAX_SC: u32 = 46;
/// Bytes kept inaccessible after every block, at least.
const REDZONE: usize = 16;

/// Set in `Smalloc::base` for a region of this module (`UNINIT` and `FAILED` have it too, with
/// no address).
const TAG: usize = 1 << 63;

/// Slots in one area of class `sc`.
const fn slots_per_area(sc: u32) -> u32 {
    ((1 << AREA_BITS) / slot_size(sc)) as u32
}

/// Offset of the first word of class `sc` in a table of `word` bytes per slot of every class.
const fn table_offset(sc: u32, word: usize) -> usize {
    let mut c = MIN_SC;
    let mut total = 0;
    while c < sc {
        if slot_size(c) != 0 {
            total += word * slots_per_area(c) as usize;
        }
        c += 1;
    }
    total
}

// Metadata of a slab, in its class positions 0 to 5: list heads (and in slab 0 the region-wide
// words) in position 0; the link words from position 1; the requested sizes after them.
/// Offset of the list heads ([`NUM_SCS`] words).
const HEADS_OFF: usize = 0;
/// Offset, in slab 0, of the counter that spreads threads over the slabs.
const PREF_OFF: usize = 4096;
/// Offset, in slab 0, of the quarantine's counter.
const QUARANTINE_NEXT_OFF: usize = PREF_OFF + 8;
/// Offset, in slab 0, of the quarantine ring ([`QUARANTINE_LEN`] words).
const QUARANTINE_OFF: usize = 8192;
/// Freed blocks waiting before their slot is reused.
const QUARANTINE_LEN: usize = 1024;
/// Largest slot whose blocks wait in the quarantine.
const QUARANTINE_MAX_SLOT: usize = 64 << 10;
/// Offset, in slab 0, of the table of direct mappings ([`DIRECT_LEN`] entries of two words).
const DIRECT_OFF: usize = 1 << 16;
/// Entries of the table of direct mappings (live direct mappings at most).
const DIRECT_LEN: usize = 1 << 16;
/// Offset of the link words (8 bytes per slot of every class).
const LINKS_OFF: usize = 1 << AREA_BITS;
/// Offset of the requested sizes (4 bytes per slot of every class).
const SIZES_OFF: usize = LINKS_OFF + table_offset(MAX_SC + 1, 8);
/// Freed slots from this size up are given back to the OS at once.
const PURGE_MIN_SLOT: usize = 1 << 20;

const _: () = assert!(LEN + ALIGN <= 1 << 35);
const _: () = assert!(slots_per_area(MAX_SC) == 8 && MAX_SC < NUM_SCS as u32);
const _: () = assert!(QUARANTINE_OFF + 8 * QUARANTINE_LEN <= DIRECT_OFF);
const _: () = assert!(DIRECT_OFF + 16 * DIRECT_LEN <= 1 << AREA_BITS);
const _: () = assert!(SIZES_OFF + table_offset(MAX_SC + 1, 4) <= (MIN_SC as usize) << AREA_BITS);
// Requested sizes (plus one) fit the 32-bit words of the size table.
const _: () = assert!(slot_size(MAX_SC) < u32::MAX as usize);

/// Whether `base` (a value of `Smalloc::base`) names a region of this module.
#[inline(always)]
pub(crate) const fn is_region(base: usize) -> bool {
    base & TAG != 0 && base & !TAG > 1
}

/// The address range of the region named by `base`.
pub(crate) const fn range(base: usize) -> core::ops::Range<usize> {
    let start = base & !TAG;
    start..start + LEN
}

/// Reserves a region and returns the value of `Smalloc::base` that names it, or `None`.
pub(crate) fn reserve() -> Option<usize> {
    let base = crate::reservation::reserve_aligned(LEN, ALIGN)?;
    // One area at a time: memcheck warns of every change of more than 256 MiB.
    for s in 0..SLABS {
        for sc in MIN_SC..NUM_SCS as u32 {
            make_noaccess(base + area_offset(s, sc), 1 << AREA_BITS);
        }
    }
    Some(base | TAG)
}

/// Unmaps the region named by `base`.
///
/// # Safety
/// Nothing may use the region afterwards.
pub(crate) unsafe fn unmap(base: usize) {
    // SAFETY: per the caller.
    unsafe { smalloc_plat::unmap(at(base & !TAG), LEN) };
}

/// `a` as a pointer (a non-zero address).
fn at(a: usize) -> NonNull<u8> {
    // SAFETY: every caller passes an address inside a mapping, never zero.
    unsafe { NonNull::new_unchecked(with_exposed_provenance_mut(a)) }
}

/// Offset of the area of (`slab`, `sc`) from the region's start.
const fn area_offset(slab: usize, sc: u32) -> usize {
    (slab << SLAB_SPAN_BITS) | ((sc as usize) << AREA_BITS)
}

/// A slot of the region: slab, class and slot number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    slab: usize,
    sc: u32,
    n: u32,
}

/// A live region, by its start address.
#[derive(Clone, Copy, Debug)]
struct Region {
    start: usize,
}

impl Region {
    /// The region named by `base` (see [`is_region`]).
    fn of(base: usize) -> Region {
        Region { start: base & !TAG }
    }

    /// The region seen as a reservation, for what `large` keeps in it: its registry of direct
    /// mappings and their counts, which lie in parts of area 0 this module leaves unused.
    fn reservation(self) -> crate::reservation::Reservation {
        crate::reservation::Reservation { base: self.start }
    }

    /// The atomic word at `off` from the start.
    fn word(self, off: usize) -> &'static AtomicU64 {
        // SAFETY: every offset passed is an 8-aligned metadata word of the region, which is
        // mapped for its life and accessed only atomically.
        unsafe { crate::sync::word(self.start + off) }
    }

    /// The head word of the list of (`slab`, `sc`).
    fn head(self, slab: usize, sc: u32) -> &'static AtomicU64 {
        self.word(area_offset(slab, 0) + HEADS_OFF + sc as usize * 8)
    }

    /// The link word of slot `n` of (`slab`, `sc`).
    fn link(self, slab: usize, sc: u32, n: u32) -> &'static AtomicU64 {
        self.word(area_offset(slab, 0) + LINKS_OFF + table_offset(sc, 8) + n as usize * 8)
    }

    /// The requested size, plus one, of the block in `s`; zero while the slot is not handed out.
    fn size(self, s: Slot) -> &'static AtomicU32 {
        let off = area_offset(s.slab, 0) + SIZES_OFF + table_offset(s.sc, 4) + s.n as usize * 4;
        // SAFETY: a 4-aligned word of the size table, mapped for the region's life and accessed
        // only atomically.
        unsafe { &*ptr::with_exposed_provenance::<AtomicU32>(self.start + off) }
    }

    /// Address of slot `s`.
    fn addr(self, s: Slot) -> usize {
        self.start + area_offset(s.slab, s.sc) + s.n as usize * slot_size(s.sc)
    }

    /// The slot that begins at `p`, if `p` is the start of a slot that can be handed out.
    fn locate(self, p: usize) -> Option<Slot> {
        let off = p.wrapping_sub(self.start);
        if off >= LEN {
            return None;
        }
        let sc = ((off >> AREA_BITS) & (NUM_SCS - 1)) as u32;
        if !(MIN_SC..=MAX_SC).contains(&sc) || slot_size(sc) == 0 {
            return None;
        }
        let size = slot_size(sc);
        let within = off & AREA_MASK;
        let n = (within / size) as u32;
        // The last slot of an area is the lists' end marker, never handed out.
        (within.is_multiple_of(size) && n < slots_per_area(sc) - 1).then_some(Slot {
            slab: off >> SLAB_SPAN_BITS,
            sc,
            n,
        })
    }

    /// Pops a slot of class `sc`, starting from the calling thread's preferred slab. Returns it
    /// with whether it reads as zero.
    fn pop(self, sc: u32) -> Option<(Slot, bool)> {
        let t = thread::state();
        // SAFETY: t is the calling thread's state; under valgrind nothing else uses this field.
        let start = unsafe {
            if (*t).shared_pref == 0 {
                let n = self.word(PREF_OFF).fetch_add(1, Ordering::Relaxed);
                (*t).shared_pref = (n % SLABS as u64) as u32 + 1;
            }
            ((*t).shared_pref as usize - 1) % SLABS
        };
        let sentinel = slots_per_area(sc) - 1;
        loop {
            let mut saw_empty = false;
            for k in 0..SLABS {
                let slab = (start + k) % SLABS;
                match shared::try_pop(self.head(slab, sc), sentinel, |n| self.link(slab, sc, n)) {
                    Pop::Got(n, state) => return Some((Slot { slab, sc, n }, state.is_zero())),
                    Pop::Empty => saw_empty = true,
                    Pop::Collision => {}
                }
            }
            if saw_empty {
                return None;
            }
        }
    }

    /// Puts a freed slot back on its list (after the quarantine), giving big ones back to the OS.
    fn release(self, s: Slot) {
        let mut state = SlotState::Dirty;
        let size = slot_size(s.sc);
        // SAFETY: the slot is dead and nobody may touch it; slots of 1 MiB and more are whole,
        // aligned pages.
        if size >= PURGE_MIN_SLOT && unsafe { smalloc_plat::purge(at(self.addr(s)), size) } {
            state = SlotState::Purged;
        }
        shared::push(
            self.head(s.slab, s.sc),
            self.link(s.slab, s.sc, s.n),
            s.n,
            state,
        );
    }

    /// Sends a freed slot through the quarantine: small ones wait there, and the one they push
    /// out is released.
    fn retire(self, s: Slot) {
        if slot_size(s.sc) > QUARANTINE_MAX_SLOT {
            return self.release(s);
        }
        let i = self
            .word(QUARANTINE_NEXT_OFF)
            .fetch_add(1, Ordering::Relaxed) as usize;
        let entry = self.word(QUARANTINE_OFF + (i % QUARANTINE_LEN) * 8);
        let out = entry.swap(self.addr(s) as u64, Ordering::AcqRel) as usize;
        if out != 0
            && let Some(old) = self.locate(out)
        {
            self.release(old);
        }
    }

    /// The entry of the direct-mapping table at index `i`: its key (the block's address,
    /// inverted so that the leak checker does not take it for a pointer to the block; 0 free,
    /// 1 deleted) and the block's requested size.
    fn direct_entry(self, i: usize) -> (&'static AtomicU64, &'static AtomicU64) {
        let off = DIRECT_OFF + (i % DIRECT_LEN) * 16;
        (self.word(off), self.word(off + 8))
    }

    /// First index at which the direct mapping `p` is looked for.
    fn direct_hash(p: usize) -> usize {
        ((p as u64 >> 12).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize
    }

    /// Records the requested size of a new direct mapping; `false` if the table is full.
    fn direct_insert(self, p: usize, size: usize) -> bool {
        let h = Self::direct_hash(p);
        for k in 0..DIRECT_LEN {
            let (key, len) = self.direct_entry(h + k);
            let seen = key.load(Ordering::Relaxed);
            if seen <= DELETED
                && key
                    .compare_exchange(seen, !(p as u64), Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                len.store(size as u64, Ordering::Release);
                return true;
            }
        }
        false
    }

    /// The entry of the live direct mapping `p`, if recorded.
    fn direct_find(self, p: usize) -> Option<(&'static AtomicU64, &'static AtomicU64)> {
        let h = Self::direct_hash(p);
        for k in 0..DIRECT_LEN {
            let (key, len) = self.direct_entry(h + k);
            match key.load(Ordering::Acquire) {
                0 => return None,
                x if x == !(p as u64) => return Some((key, len)),
                _ => {}
            }
        }
        None
    }
}

/// Key of a deleted entry of the direct-mapping table.
const DELETED: u64 = 1;

/// Whether class `sc`'s slots are aligned to `align`.
const fn aligned(sc: u32, align: usize) -> bool {
    let size = slot_size(sc);
    size != 0 && size & size.wrapping_neg() >= align
}

/// A block of `size` bytes aligned to `align` from the region named by `base`, zeroed if `zero`;
/// null if none can be had.
///
/// # Safety
/// `base` names a live region; `align` is a power of two.
pub(crate) unsafe fn alloc(base: usize, size: usize, align: usize, zero: bool) -> *mut u8 {
    let r = Region::of(base);
    let Some(padded) = size.checked_add(REDZONE) else {
        return ptr::null_mut();
    };
    let sc = size_class(padded, align);
    if sc <= MAX_SC {
        for c in sc..=MAX_SC {
            if !aligned(c, align) {
                continue;
            }
            if let Some((s, is_zero)) = r.pop(c) {
                r.size(s).store(size as u32 + 1, Ordering::Relaxed);
                let p = r.addr(s);
                malloclike(p, size, zero);
                if zero && !is_zero {
                    // SAFETY: the slot is ours and holds more than `size` bytes.
                    unsafe { with_exposed_provenance_mut::<u8>(p).write_bytes(0, size) };
                }
                return with_exposed_provenance_mut(p);
            }
        }
    }
    let p = large::alloc(r.reservation(), padded, align);
    if p.is_null() {
        return p;
    }
    if !r.direct_insert(p as usize, size) {
        // SAFETY: the mapping was just made and nobody else knows it.
        unsafe { large::dealloc(r.reservation(), p) };
        return ptr::null_mut();
    }
    // A fresh mapping reads as zero, but a program that asked for no zeroing must not rely on it.
    malloclike(p as usize, size, zero);
    // SAFETY: p is a live direct mapping.
    let usable = unsafe { large::usable_size(p) };
    make_noaccess(p as usize + size, usable - size);
    p
}

/// Frees the block at `p` of the region named by `base` (a slot or a direct mapping). A pointer
/// that is no live block is reported by memcheck and otherwise ignored.
///
/// # Safety
/// `base` names a live region; `p` is one of its blocks or a direct mapping made for it, or no
/// block at all (a double free the program makes).
pub(crate) unsafe fn dealloc(base: usize, p: *mut u8) {
    let r = Region::of(base);
    let addr = p as usize;
    if range(base).contains(&addr) {
        let live = r
            .locate(addr)
            .filter(|&s| r.size(s).swap(0, Ordering::AcqRel) != 0);
        freelike(addr);
        if let Some(s) = live {
            r.retire(s);
        }
        return;
    }
    let live = r.direct_find(addr);
    freelike(addr);
    if let Some((key, _)) = live {
        key.store(DELETED, Ordering::Release);
        // SAFETY: a live direct mapping, dead from now on.
        unsafe { large::dealloc(r.reservation(), p) };
    }
}

/// Whether `p` is a live direct mapping made for the region named by `base`.
pub(crate) fn owns_direct(base: usize, p: usize) -> bool {
    Region::of(base).direct_find(p).is_some()
}

/// The requested size of the live block at `p` (0 if it is none).
///
/// # Safety
/// `base` names a live region; `p` is one of its blocks or a direct mapping made for it.
pub(crate) unsafe fn usable_size(base: usize, p: *const u8) -> usize {
    let r = Region::of(base);
    let addr = p as usize;
    if range(base).contains(&addr) {
        return r.locate(addr).map_or(0, |s| {
            (r.size(s).load(Ordering::Relaxed) as usize).saturating_sub(1)
        });
    }
    r.direct_find(addr)
        .map_or(0, |(_, len)| len.load(Ordering::Acquire) as usize)
}

/// `realloc` in the region named by `base`: in place while the new size (and its redzone) fits
/// the slot or mapping and is more than a quarter of it, else a move. Null if no memory can be
/// had (the block is then untouched) or if `p` is no live block (memcheck reports that).
///
/// # Safety
/// `base` names a live region; `p` one of its live blocks (or a bug of the program's, reported);
/// `align` is the block's alignment.
pub(crate) unsafe fn realloc(base: usize, p: *mut u8, align: usize, new_size: usize) -> *mut u8 {
    let r = Region::of(base);
    let addr = p as usize;
    let Some(padded) = new_size.checked_add(REDZONE) else {
        return ptr::null_mut();
    };
    let old;
    if range(base).contains(&addr) {
        let Some(s) = r
            .locate(addr)
            .filter(|&s| r.size(s).load(Ordering::Relaxed) != 0)
        else {
            freelike(addr);
            return ptr::null_mut();
        };
        old = r.size(s).load(Ordering::Relaxed) as usize - 1;
        let slot = slot_size(s.sc);
        if padded <= slot && padded > slot / 4 {
            r.size(s).store(new_size as u32 + 1, Ordering::Relaxed);
            resize_in_place(addr, old, new_size);
            return p;
        }
    } else {
        let Some((_, len)) = r.direct_find(addr) else {
            freelike(addr);
            return ptr::null_mut();
        };
        old = len.load(Ordering::Acquire) as usize;
        // SAFETY: a live direct mapping.
        let usable = unsafe { large::usable_size(p) };
        if padded <= usable && padded > usable / 4 {
            len.store(new_size as u64, Ordering::Release);
            resize_in_place(addr, old, new_size);
            return p;
        }
    }
    // SAFETY: forwarded.
    let q = unsafe { alloc(base, new_size, align, false) };
    if !q.is_null() {
        // SAFETY: both blocks are live and distinct; the old one holds `old` bytes, the new one
        // `new_size`.
        unsafe {
            ptr::copy_nonoverlapping(p, q, old.min(new_size));
            dealloc(base, p);
        }
    }
    q
}
