//! Giving memory back: when the empty runs of an owned slab are returned to the OS.
//!
//! Two faults are to be avoided. Keeping every page a program ever touched makes a program that
//! once peaked at 2 GiB hold 2 GiB for ever; giving a page back the moment it is free makes a
//! program that frees and reallocates a block over and over pay a page fault (1.6 us on these
//! virtual machines, the price of hundreds of allocations) for every page, every time. So:
//!
//! * The current run of a class is never purged, however free it is: a loop that allocates and
//!   frees one block never reaches the OS.
//! * Empty runs stay resident, reusable, up to a *retained* amount per slab: 16 MiB plus one
//!   quarter of the bytes of runs in use, so that a program churning big blocks keeps a working
//!   set proportional to what it holds. Past one and a half times that, the oldest empty runs are
//!   purged until the retained amount is met again: purging starts late and then takes a batch,
//!   neighbouring runs in one system call. The run that just became empty is spared if it is no
//!   bigger than 32 MiB (a block of up to 32 MiB freed and allocated in a loop stays resident);
//!   a bigger one goes back at once if it does not fit, as glibc returns its big blocks.
//! * Classes of 64 KiB and more have one slot per run and no current run: their blocks are
//!   counted on every allocation and free, so that a freed big block is an empty run like any
//!   other, never held as a current run.
//! * Oldest first, except that a class's only empty run is kept as that class's spare, up to
//!   [`SPARE_BUDGET`] of spares in all.
//! * Empty runs older than [`DECAY_MS`] are purged down to [`RETAIN_MIN`], checked every
//!   [`DECAY_EVERY`] run changes at most once per [`DECAY_TICK_MS`]: a slab keeps a bounded
//!   amount of free memory resident for as long as its owner lives, and gives back the rest
//!   after a delay or past a limit.
//! * No step gives back more than [`PURGE_STEP`] bytes (or the one run that just became empty,
//!   if bigger), so no allocation or free ever pays for a long purge; there is no background
//!   thread and nothing that runs when a delay expires on its own. An idle thread keeps its empty runs until it calls the allocator again, exits, or
//!   someone calls `Smalloc::trim`.
//! * A thread that exits leaves its slab with at most [`RETAIN_MIN`] of empty runs, for the next
//!   thread to claim it (threads come and go in many programs, and each would otherwise fault its
//!   working set in anew). The slabs nobody owns keep at most [`RELEASED_BUDGET`] in all: past
//!   that, the exiting thread cools the highest-numbered of them (new threads claim the lowest
//!   free slab, so those are the least likely to be claimed soon), its own included, giving all
//!   their empty runs back.
//!
//! Purged runs read as zero and are reused, in bump mode, before runs never used: the heap's
//! address footprint stays compact.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::{MAX_SC, MIN_SC, run_bits, slot_size, slots_per_run};
use crate::slab::{EMPTY, HotClass, PURGED, Slab};

/// Empty bytes a slab keeps resident whatever its size.
pub(crate) const RETAIN_MIN: usize = 16 << 20;
/// A slab also keeps empty runs up to `in use / RETAIN_SHARE`.
pub(crate) const RETAIN_SHARE: usize = 4;
/// The run that just became empty is not purged at once if it is at most this big (glibc's line
/// between its heap and direct mappings).
pub(crate) const SPARE_MAX: usize = 32 << 20;
/// Most resident bytes of the spares a slab keeps, one empty run per class (see `oldest_empty`).
pub(crate) const SPARE_BUDGET: usize = 16 << 20;
/// Empty bytes all the slabs that nobody owns may keep together.
pub(crate) const RELEASED_BUDGET: u64 = 128 << 20;
/// Empty runs older than this are purged (on the owner's next check).
pub(crate) const DECAY_MS: u32 = 1000;
/// Decay checks run at most this often (so the decay gives back up to 20 MiB/s per slab).
pub(crate) const DECAY_TICK_MS: u32 = 25;
/// Decay checks run on one run change in this many (reading the clock costs a few ns).
pub(crate) const DECAY_EVERY: u64 = 16;
/// Most bytes one purge step of an allocation or a free gives back: `madvise(MADV_DONTNEED)` of
/// resident pages costs 0.15-0.5 us per 4 KiB page on the machines measured, so 20-70 us.
pub(crate) const PURGE_STEP: usize = 512 << 10;

impl Slab {
    /// The empty bytes this slab may keep resident now.
    ///
    /// # Safety
    /// The caller owns the slab.
    unsafe fn retain_limit(self) -> usize {
        // SAFETY: per the caller.
        RETAIN_MIN + unsafe { (*self.header()).in_use } / RETAIN_SHARE
    }

