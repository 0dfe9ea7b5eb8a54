//! An owned slab: what its owner does without a single atomic read-modify-write.
//!
//! # Runs
//!
//! The slots of each class are grouped into *runs* of 64 KiB (one slot for classes of 64 KiB and
//! more). Allocation takes slots from one *current* run per class until it is used up, so blocks
//! allocated one after another are neighbours, even after the program has freed blocks all over
//! the heap. Each run has 32 bytes of metadata in the slab's run table, found from the block's
//! address alone (class bits and run bits), all zero for a run never used:
//!
//! | state | meaning | kept in |
//! | --- | --- | --- |
//! | fresh | never used; pages untouched | nowhere: runs `fresh..` of a class |
//! | current | slots are handed out from it | the class's fast-path entry |
//! | full | every slot handed out | nowhere |
//! | partial | some slots free | the class's partial list |
//! | empty | every slot free, pages resident | the class's empty list, oldest first |
//! | purged | every slot free, pages given back | the class's purged list |
//!
//! # The fast-path entry of a class
//!
//! 32 bytes per class ([`HotClass`]): the current run's free list (its links are the first 8
//! bytes of each free slot: the address of the next one, zero at the end), a bump pointer through
//! the part of the current run never handed out, and the run's bounds. `alloc` pops the list or
//! bumps; `free` of a block of the current run pushes onto the list. Nothing else: slots of the
//! current run are not counted, as a run only stops being current when it is used up, and is then
//! full. A fresh or purged run is taken in bump mode, so its slots need no setup writes and read as
//! zero (which `alloc_zeroed` relies on); a partial or empty run in list mode.
//!
//! All-zero metadata is a slab whose every run is fresh: the first allocation of a class finds an
//! empty list and an empty bump range and takes run 0. Nothing is ever initialized.
//!
//! # Frees outside the current run
//!
//! A free of a block of another run (found on the slow path) pushes the block onto that run's own
//! list and counts it: a full run becomes partial, a partial one empty. Empty runs stay resident
//! for reuse until the purge policy (see `purge`) gives their pages back.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use crate::layout::{
    AREA_BITS, AREA_MASK, BASE_ALIGN, CLASS_TABLE_LEN, COLD_OFF, EARLY_RUNS, HEADER_OFF, HOT_ENTRY,
    HOT_OFF, INBOX_OFF, MAX_SC, MIN_SC, NUM_SCS, RUN_META_LEN, RUN_TABLE_LEN, RUNS_OFF,
    SLAB_SPAN_BITS, run_bits, run_slots_len, runs_per_area, sc_of_addr, slot_size, slots_per_run,
};
use crate::remote::{self, INBOX_LEN, Inbox};
use crate::sync;

/// The fast-path state of one class of a slab: everything `alloc` and `free` touch when they
/// stay on their fast paths. All zero is "no current run".
#[repr(C)]
#[derive(Debug)]
pub(crate) struct HotClass {
    /// The current run's free list: address of its first free slot, zero if none.
    pub(crate) free: usize,
    /// Next never-used slot of the current run (bump mode), or zero.
    pub(crate) bump: usize,
    /// Address of the current run.
    pub(crate) run_start: usize,
    /// Bytes of the current run; zero when there is none (so no address is inside it).
    pub(crate) run_len: usize,
}

impl HotClass {
    const ZERO: HotClass = HotClass {
        free: 0,
        bump: 0,
        run_start: 0,
        run_len: 0,
    };

    /// Makes the run of `run_len` bytes at `run_start` current, with free list `free` and bump
    /// pointer `bump` (all zero: no current run).
    ///
    /// # Safety
    /// `h` is an entry of a slab the caller owns.
    #[inline(always)]
    pub(crate) unsafe fn set_run(
        h: *mut HotClass,
        free: usize,
        bump: usize,
        run_start: usize,
        run_len: usize,
    ) {
        // SAFETY: per the caller.
        unsafe {
            *h = HotClass {
                free,
                bump,
                run_start,
                run_len,
            }
        };
    }
}

