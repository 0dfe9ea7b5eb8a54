#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

#[cfg(feature = "allocator-api2")]
mod allocator_api;
mod large;
mod layout;
mod ownership;
mod purge;
mod realloc;
mod remote;
mod reservation;
mod shared;
mod slab;
mod stats;
mod sync;
mod thread;
mod valgrind;

pub use stats::{ClassStats, Stats};

#[cfg(all(test, loom))]
mod loom_tests;
#[cfg(all(test, not(loom)))]
mod tests;

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, with_exposed_provenance_mut};
use core::sync::atomic::{AtomicUsize, Ordering};
use std::alloc::System;

use layout::{
    MAX_SC, OWNED_SLABS, SHARED_SLABS, SLABS_LEN, grower_class, sc_of_addr, shrink_class,
    size_class, slab_of, slot_size, slots_per_area,
};
use reservation::Reservation;
use shared::{Pop, SlotState};
use slab::HotClass;
use thread::{EXITING, ThreadState};

/// Smallest class whose slots in the shared slabs are purged as soon as they are freed (32 MiB):
/// the shared slabs have no runs, so no other purge policy.
const SHARED_PURGE_SC: u32 = 50;

/// `base` before the reservation is attempted. Like [`FAILED`], a non-canonical address: no real
/// pointer is within `SLABS_LEN` of it, and no thread's state holds it, so both fall to the slow
/// paths.
const UNINIT: usize = 1 << 63;
/// `base` after the OS refused the reservation: everything goes to the fallback allocator.
const FAILED: usize = (1 << 63) | 1;

/// The allocator.
///
/// Create it with [`Smalloc::new`] (system allocator as fallback) or [`Smalloc::with_fallback`].
/// The instance itself is two words; all its state lives in the 32 TiB reservation it makes the
/// first time it is used. A 47-bit address space holds at most three of them, so use one (the
/// global allocator) unless you know why not. A thread gets its own slab from at most one instance
/// at a time; with any other it shares the shared slabs.
///
/// Dropping an instance returns its reservation to the OS (statics are never dropped), so every
/// block it handed out must be gone by then. If other threads are still attached to it, the
/// reservation's memory is given back but its addresses stay reserved, so that those threads
/// never touch unmapped memory.
///
/// ```
/// use smalloc_core::Smalloc;
///
/// #[global_allocator]
/// static ALLOC: Smalloc = Smalloc::new();
///
/// let v: Vec<u32> = (0..1000).collect();
/// assert_eq!(v[999], 999);
/// assert!(ALLOC.stats().live_bytes >= 4000);
/// ```
#[repr(C)]
pub struct Smalloc<F = System> {
    /// Address of the reservation, or [`UNINIT`] / [`FAILED`]. Read by every call, written once:
    /// on a cache line of its own.
    base: CacheLine<AtomicUsize>,
    /// Serves everything if the reservation fails.
    fallback: F,
}

/// Aligns its content to 128 bytes: a cache line, or a pair of them on CPUs that prefetch pairs.
#[repr(C, align(128))]
struct CacheLine<T>(T);

impl Smalloc<System> {
    /// A new allocator, falling back on [`std::alloc::System`] if the reservation fails.
    /// Reserves nothing yet: that happens on first use or in [`Smalloc::init`]. A `const fn`, so
    /// it can initialize a `static`.
    ///
    /// ```
    /// use smalloc_core::Smalloc;
    ///
    /// static HEAP: Smalloc = Smalloc::new();
    /// assert_eq!(HEAP.stats().live_blocks, 0); // nothing reserved yet
    /// ```
    pub const fn new() -> Self {
        Self::with_fallback(System)
    }
}

impl Default for Smalloc<System> {
    fn default() -> Self {
        Self::new()
    }
}

/// Shows the instance's state (not yet reserved, reserved at an address, or serving from the
/// fallback) and, once reserved, its headline statistics.
///
/// ```
/// static HEAP: smalloc_core::Smalloc = smalloc_core::Smalloc::new();
/// assert!(format!("{HEAP:?}").contains("not reserved yet"));
/// ```
impl<F> core::fmt::Debug for Smalloc<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut d = f.debug_struct("Smalloc");
        match self.base.0.load(Ordering::Acquire) {
            UNINIT => d.field("state", &"not reserved yet"),
            FAILED => d.field("state", &"reservation refused: serving from the fallback"),
            base if valgrind::is_region(base) => d.field("state", &"under valgrind"),
            base => {
                let st = stats::gather(Reservation { base });
                d.field("reservation", &(base as *const u8))
                    .field("live_bytes", &st.live_bytes)
                    .field("live_blocks", &st.live_blocks)
                    .field("resident_bytes", &st.resident_bytes)
                    .field("threads", &st.threads)
            }
        };
        d.finish_non_exhaustive()
    }
}