    /// Called when run `idx` of class `sc` became empty: purges the oldest empty runs if there
    /// are too many. The run itself is spared if it is no bigger than [`SPARE_MAX`]: it is the
    /// likeliest to be wanted again (a block freed and allocated over and over), and the decay
    /// purges it if it is not.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn maybe_purge(self, sc: u32, idx: u32) {
        // SAFETY: per the caller.
        unsafe {
            let limit = self.retain_limit();
            if (*self.header()).empty > limit + limit / 2 {
                let len = 1usize << run_bits(sc);
                let spare = (len <= SPARE_MAX).then_some((sc, idx));
                // At least as much as just became empty, so that purging keeps pace.
                self.purge_down_to(limit, PURGE_STEP.max(len), u32::MAX, spare, true);
            }
        }
    }

    /// Called when a run is taken: now and then, purges the runs that have been empty too long,
    /// beyond the bounded amount a slab keeps.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn tick(self) {
        // SAFETY: per the caller.
        unsafe {
            let hd = self.header();
            (*hd).events += 1;
            if !(*hd).events.is_multiple_of(DECAY_EVERY) || (*hd).empty == 0 {
                return;
            }
            let now = smalloc_plat::now_ms();
            if now.wrapping_sub((*hd).last_decay_ms) < DECAY_TICK_MS {
                return;
            }
            (*hd).last_decay_ms = now;
            self.purge_down_to(RETAIN_MIN, PURGE_STEP, DECAY_MS, None, true);
        }
    }

    /// Purges empty runs, oldest first, until at most `target` empty bytes remain, about
    /// `budget` bytes were given back, the oldest empty run is `spare`, or (when `min_age_ms` is
    /// not `u32::MAX`) it is younger than `min_age_ms`. With `class_spares`, each class's spare
    /// is passed over (see `oldest_empty`). Returns the bytes given back.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn purge_down_to(
        self,
        target: usize,
        budget: usize,
        min_age_ms: u32,
        spare: Option<(u32, u32)>,
        class_spares: bool,
    ) -> usize {
        let mut purged = 0;
        let now = smalloc_plat::now_ms();
        // SAFETY: per the caller.
        unsafe {
            while purged < budget && (*self.header()).empty > target {
                let Some((sc, idx, age)) = self.oldest_empty(now, class_spares) else {
                    break;
                };
                if (min_age_ms != u32::MAX && age < min_age_ms) || Some((sc, idx)) == spare {
                    break;
                }
                // No further than the target or the budget asks (at least one run).
                let want = (budget - purged).min((*self.header()).empty - target);
                match self.purge_around(sc, idx, want) {
                    0 => break,
                    n => purged += n,
                }
            }
        }
        purged
    }

    /// The empty run that became empty first, over all classes, with its age. With `spares`, a
    /// class's only empty run is passed over, as that class's spare, while the spares passed over
    /// come to at most [`SPARE_BUDGET`]: a program that goes back and forth between phases keeps
    /// one run ready in each class it uses, whatever the other phases freed since.
    ///
    /// # Safety
    /// The caller owns the slab.
    unsafe fn oldest_empty(self, now: u32, spares: bool) -> Option<(u32, u32, u32)> {
        let mut best: Option<(u32, u32, u32)> = None;
        let mut spared = 0;
        for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
            // SAFETY: per the caller; the head is a run of the class.
            unsafe {
                let c = self.class(sc);
                let head = (*c).empty_head;
                if head == 0 {
                    continue;
                }
                if spares && (*c).empty_runs == 1 {
                    let resident = self.resident(sc, head - 1);
                    if spared + resident <= SPARE_BUDGET {
                        spared += resident;
                        continue;
                    }
                }
                let age = now.wrapping_sub((*self.run(sc, head - 1)).emptied_ms);
                if best.is_none_or(|b| age > b.2) {
                    best = Some((sc, head - 1, age));
                }
            }
        }
        best
    }

    /// Purges empty run `idx` of class `sc` together with the empty runs next to it, up to
    /// `max_bytes` (but at least the run), in one system call, and files them as purged. Returns
    /// the bytes given back, as counted resident (zero if the OS refused, in which case nothing
    /// changed).
    ///
    /// # Safety
    /// The caller owns the slab; the run is empty.
    unsafe fn purge_around(self, sc: u32, idx: u32, max_bytes: usize) -> usize {
        let bits = run_bits(sc);
        let max_runs = (max_bytes >> bits).clamp(1, u32::MAX as usize) as u32;
        // SAFETY: per the caller; neighbours are looked at only below the class's fresh mark,
        // so they lie in its run table.
        unsafe {
            let fresh = (*self.class(sc)).fresh.load(Ordering::Relaxed);
            let (mut lo, mut hi) = (idx, idx);
            while hi - lo + 1 < max_runs && hi + 1 < fresh && (*self.run(sc, hi + 1)).state == EMPTY
            {
                hi += 1;
            }
            while hi - lo + 1 < max_runs && lo > 0 && (*self.run(sc, lo - 1)).state == EMPTY {
                lo -= 1;
            }
            let len = ((hi - lo + 1) as usize) << bits;
            let start = self.run_addr(sc, lo);
            // SAFETY: the runs are empty: nothing in them is live.
            if !smalloc_plat::purge(core::ptr::NonNull::new_unchecked(start as *mut u8), len) {
                return 0;
            }
            let mut resident = 0;
            for i in lo..=hi {
                self.empty_remove(sc, i);
                resident += self.resident(sc, i);
                let r = self.run(sc, i);
                (*r).state = PURGED;
                (*r).free = 0;
                (*r).used = 0;
                self.purged_push(sc, i);
            }
            let hd = self.header();
            (*hd).empty -= resident;
            crate::slab::add_owned(&(*hd).purged_total, resident as u64);
            resident
        }
    }

    /// Purges the current run of class `sc` if none of its slots is handed out, and files it as
    /// purged. Returns the bytes given back.
    ///
    /// # Safety
    /// The caller owns the slab.
    unsafe fn purge_current_if_free(self, sc: u32) -> usize {
        // SAFETY: per the caller.
        unsafe {
            let h = self.hot(sc);
            let c = self.class(sc);
            if (*c).current() == 0 {
                return 0;
            }
            let run_end = (*h).run_start + (*h).run_len;
            let mut free = if (*h).bump != 0 {
                ((run_end - (*h).bump) / slot_size(sc)) as u32
            } else {
                0
            };
            let cap = slots_per_run(sc);
            let mut p = (*h).free;
            while p != 0 && free <= cap {
                free += 1;
                p = core::ptr::with_exposed_provenance::<usize>(p).read();
            }
            if free != cap {
                return 0;
            }
            let len = 1usize << run_bits(sc);
            if !smalloc_plat::purge(
                core::ptr::NonNull::new_unchecked((*h).run_start as *mut u8),
                len,
            ) {
                return 0;
            }
            let idx = (*c).current() - 1;
            let r = self.run(sc, idx);
            (*r).state = PURGED;
            (*r).free = 0;
            (*r).used = 0;
            self.purged_push(sc, idx);
            (*c).set_current(0);
            HotClass::set_run(h, 0, 0, 0, 0);
            let hd = self.header();
            (*hd).in_use -= len;
            crate::slab::add_owned(&(*hd).purged_total, len as u64);
            len
        }
    }

    /// Gives back every free run of the slab now: collects the remote frees, purges every empty
    /// run and every current run with nothing handed out. Returns the bytes given back.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn trim(self) -> usize {
        // SAFETY: per the caller.
        unsafe {
            self.collect_remote();
            let mut purged = 0;
            for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
                purged += self.purge_current_if_free(sc);
            }
            purged + self.purge_down_to(0, usize::MAX, u32::MAX, None, false)
        }
    }

    /// Tidies the slab as its owner lets it go: collects the remote frees and purges empty runs
    /// beyond [`RETAIN_MIN`]. Returns the empty bytes it keeps.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn tidy_for_release(self) -> usize {
        // SAFETY: per the caller.
        unsafe {
            self.collect_remote();
            self.purge_down_to(RETAIN_MIN, usize::MAX, u32::MAX, None, true);
            (*self.header()).empty
        }
    }

    /// Gives back every empty run of the slab (one nobody owns, being cooled). Returns the
    /// empty bytes given back.
    ///
    /// # Safety
    /// The caller owns the slab.
    pub(crate) unsafe fn cool(self) -> usize {
        // SAFETY: per the caller.
        unsafe {
            let before = (*self.header()).empty;
            self.purge_down_to(0, usize::MAX, u32::MAX, None, false);
            before - (*self.header()).empty
        }
    }
}

/// Takes `bytes` off the count of empty bytes held by slabs nobody owns (never below zero: the
/// count is a heuristic, and a claim may take off more than was added).
pub(crate) fn uncount_released(released: &AtomicU64, bytes: u64) {
    let _ = released.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
        Some(v.saturating_sub(bytes))
    });
}