/// Adds `bytes` to the owner-written counter `c` (a plain load and store: only the owner writes).
#[inline(always)]
pub(crate) fn add_owned(c: &AtomicU64, bytes: u64) {
    c.store(
        c.load(Ordering::Relaxed).wrapping_add(bytes),
        Ordering::Relaxed,
    );
}

/// The fast-path table of a thread that owns no slab: every entry empty, so that every `alloc`
/// and `free` goes to the slow path. Never written.
pub(crate) static EMPTY_HOT: [HotClass; CLASS_TABLE_LEN] = [HotClass::ZERO; CLASS_TABLE_LEN];

/// The address of [`EMPTY_HOT`].
#[inline(always)]
pub(crate) fn empty_hot_addr() -> usize {
    EMPTY_HOT.as_ptr().expose_provenance()
}

/// The unit in which empty runs are counted resident (the smallest page size of the platforms).
const PAGE: usize = 4096;

// Run states (see the module docs). A fresh run's state is zero: it has never been written.
pub(crate) const CURRENT: u32 = 1;
pub(crate) const FULL: u32 = 2;
pub(crate) const PARTIAL: u32 = 3;
pub(crate) const EMPTY: u32 = 4;
pub(crate) const PURGED: u32 = 5;

/// A run's metadata. List links are run numbers plus one (zero: none). All zero: a fresh run.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Run {
    /// The run's own free list (while it is not current): first free slot, or zero.
    pub(crate) free: usize,
    /// Slots handed out (while it is not current).
    pub(crate) used: u32,
    /// One of the run states.
    pub(crate) state: u32,
    /// Previous run in the partial or empty list.
    pub(crate) prev: u32,
    /// Next run in the partial, empty or purged list.
    pub(crate) next: u32,
    /// When the run became empty ([`smalloc_plat::now_ms`]).
    pub(crate) emptied_ms: u32,
    /// While the run is empty: the pages of it counted as resident (see [`Slab::free_local`]).
    pub(crate) resident_pages: u32,
}
const _: () = assert!(core::mem::size_of::<Run>() == RUN_META_LEN);
const _: () = assert!(core::mem::size_of::<HotClass>() == HOT_ENTRY);

/// The owner's bookkeeping for one class: run lists, all run numbers plus one (zero: none).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct ClassMeta {
    /// Head of the partial list (a stack).
    pub(crate) partial: u32,
    /// Oldest run of the empty list.
    pub(crate) empty_head: u32,
    /// Newest run of the empty list.
    pub(crate) empty_tail: u32,
    /// Head of the purged list (a stack).
    pub(crate) purged: u32,
    /// Runs ever taken: runs `fresh..` have never been used. Written by the owner only (plain
    /// loads and stores); atomic so that a thread gathering statistics may read it.
    pub(crate) fresh: AtomicU32,
    /// The current run, plus one. Written by the owner only (plain loads and stores); atomic so
    /// that a thread gathering statistics may read it.
    pub(crate) current: AtomicU32,
    /// Number of runs in the empty list.
    pub(crate) empty_runs: u32,
    /// Whether the current run's bump range holds old data (an empty run reused), rather than
    /// zeroes (a fresh or purged run).
    pub(crate) bump_dirty: u32,
    /// Live blocks in the class's runs other than the current one (the `used` of its full and
    /// partial runs), for the statistics; the current run's are counted from its fast-path entry
    /// when asked. Kept on the slow paths only, by the owner (plain loads and stores).
    pub(crate) retired_live: AtomicU32,
    _pad: [u32; 7],
}

impl ClassMeta {
    /// The current run, plus one (zero: none).
    #[inline(always)]
    pub(crate) fn current(&self) -> u32 {
        self.current.load(Ordering::Relaxed)
    }

    /// Sets the current run, plus one (zero: none). Owner only.
    #[inline(always)]
    pub(crate) fn set_current(&self, run: u32) {
        self.current.store(run, Ordering::Relaxed);
    }