/// Runs when a thread that attached to an instance exits: pushes its pending remote frees,
/// tidies and releases its slab, and keeps it from attaching again.
unsafe extern "C" fn on_thread_exit(_: *mut core::ffi::c_void) {
    let t = thread::state();
    // SAFETY: the state is the exiting thread's own; the reservation it names stays mapped while
    // the thread is attached (see `Drop`).
    unsafe {
        detach(t);
        (*t).flags |= EXITING;
    }
}

/// Detaches the calling thread (state `t`) from its instance, if any: pushes its batch of remote
/// frees, tidies and releases its slab.
///
/// # Safety
/// `t` is the calling thread's state.
unsafe fn detach(t: *mut ThreadState) {
    // SAFETY: per the caller; the thread owns its slab until the release below.
    unsafe {
        let base = (*t).base;
        if base == 0 {
            return;
        }
        let r = Reservation { base };
        flush_batch(t);
        if (*t).slab != 0 {
            let index = (*t).slab as usize - 1;
            (*t).slab = 0;
            (*t).hot = 0;
            (*t).hot_rel = 0;
            r.release_slab(index);
        }
        (*t).base = 0;
        r.global().attached.fetch_sub(1, Ordering::Release);
    }
}

/// Hands the calling thread's pending remote frees to their slab, if any: through the slab's
/// inbox, or its remote list if the inbox is full.
///
/// # Safety
/// `t` is the calling thread's state.
unsafe fn flush_batch(t: *mut ThreadState) {
    // SAFETY: per the caller; the pending blocks are ours until handed over, and the destination
    // slab lies in a reservation that stays mapped while we are attached to it.
    unsafe {
        if let Some((dest, ptrs)) = (*t).batch.take() {
            let s = slab::Slab::at(dest as usize);
            if !s.inbox().push(ptrs) {
                for pair in ptrs.windows(2) {
                    set_link(pair[0], pair[1]);
                }
                let (first, last) = (ptrs[0], ptrs[ptrs.len() - 1]);
                remote::push_chain(s.remote_head(), first, last, set_link);
            }
        }
    }
}

/// Writes the link word (first 8 bytes) of a dead block that belongs to the caller.
fn set_link(block: u64, next: u64) {
    // SAFETY: the remote-list code only links blocks it was given as dead and not yet pushed.
    unsafe { with_exposed_provenance_mut::<u64>(block as usize).write(next) }
}

/// Writes zeroes over the first `size` bytes of the block at `p`, unless `zeroed` says it reads
/// as zero already.
///
/// # Safety
/// `p` must be a block of at least `size` bytes that the caller owns.
#[inline(always)]
unsafe fn zero_unless(p: *mut u8, zeroed: bool, size: usize) {
    if !zeroed {
        // SAFETY: per the caller.
        unsafe { p.write_bytes(0, size) };
    }
}

impl<F> Smalloc<F> {
    /// A new allocator that sends every request to `fallback` if the OS refuses the reservation
    /// (for instance under a tight `ulimit -v`).
    ///
    /// ```
    /// use std::alloc::System;
    /// use smalloc_core::Smalloc;
    ///
    /// static HEAP: Smalloc<System> = Smalloc::with_fallback(System);
    /// HEAP.init();
    /// ```
    pub const fn with_fallback(fallback: F) -> Self {
        Smalloc {
            base: CacheLine(AtomicUsize::new(UNINIT)),
            fallback,
        }
    }

    /// Makes the reservation now instead of at the first allocation. Optional and idempotent:
    /// the allocator initializes itself lazily, thread-safely and exactly once on first use. Call
    /// it from a constructor (`#[ctor::ctor]`, or through `smalloc-macros`) to take the one-time
    /// cost at program start. Safe to call any number of times, from any thread.
    ///
    /// ```
    /// use smalloc_core::Smalloc;
    ///
    /// #[global_allocator]
    /// static ALLOC: Smalloc = Smalloc::new();
    ///
    /// fn main() {
    ///     ALLOC.init(); // the 32 TiB of address space are reserved now, not at the first `Box`
    ///     let b = Box::new(42);
    ///     assert_eq!(*b, 42);
    /// }
    /// ```
    pub fn init(&self) {
        if self.base.0.load(Ordering::Acquire) == UNINIT {
            self.reserve();
        }
    }

    /// Whether the reservation is in place (`false` before first use and if the OS refused it,
    /// in which case every request is served by the fallback allocator).
    #[doc(hidden)]
    pub fn is_reserved(&self) -> bool {
        let base = self.base.0.load(Ordering::Acquire);
        (base as isize) >= 0 || valgrind::is_region(base)
    }