    /// Adds `delta` (wrapping: `u32::MAX` takes one off) to the live blocks outside the current
    /// run. Owner only.
    #[inline(always)]
    pub(crate) fn count_retired(&self, delta: u32) {
        let n = &self.retired_live;
        n.store(
            n.load(Ordering::Relaxed).wrapping_add(delta),
            Ordering::Relaxed,
        );
    }
}
const _: () = assert!(core::mem::size_of::<ClassMeta>() == 64);

/// A slab's header: the remote-free structures (each word on cache lines of its own, as other
/// threads write them), then the owner's totals.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlabHeader {
    /// Head of the remote list.
    pub(crate) remote: AtomicU64,
    _pad0: [u64; 15],
    /// Inbox entries ever reserved by freeing threads.
    pub(crate) inbox_tail: AtomicU64,
    _pad1: [u64; 15],
    /// Inbox entries ever taken by the owner.
    pub(crate) inbox_head: AtomicU64,
    _pad2: [u64; 15],
    /// Bytes of runs that hold live blocks (current, full, partial).
    pub(crate) in_use: usize,
    /// Bytes of empty runs, resident and reusable.
    pub(crate) empty: usize,
    /// Runs taken since the slab was first used: paces the decay checks.
    pub(crate) events: u64,
    /// When the last decay check ran.
    pub(crate) last_decay_ms: u32,
    _pad3: u32,
    /// Bytes given back to the OS, all time. Written by the owner only (a plain load and store);
    /// atomic so that a thread gathering statistics may read it.
    pub(crate) purged_total: AtomicU64,
}
const _: () = assert!(core::mem::size_of::<SlabHeader>() <= 4096);

/// A slab, by the address of its first byte (which is also where its metadata area starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slab {
    start: usize,
}

impl Slab {
    /// Slab number `index` of the reservation at `base`.
    #[inline(always)]
    pub(crate) const fn new(base: usize, index: usize) -> Slab {
        Slab {
            start: base + (index << SLAB_SPAN_BITS),
        }
    }

    /// The slab's header.
    #[inline(always)]
    pub(crate) fn header(self) -> *mut SlabHeader {
        core::ptr::with_exposed_provenance_mut(self.start + HEADER_OFF)
    }

    /// The address of the slab's fast-path table.
    #[inline(always)]
    pub(crate) fn hot_table(self) -> usize {
        self.start + HOT_OFF
    }

    /// The fast-path entry of class `sc`.
    #[inline(always)]
    pub(crate) fn hot(self, sc: u32) -> *mut HotClass {
        core::ptr::with_exposed_provenance_mut(self.hot_table() + sc as usize * HOT_ENTRY)
    }

    /// The bookkeeping of class `sc`.
    #[inline(always)]
    pub(crate) fn class(self, sc: u32) -> *mut ClassMeta {
        core::ptr::with_exposed_provenance_mut(self.start + COLD_OFF + sc as usize * 64)
    }

    /// The metadata of run `idx` of class `sc`.
    #[inline(always)]
    pub(crate) fn run(self, sc: u32, idx: u32) -> *mut Run {
        let entry = if idx < EARLY_RUNS {
            (idx as usize * NUM_SCS + sc as usize) * RUN_META_LEN
        } else {
            4096 + sc as usize * RUN_TABLE_LEN + (idx - EARLY_RUNS) as usize * RUN_META_LEN
        };
        core::ptr::with_exposed_provenance_mut(self.start + RUNS_OFF + entry)
    }

    /// The address of run `idx` of class `sc`.
    #[inline(always)]
    pub(crate) fn run_addr(self, sc: u32, idx: u32) -> usize {
        self.start + ((sc as usize) << AREA_BITS) + ((idx as usize) << run_bits(sc))
    }

    /// The run (class, number) that holds the block at `p`, an address of this slab.
    #[inline(always)]
    pub(crate) fn run_of(p: usize) -> (u32, u32) {
        let sc = sc_of_addr(p);
        (sc, ((p & AREA_MASK) >> run_bits(sc)) as u32)
    }

    /// The address of the slab's first byte.
    #[inline(always)]
    pub(crate) fn start(self) -> usize {
        self.start
    }

    /// The slab whose first byte is at `start`.
    #[inline(always)]
    pub(crate) fn at(start: usize) -> Slab {
        Slab { start }
    }

    /// The remote list's head word.
    #[inline(always)]
    pub(crate) fn remote_head(self) -> &'static AtomicU64 {
        // SAFETY: the header is in the slab's metadata area, mapped for the reservation's life;
        // its shared words are only ever accessed atomically.
        unsafe { &(*self.header()).remote }
    }

    /// The slab's inbox.
    #[inline(always)]
    pub(crate) fn inbox(self) -> Inbox<'static, AtomicU64, impl Fn(u64) -> &'static AtomicU64> {
        let entries = self.start + INBOX_OFF;
        // SAFETY: as for remote_head; the entries lie in the metadata area (see layout).
        unsafe {
            let hd = self.header();
            Inbox {
                tail: &(*hd).inbox_tail,
                head: &(*hd).inbox_head,
                entry: move |i: u64| sync::word(entries + (i % INBOX_LEN) as usize * 8),
                len: INBOX_LEN,
            }
        }
    }

    /// Pops a slot of class `sc` for the owner when the fast path found the current run used up:
    /// collects remote frees, then moves on to another run. Returns the slot and whether it
    /// reads as zero, or `None` if the class's area has no free slot at all.
    ///
    /// # Safety
    /// The caller owns the slab, in the live reservation.
    pub(crate) unsafe fn refill(self, sc: u32) -> Option<(usize, bool)> {
        debug_assert!((MIN_SC..=MAX_SC).contains(&sc));
        let h = self.hot(sc);
        // SAFETY: the caller owns the slab: its metadata is ours to read and write.
        unsafe {
            // The slow path may have come here for another reason (first use, attaching).
            if let Some(slot) = take_current(h, sc) {
                return Some(slot);
            }
            if self.collect_remote()
                && let Some(p) = pop(h)
            {
                return Some((p, false));
            }
            let c = self.class(sc);
            if (*c).current() != 0 {
                // Used up: no free slot on its list, none left to bump.
                let r = self.run(sc, (*c).current() - 1);
                (*r).state = FULL;
                (*r).used = slots_per_run(sc);
                (*r).free = 0;
                (*c).set_current(0);
                (*c).count_retired(slots_per_run(sc));
            }
            // Accounting counts a run's whole span; the fast-path entry only the slots in it.
            let len = 1usize << run_bits(sc);
            let hd = self.header();
            let (idx, bump) = if let Some(i) = self.partial_pop(sc) {
                // Its live blocks are the current run's from now on.
                (*c).count_retired((*self.run(sc, i)).used.wrapping_neg());
                (i, Bump::No)
            } else if (*c).empty_tail != 0 {
                // The newest empty run: its pages are the likeliest to be in cache. Every slot is
                // free, so it is taken in bump mode, in address order, whatever order its slots
                // were freed in: consecutive allocations are neighbours again.
                let i = (*c).empty_tail - 1;
                self.empty_remove(sc, i);
                (*hd).empty -= self.resident(sc, i);
                (*hd).in_use += len;
                (i, Bump::Dirty)
            } else if let Some(i) = self.purged_pop(sc) {
                (*hd).in_use += len;
                (i, Bump::Zero)
            } else if (*c).fresh.load(Ordering::Relaxed) < runs_per_area(sc) {
                let i = (*c).fresh.load(Ordering::Relaxed);
                (*c).fresh.store(i + 1, Ordering::Relaxed);
                (*hd).in_use += len;
                (i, Bump::Zero)
            } else {
                HotClass::set_run(h, 0, 0, 0, 0);
                return None;
            };
            let r = self.run(sc, idx);
            let start = self.run_addr(sc, idx);
            (*r).state = CURRENT;
            (*c).set_current(idx + 1);
            (*c).bump_dirty = (bump == Bump::Dirty) as u32;
            if bump == Bump::No {
                HotClass::set_run(h, (*r).free, 0, start, run_slots_len(sc));
                (*r).free = 0;
                self.tick();
                pop(h).map(|p| (p, false))
            } else if slots_per_run(sc) == 1 {
                // A run of one slot is used up at once: file it as full rather than current, so
                // that freeing the block makes an empty run subject to the purge policy, instead
                // of a current run that would hold a big slot resident indefinitely.
                (*r).state = FULL;
                (*r).used = 1;
                (*r).free = 0;
                (*c).set_current(0);
                (*c).count_retired(1);
                HotClass::set_run(h, 0, 0, 0, 0);
                self.tick();
                Some((start, bump == Bump::Zero))
            } else {
                HotClass::set_run(h, 0, start + slot_size(sc), start, run_slots_len(sc));
                (*r).free = 0;
                self.tick();
                Some((start, bump == Bump::Zero))
            }
        }
    }

    /// Frees the block at `p`, a block of this slab, as its owner: onto the current run's list if
    /// it belongs to the current run of its class, else onto its own run's.
    ///
    /// `size` is how many bytes of the block the program asked for, if known (zero if not): a big
    /// block whose run becomes empty is counted as that many resident bytes rather than its
    /// whole slot (a slot of whole pages costs only the pages touched), so that the purge policy
    /// does not give back more than it must.
    ///
    /// # Safety
    /// The caller owns the slab; `p` is a live block of it, dead from now on.
    #[inline]
    pub(crate) unsafe fn free_local(self, p: usize, size: usize) {
        let sc = sc_of_addr(p);
        let h = self.hot(sc);
        // SAFETY: the caller owns the slab and the block.
        unsafe {
            if p.wrapping_sub((*h).run_start) < (*h).run_len {
                push(h, p);
            } else {
                self.free_to_run(p, size);
            }
        }
    }

    /// Frees the block at `p`, which is not in the current run of its class, onto its run's list.
    ///
    /// # Safety
    /// As for [`Slab::free_local`].
    pub(crate) unsafe fn free_to_run(self, p: usize, size: usize) {
        let (sc, idx) = Slab::run_of(p);
        let r = self.run(sc, idx);
        // SAFETY: the caller owns the slab and the block.
        unsafe {
            core::ptr::with_exposed_provenance_mut::<usize>(p).write((*r).free);
            (*r).free = p;
            match (*r).state {
                FULL | PARTIAL => (*self.class(sc)).count_retired(u32::MAX),
                _ => {}
            }
            match (*r).state {
                FULL => {
                    (*r).used -= 1;
                    if (*r).used == 0 {
                        self.became_empty(sc, idx, size);
                    } else {
                        (*r).state = PARTIAL;
                        self.partial_push(sc, idx);
                    }
                }
                PARTIAL => {
                    (*r).used -= 1;
                    if (*r).used == 0 {
                        self.partial_remove(sc, idx);
                        self.became_empty(sc, idx, size);
                    }
                }
                // A block freed twice, or never handed out: the program's bug. The block is
                // kept on the list but the run's count is left alone, so that no run is ever
                // taken for empty while it holds live blocks.
                _ => {}
            }
        }
    }

    /// Files run `idx` of class `sc`, whose last block was just freed, as empty, and lets the
    /// purge policy react. `size` is the size asked for the block freed last, if known (see
    /// [`Slab::free_local`]).
    ///
    /// # Safety
    /// The caller owns the slab; the run is in no list.
    unsafe fn became_empty(self, sc: u32, idx: u32, size: usize) {
        let len = 1usize << run_bits(sc);
        let resident = if slots_per_run(sc) == 1 && size != 0 {
            size.next_multiple_of(PAGE).min(len)
        } else {
            len
        };
        // SAFETY: the caller owns the slab.
        unsafe {
            let r = self.run(sc, idx);
            (*r).state = EMPTY;
            (*r).emptied_ms = smalloc_plat::now_ms();
            (*r).resident_pages = (resident / PAGE) as u32;
            self.empty_push(sc, idx);
            let hd = self.header();
            (*hd).empty += resident;
            (*hd).in_use -= len;
            self.maybe_purge(sc, idx);
        }
    }

    /// The bytes empty run `idx` of class `sc` counts as resident.
    ///
    /// # Safety
    /// The caller owns the slab; the run is empty.
    pub(crate) unsafe fn resident(self, sc: u32, idx: u32) -> usize {
        // SAFETY: per the caller.
        unsafe { (*self.run(sc, idx)).resident_pages as usize * PAGE }
    }

    /// Takes every block the inbox and the remote list hold and frees each as the owner. Returns
    /// whether there were any.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn collect_remote(self) -> bool {
        let taken = self.inbox().take(
            |p| prefetch_for_write(p as usize),
            // SAFETY: the inbox hands over blocks that are ours to free.
            |p| unsafe { self.free_local(p as usize, 0) },
        );
        let mut p = remote::take_all(self.remote_head()) as usize;
        if p == 0 {
            return taken != 0;
        }
        while p != 0 {
            // SAFETY: the take gave us every block of the chain; each link was written before the
            // push that published it. Read the link before the free overwrites it.
            unsafe {
                let next = core::ptr::with_exposed_provenance::<usize>(p).read();
                self.free_local(p, 0);
                p = next;
            }
        }
        true
    }

    // ------------------------------------------------------------------ run lists

    /// Pushes run `idx` onto the partial list of class `sc`.
    unsafe fn partial_push(self, sc: u32, idx: u32) {
        // SAFETY (all list functions): the caller owns the slab; run numbers come from its
        // lists or from addresses of its blocks, so they lie in the class's run table.
        unsafe {
            let c = self.class(sc);
            let r = self.run(sc, idx);
            (*r).prev = 0;
            (*r).next = (*c).partial;
            if (*c).partial != 0 {
                (*self.run(sc, (*c).partial - 1)).prev = idx + 1;
            }
            (*c).partial = idx + 1;
        }
    }

    /// Unlinks run `idx` from the partial list of class `sc`.
    unsafe fn partial_remove(self, sc: u32, idx: u32) {
        // SAFETY: see partial_push.
        unsafe {
            let c = self.class(sc);
            let r = self.run(sc, idx);
            let (prev, next) = ((*r).prev, (*r).next);
            if prev != 0 {
                (*self.run(sc, prev - 1)).next = next;
            } else {
                (*c).partial = next;
            }
            if next != 0 {
                (*self.run(sc, next - 1)).prev = prev;
            }
        }
    }

    /// Pops a run from the partial list of class `sc`.
    unsafe fn partial_pop(self, sc: u32) -> Option<u32> {
        // SAFETY: see partial_push.
        unsafe {
            let head = (*self.class(sc)).partial;
            if head == 0 {
                return None;
            }
            self.partial_remove(sc, head - 1);
            Some(head - 1)
        }
    }

    /// Appends run `idx` to the empty list of class `sc` (newest at the tail).
    unsafe fn empty_push(self, sc: u32, idx: u32) {
        // SAFETY: see partial_push.
        unsafe {
            let c = self.class(sc);
            let r = self.run(sc, idx);
            (*r).next = 0;
            (*r).prev = (*c).empty_tail;
            if (*c).empty_tail != 0 {
                (*self.run(sc, (*c).empty_tail - 1)).next = idx + 1;
            } else {
                (*c).empty_head = idx + 1;
            }
            (*c).empty_tail = idx + 1;
            (*c).empty_runs += 1;
        }
    }

    /// Unlinks run `idx` from the empty list of class `sc`.
    pub(crate) unsafe fn empty_remove(self, sc: u32, idx: u32) {
        // SAFETY: see partial_push.
        unsafe {
            let c = self.class(sc);
            let r = self.run(sc, idx);
            let (prev, next) = ((*r).prev, (*r).next);
            if prev != 0 {
                (*self.run(sc, prev - 1)).next = next;
            } else {
                (*c).empty_head = next;
            }
            if next != 0 {
                (*self.run(sc, next - 1)).prev = prev;
            } else {
                (*c).empty_tail = prev;
            }
            (*c).empty_runs -= 1;
        }
    }

    /// Pushes run `idx` onto the purged list of class `sc`.
    pub(crate) unsafe fn purged_push(self, sc: u32, idx: u32) {
        // SAFETY: see partial_push.
        unsafe {
            let c = self.class(sc);
            (*self.run(sc, idx)).next = (*c).purged;
            (*c).purged = idx + 1;
        }
    }

    /// Pops a run from the purged list of class `sc`.
    unsafe fn purged_pop(self, sc: u32) -> Option<u32> {
        // SAFETY: see partial_push.
        unsafe {
            let c = self.class(sc);
            let head = (*c).purged;
            if head == 0 {
                return None;
            }
            (*c).purged = (*self.run(sc, head - 1)).next;
            Some(head - 1)
        }
    }
}