    /// Whether this instance found itself under valgrind and serves from the small region it
    /// takes there instead of its reservation (see "Running under valgrind" in the crate docs):
    /// every call then takes a slow path that tells memcheck about each block, so instruction
    /// counts and timings are not those of a native run.
    #[doc(hidden)]
    pub fn runs_under_valgrind(&self) -> bool {
        valgrind::is_region(self.base.0.load(Ordering::Acquire))
    }

    /// The address range of this instance's slabs, if reserved. Every slot smalloc hands out lies
    /// in it; direct mappings and fallback blocks do not. Under valgrind, the range of the region
    /// that replaces the reservation.
    #[doc(hidden)]
    pub fn slab_range(&self) -> Option<core::ops::Range<usize>> {
        let base = self.base.0.load(Ordering::Acquire);
        if valgrind::is_region(base) {
            return Some(valgrind::range(base));
        }
        ((base as isize) >= 0).then(|| base..base + SLABS_LEN)
    }

    /// How many bytes the block at `ptr` can really hold: its slot size, or the data pages of a
    /// direct mapping. `None` for blocks from the fallback allocator, which smalloc cannot size.
    /// Under valgrind, the size the block was asked with: memcheck holds the program to it.
    ///
    /// Every byte of it may be used, whatever size was asked for.
    ///
    /// ```
    /// use std::alloc::{GlobalAlloc, Layout};
    /// use smalloc_core::Smalloc;
    ///
    /// static HEAP: Smalloc = Smalloc::new();
    /// let layout = Layout::from_size_align(100, 8).unwrap();
    /// // SAFETY: a non-zero size; the block is freed with the layout it was allocated with.
    /// unsafe {
    ///     let p = HEAP.alloc(layout);
    ///     assert_eq!(HEAP.usable_size(p), Some(128)); // the 128-byte class
    ///     HEAP.dealloc(p, layout);
    /// }
    /// ```
    ///
    /// # Safety
    /// `ptr` must be a live block allocated by this instance.
    pub unsafe fn usable_size(&self, ptr: *const u8) -> Option<usize> {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            Some(layout::slot_size(sc_of_addr(ptr as usize)))
        } else if base == FAILED {
            None
        } else if valgrind::is_region(base) {
            // SAFETY: forwarded from the caller.
            Some(unsafe { valgrind::usable_size(base, ptr) })
        } else {
            // SAFETY: a live block of ours outside the slabs is a direct mapping.
            Some(unsafe { large::usable_size(ptr as *mut u8) })
        }
    }

    /// Gives every free page back to the OS now, as far as the calling thread can reach: its own
    /// slab, and every slab no thread owns (those of exited threads). Slabs owned by other
    /// running threads are left to their owners, which give back their own empty memory as they
    /// go (see the crate docs on purging). Returns the bytes given back.
    ///
    /// Pushes the calling thread's pending frees of other threads' blocks first. Costs a system
    /// call per stretch of free memory: meant for quiet moments (after a phase of work, or from
    /// the C ABI's `malloc_trim`), not for loops.
    ///
    /// ```
    /// use smalloc_core::Smalloc;
    ///
    /// #[global_allocator]
    /// static ALLOC: Smalloc = Smalloc::new();
    ///
    /// let blocks: Vec<Box<[u8; 4096]>> = (0..4096).map(|_| Box::new([1; 4096])).collect();
    /// drop(blocks);
    /// let given_back = ALLOC.trim();
    /// assert!(given_back >= 8 << 20, "{given_back}");
    /// ```
    pub fn trim(&self) -> usize {
        let base = self.base.0.load(Ordering::Acquire);
        if (base as isize) < 0 {
            return 0;
        }
        let r = Reservation { base };
        let t = thread::state();
        let mut purged = 0;
        // SAFETY: t is our state; we own the slab it names, and temporarily the unowned slabs we
        // claim below.
        unsafe {
            if (*t).base == base {
                flush_batch(t);
                if (*t).slab != 0 {
                    purged += r.slab((*t).slab as usize - 1).trim();
                }
            }
            for index in 0..OWNED_SLABS {
                if ownership::is_claimed(&r.global().claimed, index) {
                    continue;
                }
                // Claim it so that no thread takes it while we work on it.
                if !ownership::claim_exact(&r.global().claimed, index) {
                    continue;
                }
                // A slab with nothing in use, empty or pending has nothing to give back (a slab
                // never used reads all zero): skip it without touching more of it.
                let hd = r.slab(index).header();
                if (*hd).in_use == 0
                    && (*hd).empty == 0
                    && (*hd).remote.load(Ordering::Relaxed) == 0
                    && (*hd).inbox_tail.load(Ordering::Relaxed)
                        == (*hd).inbox_head.load(Ordering::Relaxed)
                {
                    r.release(index);
                    continue;
                }
                r.unwarm(index);
                purged += r.slab(index).trim();
                r.release(index);
            }
        }
        purged
    }

    /// What the instance holds now: live blocks and bytes, resident memory, per-class figures,
    /// threads and slabs (see [`Stats`]). All zero before the first allocation or when the OS
    /// refused the reservation (the fallback allocator's blocks are not counted).
    ///
    /// Costs a walk over the slabs in use and a `mincore` system call per class in use: meant
    /// for reports and monitoring, not for hot loops. Allocates nothing. Its `Display` is the
    /// report that `SMALLOC_SHOW_STATS=1` prints to standard error at exit.
    ///
    /// ```
    /// use smalloc_core::Smalloc;
    ///
    /// #[global_allocator]
    /// static ALLOC: Smalloc = Smalloc::new();
    ///
    /// let before = ALLOC.stats();
    /// let boxes: Vec<Box<u64>> = (0..100).map(Box::new).collect();
    /// let after = ALLOC.stats();
    /// // 100 boxes of 8 bytes (8-byte slots) and the vector of 100 x 8 bytes (a 1 KiB slot).
    /// assert_eq!(after.class(8).unwrap().live_blocks - before.class(8).unwrap().live_blocks, 100);
    /// assert_eq!(after.live_bytes - before.live_bytes, 100 * 8 + 1024);
    /// println!("{after}");
    /// # drop(boxes);
    /// ```
    pub fn stats(&self) -> Stats {
        let base = self.base.0.load(Ordering::Acquire);
        if (base as isize) < 0 {
            return Stats::default();
        }
        stats::gather(Reservation { base })
    }

    /// Whether `ptr` is a block of this instance's own: in its slabs, or one of its live direct
    /// mappings. Looks at no memory near `ptr`, so any address may be asked about. Blocks of the
    /// fallback allocator are not smalloc's own.
    ///
    /// For the C ABI, which must sort out the pointers a process hands to `free`.
    #[doc(hidden)]
    pub fn owns(&self, ptr: *const u8) -> bool {
        let base = self.base.0.load(Ordering::Acquire);
        if valgrind::is_region(base) {
            return valgrind::range(base).contains(&(ptr as usize))
                || valgrind::owns_direct(base, ptr as usize);
        }
        if (base as isize) < 0 {
            return false;
        }
        (ptr as usize).wrapping_sub(base) < SLABS_LEN
            || large::is_registered(Reservation { base }, ptr as usize)
    }

    /// Reserves the region and publishes its base, or [`FAILED`]. Lock-free: racing threads each
    /// try, the first to publish wins and the others unmap theirs. Returns the published value.
    #[cold]
    #[inline(never)]
    fn reserve(&self) -> usize {
        // Under valgrind the reservation cannot be had; a small region of its own takes its place.
        let mine = if valgrind::running() {
            valgrind::reserve()
        } else {
            reservation::reserve()
        }
        .unwrap_or(FAILED);
        match self
            .base
            .0
            .compare_exchange(UNINIT, mine, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // Statistics are gathered from the reservation only (under valgrind, memcheck
                // keeps its own).
                if (mine as isize) >= 0 {
                    stats::on_reserved(mine);
                }
                mine
            }
            Err(winner) => {
                if valgrind::is_region(mine) {
                    // SAFETY: our region was never published, so nobody uses it.
                    unsafe { valgrind::unmap(mine) };
                } else if mine != FAILED {
                    // SAFETY: our reservation was never published, so nobody uses it.
                    unsafe { reservation::unmap(mine) };
                }
                winner
            }
        }
    }

    /// Attaches the calling thread (state `t`) to this instance if it can: not exiting, not
    /// attached to another live instance, and able to run code at its exit.
    ///
    /// # Safety
    /// `t` is the calling thread's state; `r` is this instance's live reservation.
    unsafe fn attach(&self, r: Reservation, t: *mut ThreadState) {
        // SAFETY: per the caller.
        unsafe {
            if (*t).flags & EXITING != 0 {
                return;
            }
            if (*t).base != 0 {
                let other = Reservation { base: (*t).base };
                if other.global().dead.load(Ordering::Acquire) == 0 {
                    return;
                }
                // Attached to a dropped instance: let go of it (its memory is still mapped).
                detach(t);
            }
            if !thread::ensure_exit_key(on_thread_exit) {
                return;
            }
            r.global().attached.fetch_add(1, Ordering::Relaxed);
            (*t).base = r.base;
            (*t).hot = slab::empty_hot_addr();
            (*t).hot_rel = 0;
            (*t).slab = 0;
            // Last: with many keys in the process, arming may allocate, which reenters here and
            // must find the thread attached.
            if !thread::arm_exit() {
                detach(t);
                (*t).flags |= EXITING;
            }
        }
    }

    /// Claims an owned slab for the calling thread (state `t`), attached to this instance.
    ///
    /// # Safety
    /// `t` is the calling thread's state, attached to `r`, owning no slab.
    unsafe fn claim_slab(&self, r: Reservation, t: *mut ThreadState) {
        if let Some(index) = r.claim() {
            let hot = r.slab(index).hot_table();
            // SAFETY: per the caller; the slab is ours now.
            unsafe {
                r.unwarm(index);
                (*t).slab = index as u32 + 1;
                (*t).hot = hot;
                (*t).hot_rel = hot.wrapping_sub(slab::empty_hot_addr());
            }
        }
    }

    /// The slab the calling thread owns in `r`, attaching and claiming one first if it can.
    ///
    /// # Safety
    /// `t` is the calling thread's state; `r` is this instance's live reservation.
    unsafe fn own_slab(&self, r: Reservation, t: *mut ThreadState) -> Option<slab::Slab> {
        // SAFETY: per the caller.
        unsafe {
            if (*t).base != r.base {
                self.attach(r, t);
                if (*t).base != r.base {
                    return None;
                }
            }
            if (*t).slab == 0 {
                self.claim_slab(r, t);
            }
            match (*t).slab {
                0 => None,
                s => Some(r.slab(s as usize - 1)),
            }
        }
    }

    /// A slot of class `sc` or bigger, up to `max_sc`, aligned to `align`: from the calling
    /// thread's own slab, else from the shared slabs, class after class. Returns it with whether
    /// it reads as zero.
    ///
    /// # Safety
    /// `r` is this instance's live reservation; `sc >= MIN_SC` and its slots are aligned to
    /// `align`.
    unsafe fn alloc_slot(
        &self,
        r: Reservation,
        sc: u32,
        max_sc: u32,
        align: usize,
    ) -> Option<(usize, bool)> {
        let t = thread::state();
        // SAFETY: per the caller; t is ours.
        unsafe {
            let own = self.own_slab(r, t);
            if own.is_some() {
                flush_batch(t);
            }
            // A class may be less aligned than a smaller one (48-byte slots are 16-aligned,
            // 32-byte ones 32-aligned): failing over, skip the classes not aligned enough for
            // the request, and the positions without slots.
            for c in (sc..=max_sc).filter(|&c| slot_size(c) != 0 && layout::slot_align(c) >= align)
            {
                if let Some(s) = own
                    && let Some(slot) = s.refill(c)
                {
                    return Some(slot);
                }
                if let Some(slot) = shared_pop(r, t, c) {
                    return Some(slot);
                }
            }
        }
        None
    }

    /// Frees a block of this instance's slabs that is not in the calling thread's current run of
    /// its class: to its run (own slab), to a shared list, or as a remote free. `size` is the
    /// size the block was asked for (see `Slab::free_local`).
    ///
    /// # Safety
    /// `p` is a live block at offset `off < SLABS_LEN` of the live reservation `r`.
    unsafe fn free_slot_slow(&self, r: Reservation, p: usize, off: usize, size: usize) {
        let slab = slab_of(off);
        if slab >= OWNED_SLABS {
            // SAFETY: forwarded.
            return unsafe { shared_free(r, p, off) };
        }
        let t = thread::state();
        // SAFETY: t is ours; a thread owns the slab its state names.
        unsafe {
            if (*t).base == r.base && (*t).slab as usize == slab + 1 {
                return r.slab(slab).free_local(p, size);
            }
            let dest = r.slab(slab);
            if (*t).base != r.base {
                self.attach(r, t);
            }
            if (*t).base == r.base {
                if !(*t).batch.add(dest.start() as u64, p as u64) {
                    flush_batch(t);
                    (*t).batch.add(dest.start() as u64, p as u64);
                }
                if (*t).batch.is_full() {
                    flush_batch(t);
                }
            } else {
                remote::push_chain(dest.remote_head(), p as u64, p as u64, set_link);
            }
        }
    }
}