/// How a run is taken as the current run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Bump {
    /// From its free list (a partial run).
    No,
    /// Slot after slot, over memory that reads as zero (a fresh or purged run).
    Zero,
    /// Slot after slot, over old data (an empty run).
    Dirty,
}

/// Whether the slots of the bump range of fast-path entry `h` (class `sc`, of an owned slab's
/// table) read as zero.
///
/// # Safety
/// `h` is an entry of an owned slab's fast-path table, owned by the caller.
#[inline(always)]
pub(crate) unsafe fn bump_is_zero(h: *const HotClass, sc: u32) -> bool {
    // Slabs start on a multiple of their span, and the class bookkeeping lies at a fixed offset.
    let start = h as usize & !(BASE_ALIGN - 1);
    let c = core::ptr::with_exposed_provenance::<ClassMeta>(start + COLD_OFF + sc as usize * 64);
    // SAFETY: per the caller, the slab is the caller's.
    unsafe { (*c).bump_dirty == 0 }
}

/// A slot of the current run of a fast-path entry, from its list or its bump range, with whether
/// it reads as zero: what the inlined fast path of `alloc` does.
///
/// # Safety
/// The entry is the caller's (it owns the slab).
#[inline(always)]
pub(crate) unsafe fn take_current(h: *mut HotClass, sc: u32) -> Option<(usize, bool)> {
    // SAFETY: per the caller.
    unsafe {
        if let Some(p) = pop(h) {
            return Some((p, false));
        }
        let b = (*h).bump;
        if b.wrapping_sub((*h).run_start) < (*h).run_len {
            (*h).bump = b + slot_size(sc);
            return Some((b, bump_is_zero(h, sc)));
        }
    }
    None
}