/// Pops a slot of class `sc` from the shared slabs, starting from the calling thread's preferred
/// one and moving on past collisions and empty lists (the original smalloc's failover). Returns
/// it with whether it reads as zero, or `None` if every shared list of the class is empty.
///
/// # Safety
/// `r` is a live reservation; `t` the calling thread's state.
unsafe fn shared_pop(r: Reservation, t: *mut ThreadState, sc: u32) -> Option<(usize, bool)> {
    // SAFETY: t is ours.
    let start = unsafe {
        if (*t).shared_pref == 0 {
            let n = r.global().shared_threads.fetch_add(1, Ordering::Relaxed);
            (*t).shared_pref = (n % SHARED_SLABS as u64) as u32 + 1;
        }
        (*t).shared_pref as usize - 1
    };
    let sentinel = slots_per_area(sc) - 1;
    loop {
        let mut saw_empty = false;
        for k in 0..SHARED_SLABS {
            let s = (start + k) % SHARED_SLABS;
            match shared::try_pop(r.shared_head(s, sc), sentinel, |n| r.shared_link(s, sc, n)) {
                Pop::Got(slot, state) => {
                    r.shared_live(s, sc).fetch_add(1, Ordering::Relaxed);
                    if state == SlotState::Fresh {
                        r.shared_high(s, sc)
                            .fetch_max(slot as u64 + 1, Ordering::Relaxed);
                    }
                    if s != start {
                        // SAFETY: t is ours.
                        unsafe { (*t).shared_pref = s as u32 + 1 };
                    }
                    return Some((r.shared_slot(s, sc, slot), state.is_zero()));
                }
                Pop::Empty => saw_empty = true,
                Pop::Collision => {}
            }
        }
        if saw_empty {
            return None;
        }
        // Only collisions: every other thread is making progress; go around again.
    }
}

/// Frees a block of a shared slab (at offset `off`) onto its list, purging it first if big.
///
/// # Safety
/// `p` is a live block of a shared slab of `r`, dead from now on.
unsafe fn shared_free(r: Reservation, p: usize, off: usize) {
    let sc = sc_of_addr(p);
    let (s, slot) = Reservation::shared_locate(off, sc);
    let mut state = SlotState::Dirty;
    r.shared_live(s, sc).fetch_sub(1, Ordering::Relaxed);
    if sc >= SHARED_PURGE_SC {
        // SAFETY: the whole slot is dead; it is page-aligned (>= 32 MiB, base aligned).
        if unsafe { smalloc_plat::purge(ptr::NonNull::new_unchecked(p as *mut u8), slot_size(sc)) }
        {
            state = SlotState::Purged;
            r.global()
                .shared_purged
                .fetch_add(slot_size(sc) as u64, Ordering::Relaxed);
        }
    }
    shared::push(
        r.shared_head(s, sc),
        r.shared_link(s, sc, slot),
        slot,
        state,
    );
}

impl<F: GlobalAlloc> Smalloc<F> {
    /// The allocation path shared by `alloc` and `alloc_zeroed`: a pop or a bump in the calling
    /// thread's current run of the class, everything else out of line.
    #[inline(always)]
    unsafe fn alloc_impl<const ZERO: bool>(&self, layout: Layout) -> *mut u8 {
        let offset = layout::class_offset(layout.size(), layout.align());
        // SAFETY: forwarded from the caller.
        unsafe {
            let p = self.alloc_fast_at::<ZERO>(offset, layout.size());
            if !p.is_null() {
                return p;
            }
            self.alloc_slow(layout, offset, ZERO)
        }
    }