/// Asks the CPU to fetch the cache line at `addr` for writing (`prefetchw`: in exclusive state,
/// so that the write that follows needs no second trip). Only a hint: it never faults, whatever
/// `addr` is, and x86 CPUs without the instruction run it as a no-op.
#[inline(always)]
fn prefetch_for_write(addr: usize) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it reads no memory in the language's sense, writes none and
    // cannot fault.
    unsafe {
        core::arch::asm!(
            "prefetchw [{}]",
            in(reg) addr,
            options(nostack, preserves_flags, readonly)
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = addr;
}

/// Pops the first slot of a fast-path entry's free list.
///
/// # Safety
/// The entry is the caller's (it owns the slab), and its list links are valid.
#[inline(always)]
pub(crate) unsafe fn pop(h: *mut HotClass) -> Option<usize> {
    // SAFETY: per the caller; a listed slot's first word is its link.
    unsafe {
        let p = (*h).free;
        if p == 0 {
            return None;
        }
        (*h).free = core::ptr::with_exposed_provenance::<usize>(p).read();
        Some(p)
    }
}

/// Pushes the slot at `p` onto a fast-path entry's free list.
///
/// # Safety
/// The entry is the caller's; `p` is a dead slot of its current run, at least 8 bytes.
#[inline(always)]
pub(crate) unsafe fn push(h: *mut HotClass, p: usize) {
    // SAFETY: per the caller.
    unsafe {
        core::ptr::with_exposed_provenance_mut::<usize>(p).write((*h).free);
        (*h).free = p;
    }
}