    /// A block for `layout` if the calling thread's current run of its class has one (a pop or
    /// a bump, as `alloc` does inline), zeroed if `ZERO`; null otherwise, having done nothing.
    ///
    /// For the C ABI, which keeps its own first-use and error handling off this path.
    ///
    /// # Safety
    /// As for `GlobalAlloc::alloc`.
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn alloc_fast<const ZERO: bool>(&self, layout: Layout) -> *mut u8 {
        let offset = layout::class_offset(layout.size(), layout.align());
        // SAFETY: forwarded from the caller.
        unsafe { self.alloc_fast_at::<ZERO>(offset, layout.size()) }
    }

    /// The fast path for the class at `offset` in the fast-path tables, for `size` bytes.
    #[inline(always)]
    unsafe fn alloc_fast_at<const ZERO: bool>(&self, offset: usize, size: usize) -> *mut u8 {
        if thread::base() != self.base.0.load(Ordering::Relaxed) {
            return ptr::null_mut();
        }
        let h = with_exposed_provenance_mut::<HotClass>(thread::hot() + offset);
        // SAFETY: the thread is attached to this instance, so `hot` is its slab's table (or the
        // always-empty one) and the entry is its own; the table has an entry for every class a
        // request can get. A listed slot's first word is its link.
        unsafe {
            let p = (*h).free;
            if p != 0 {
                (*h).free = ptr::with_exposed_provenance::<usize>(p).read();
                let p = with_exposed_provenance_mut::<u8>(p);
                if ZERO {
                    p.write_bytes(0, size);
                }
                return p;
            }
            // Fresh slots come from the bump range, once per slot; reused ones from the list,
            // over and over: lay the list path out straight.
            core::hint::cold_path();
            let b = (*h).bump;
            if b.wrapping_sub((*h).run_start) < (*h).run_len {
                let sc = (offset / layout::HOT_ENTRY) as u32;
                (*h).bump = b + layout::slot_size(sc);
                let p = with_exposed_provenance_mut::<u8>(b);
                if ZERO && !slab::bump_is_zero(h, sc) {
                    p.write_bytes(0, size);
                }
                return p;
            }
        }
        ptr::null_mut()
    }

    /// Everything `alloc` does not do inline: first-use reservation, the fallback allocator,
    /// attaching the thread, moving to another run, failover across slabs and classes, and
    /// direct mappings.
    #[cold]
    #[inline(never)]
    unsafe fn alloc_slow(&self, layout: Layout, offset: usize, zero: bool) -> *mut u8 {
        let sc = (offset / layout::HOT_ENTRY) as u32;
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
        if valgrind::is_region(base) {
            // SAFETY: base names the live region; the layout's alignment is a power of two.
            return unsafe { valgrind::alloc(base, layout.size(), layout.align(), zero) };
        }
        // SAFETY: base is the live reservation.
        unsafe {
            self.alloc_class(
                Reservation { base },
                sc,
                layout.size(),
                layout.align(),
                zero,
            )
        }
        .0
    }

    /// A block of class `sc` or bigger holding `size` bytes aligned to `align`, or a direct
    /// mapping if the slabs cannot serve it, with whether it reads as zero; zeroed if `zero`.
    /// Null if even the OS refuses.
    ///
    /// # Safety
    /// `r` is this instance's live reservation; `sc >= size_class(size, align)`.
    unsafe fn alloc_class(
        &self,
        r: Reservation,
        sc: u32,
        size: usize,
        align: usize,
        zero: bool,
    ) -> (*mut u8, bool) {
        if sc <= MAX_SC {
            // SAFETY: forwarded.
            if let Some((p, zeroed)) = unsafe { self.alloc_slot(r, sc, MAX_SC, align) } {
                let p = with_exposed_provenance_mut::<u8>(p);
                if zero {
                    // SAFETY: the slot is ours and holds 2^sc >= size bytes.
                    unsafe { zero_unless(p, zeroed, size) };
                }
                return (p, zeroed || zero);
            }
        }
        (large::alloc(r, size, align), true)
    }

    /// Frees a block that the fast path did not: anything but a block of the calling thread's
    /// current run of its class.
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            // SAFETY: a live block of our slabs, per the caller.
            return unsafe {
                self.free_slot_slow(Reservation { base }, ptr as usize, off, layout.size())
            };
        }
        match base {
            // SAFETY: with no reservation every block came from the fallback.
            FAILED => unsafe { self.fallback.dealloc(ptr, layout) },
            // Nothing was ever allocated, so this cannot be one of ours.
            UNINIT => {}
            // SAFETY: a block of the region (or a bug of the program's, which memcheck reports).
            b if valgrind::is_region(b) => unsafe { valgrind::dealloc(b, ptr) },
            // SAFETY: a live block of ours outside the slabs is a direct mapping.
            _ => unsafe { large::dealloc(Reservation { base }, ptr) },
        }
    }

    /// Frees `ptr` if it is in the calling thread's current run of its class (the inlined fast
    /// path of `dealloc`); returns whether it did. Otherwise nothing happened.
    ///
    /// For the C ABI, which must sort out pointers that are not smalloc's before the slow path.
    ///
    /// # Safety
    /// `ptr` must be non-null, and a live block of this instance if it lies in its slabs.
    #[doc(hidden)]
    #[inline(always)]
    pub unsafe fn free_fast(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        // One register for the table's address, which the check and the push both index (the
        // compiler otherwise sums the three terms twice, in two ways).
        let table = layout::in_register(slab::empty_hot_addr().wrapping_add(thread::hot_rel()));
        let h = with_exposed_provenance_mut::<HotClass>(
            table.wrapping_add(sc_of_addr(p) as usize * layout::HOT_ENTRY),
        );
        // SAFETY: the table is the thread's slab's (hot_rel set while it owns one) or the
        // always-empty one; the entry exists for every class position. A block inside the
        // current run is ours to link.
        unsafe {
            if p.wrapping_sub((*h).run_start) < (*h).run_len {
                slab::push(h, p);
                return true;
            }
        }
        false
    }

    /// `realloc` of a slot: stay in place when it still fits (unless the block shrank to a
    /// quarter of the slot or less), otherwise move to a grower class.
    #[inline(always)]
    unsafe fn realloc_slot(
        &self,
        base: usize,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let r = Reservation { base };
        let current = sc_of_addr(ptr as usize);
        let needed = size_class(new_size, layout.align());
        if needed <= current {
            let Some(target) = shrink_class(current, needed) else {
                return ptr;
            };
            // Only a smaller slot is worth the copy.
            // SAFETY: r is live.
            if let Some((p, _)) = unsafe { self.alloc_slot(r, target, current - 1, layout.align()) }
            {
                let p = with_exposed_provenance_mut::<u8>(p);
                // SAFETY: both blocks are live and distinct; new_size fits both.
                unsafe {
                    ptr::copy_nonoverlapping(ptr, p, new_size);
                    self.dealloc(ptr, layout);
                }
                return p;
            }
            // No smaller slot to be had: keeping the block where it is is still correct.
            return ptr;
        }
        let target = grower_class(needed);
        let (p, zeroed) = if layout.size() <= realloc::SMALL_MOVE && target <= MAX_SC {
            // A small block (most reallocs): the copy does not care whether the destination is
            // zero, so take the inlined fast path of `alloc`.
            // SAFETY: the class's slots are aligned enough for the request (target >= needed, and
            // a bigger class is aligned at least as much), so the size is a multiple of it.
            let l = unsafe { Layout::from_size_align_unchecked(slot_size(target), layout.align()) };
            // SAFETY: l has a non-zero size.
            (unsafe { self.alloc_impl::<false>(l) }, false)
        } else {
            // SAFETY: r is live; the grower class is at least `needed`.
            unsafe { self.alloc_class(r, target, new_size, layout.align(), false) }
        };
        if !p.is_null() {
            // SAFETY: the old block holds layout.size() < new_size bytes; blocks are distinct.
            unsafe {
                realloc::move_bytes(p, zeroed, ptr, layout.size());
                self.dealloc(ptr, layout);
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
            // SAFETY: a block of the region, per the caller.
            b if valgrind::is_region(b) => {
                return unsafe { valgrind::realloc(b, ptr, layout.align(), new_size) };
            }
            _ => {}
        }
        let r = Reservation { base };
        // SAFETY: a live block of ours outside the slabs is a direct mapping.
        let usable = unsafe { large::usable_size(ptr) };
        let needed = size_class(new_size, layout.align());
        if new_size <= usable {
            // Much smaller and slab-sized: move into a slot, so the mapping goes back whole.
            if needed <= MAX_SC && new_size <= usable / 4 {
                // SAFETY: r is live.
                if let Some((p, _)) = unsafe { self.alloc_slot(r, needed, MAX_SC, layout.align()) }
                {
                    let p = with_exposed_provenance_mut::<u8>(p);
                    // SAFETY: both blocks are live and distinct; new_size fits both.
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, p, new_size);
                        large::dealloc(r, ptr);
                    }
                    return p;
                }
            }
            // SAFETY: new_size <= usable.
            unsafe { large::shrink_in_place(r, ptr, new_size) };
            return ptr;
        }
        if layout.align() <= smalloc_plat::page_size() {
            // SAFETY: ptr is a live direct mapping.
            let p = unsafe { large::grow(r, ptr, new_size) };
            if !p.is_null() {
                return p;
            }
        }
        // SAFETY: r is live.
        let (p, zeroed) = unsafe { self.alloc_class(r, needed, new_size, layout.align(), false) };
        if !p.is_null() {
            // SAFETY: the old block holds layout.size() <= usable < new_size bytes.
            unsafe {
                realloc::move_bytes(p, zeroed, ptr, layout.size());
                large::dealloc(r, ptr);
            }
        }
        p
    }
}

// SAFETY: every method upholds the GlobalAlloc contract: blocks are at least `layout.size()`
// bytes, aligned to `layout.align()` (slots are naturally aligned and their class covers the
// alignment; direct mappings are aligned explicitly), stay valid until freed, and are never
// handed out twice (a slot is on at most one list at a time, each list has one owner or is
// changed by compare-and-swap only). Failure returns null.
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
        // SAFETY: the caller hands back a live block (non-null); if it is in our slabs, ours.
        unsafe {
            if !self.free_fast(ptr) {
                self.dealloc_slow(ptr, layout);
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let base = self.base.0.load(Ordering::Acquire);
        let off = (ptr as usize).wrapping_sub(base);
        if off < SLABS_LEN {
            // SAFETY: forwarded from the caller; the block lies in the slabs.
            unsafe { self.realloc_slot(base, ptr, layout, new_size) }
        } else {
            // SAFETY: forwarded from the caller.
            unsafe { self.realloc_slow(ptr, layout, new_size) }
        }
    }
}

impl<F> Drop for Smalloc<F> {
    fn drop(&mut self) {
        let base = *self.base.0.get_mut();
        if valgrind::is_region(base) {
            // SAFETY: every block must be gone (see the type's docs); no thread attaches to it.
            unsafe { valgrind::unmap(base) };
        }
        if (base as isize) < 0 {
            return;
        }
        let t = thread::state();
        // SAFETY: dropping needs exclusive access and every block must be gone (see the type's
        // docs). Our own attachment goes first; if other threads are still attached, their state
        // may point into the reservation, which must then stay mapped.
        unsafe {
            if (*t).base == base {
                detach(t);
            }
            let r = Reservation { base };
            stats::on_unmapped(base);
            if r.global().attached.load(Ordering::Acquire) == 0 {
                reservation::unmap(base);
            } else {
                reservation::retire(base);
            }
        }
    }
}
