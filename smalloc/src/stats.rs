//! Statistics: what an instance holds, gathered on demand.
//!
//! Nothing here runs on the fast paths, which pay nothing for the statistics (a counter there,
//! even a plain per-thread one, put a store-to-load dependency into every malloc/free pair and
//! cost 2-3 ns of a 4 ns pair here). The live blocks of an owned slab are counted in two parts:
//!
//! * outside the current run of each class: the owner keeps a count per class on its slow paths
//!   (a run retired full adds its slots, a free into a non-current run takes one off, a partial
//!   run made current takes its count along);
//! * in the current run: worked out when asked, from the run's fast-path entry (slots bumped
//!   past, minus the length of its free list). Only a slab's owner may read that entry, so this is
//!   exact for the calling thread's own slab and for the slabs no thread owns (claimed for the
//!   count, as `trim` does); for a slab another running thread owns, its current run counts as
//!   fully in use (at most one run, 64 KiB, per class in use).
//!
//! The shared slabs count with an atomic add next to their list heads; direct mappings count in
//! the reservation-wide state as they are mapped and unmapped. Resident bytes are measured page
//! by page with `mincore`, up to each class's high-water mark: the kernel's figure, not an
//! estimate.
//!
//! A block freed by a thread other than its owner is counted live until the owner collects it
//! (at its next allocation that finds its current run used up, or at `trim`).

use core::fmt;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::layout::{
    INBOX_OFF, MAX_SC, MIN_SC, OWNED_SLABS, RUNS_LEN, RUNS_OFF, SHARED_SLABS, area_offset,
    run_bits, slot_size, slots_per_run,
};
use crate::ownership;
use crate::reservation::Reservation;
use crate::slab::Slab;
use crate::thread;

/// Number of size classes the slabs serve (8 B to 128 MiB, two per power of two).
pub(crate) const CLASSES: usize = {
    let mut n = 0;
    let mut sc = MIN_SC;
    while sc <= MAX_SC {
        if slot_size(sc) != 0 {
            n += 1;
        }
        sc += 1;
    }
    n
};

/// One size class in [`Stats`].
///
/// ```
/// static HEAP: smalloc_core::Smalloc = smalloc_core::Smalloc::new();
/// let st = HEAP.stats();
/// let sizes: Vec<usize> = st.classes().iter().map(|c| c.slot_size).take(6).collect();
/// assert_eq!(sizes, [8, 16, 24, 32, 48, 64]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Bytes of one slot of the class: the usable size of each of its blocks.
    pub slot_size: usize,
    /// Blocks of the class handed out and not freed.
    pub live_blocks: usize,
    /// Bytes of the class's slots resident in memory, live or free.
    pub resident_bytes: usize,
}

/// A snapshot of what an allocator instance holds, from
/// [`Smalloc::stats`](crate::Smalloc::stats).
///
/// Figures of other threads are read while those threads keep working, so a snapshot taken
/// during heavy allocation is approximate; one taken while the program is quiet is exact (live
/// figures) or the kernel's own (resident figures).
///
/// ```
/// use smalloc_core::Smalloc;
///
/// #[global_allocator]
/// static ALLOC: Smalloc = Smalloc::new();
///
/// let big = vec![0u8; 200 << 20]; // over 128 MiB: a mapping of its own
/// let st = ALLOC.stats();
/// assert_eq!(st.direct_blocks, 1);
/// assert!(st.live_bytes >= 200 << 20);
/// assert!(st.threads >= 1 && st.slabs_in_use >= 1);
/// # drop(big);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes in live blocks, each counted as its usable size (its slot, or the data pages of a
    /// direct mapping): what the program may use.
    pub live_bytes: usize,
    /// Live blocks, direct mappings included.
    pub live_blocks: usize,
    /// Bytes of the slabs resident in memory: slots (live or free) and the allocator's metadata.
    pub resident_bytes: usize,
    /// The part of [`Stats::resident_bytes`] that is metadata.
    pub metadata_bytes: usize,
    /// Blocks with a mapping of their own (bigger than 128 MiB, or made when the slabs were
    /// exhausted).
    pub direct_blocks: usize,
    /// Bytes mapped for those blocks, including one header page each.
    pub direct_bytes: usize,
    /// Bytes of slab memory given back to the OS since the instance started.
    pub given_back_bytes: u64,
    /// Threads attached to the instance.
    pub threads: usize,
    /// Slabs owned by a thread right now.
    pub slabs_in_use: usize,
    classes: [ClassStats; CLASSES],
}

impl Default for Stats {
    fn default() -> Self {
        let mut classes = [ClassStats::default(); CLASSES];
        let mut k = 0;
        for sc in MIN_SC..=MAX_SC {
            if slot_size(sc) != 0 {
                classes[k].slot_size = slot_size(sc);
                k += 1;
            }
        }
        Stats {
            live_bytes: 0,
            live_blocks: 0,
            resident_bytes: 0,
            metadata_bytes: 0,
            direct_blocks: 0,
            direct_bytes: 0,
            given_back_bytes: 0,
            threads: 0,
            slabs_in_use: 0,
            classes,
        }
    }
}

impl Stats {
    /// Every size class, smallest first.
    ///
    /// ```
    /// static HEAP: smalloc_core::Smalloc = smalloc_core::Smalloc::new();
    /// let st = HEAP.stats();
    /// assert_eq!(st.classes().last().unwrap().slot_size, 128 << 20);
    /// ```
    pub fn classes(&self) -> &[ClassStats] {
        &self.classes
    }

    /// The size class whose slots are `slot_size` bytes, if there is one.
    ///
    /// ```
    /// static HEAP: smalloc_core::Smalloc = smalloc_core::Smalloc::new();
    /// let st = HEAP.stats();
    /// assert!(st.class(48).is_some());
    /// assert!(st.class(50).is_none()); // 48 and 64 are classes, 50 is not
    /// ```
    pub fn class(&self, slot_size: usize) -> Option<&ClassStats> {
        self.classes.iter().find(|c| c.slot_size == slot_size)
    }

    /// Bytes of slots resident but not in live blocks: memory held for reuse (never negative;
    /// a live block whose pages were never touched counts as using none).
    ///
    /// ```
    /// use smalloc_core::Smalloc;
    ///
    /// #[global_allocator]
    /// static ALLOC: Smalloc = Smalloc::new();
    ///
    /// let v: Vec<Box<[u8; 1000]>> = (0..1000).map(|_| Box::new([7; 1000])).collect();
    /// let held = ALLOC.stats().free_resident_bytes();
    /// drop(v);
    /// // The freed blocks stay resident for reuse (until trimmed or purged).
    /// assert!(ALLOC.stats().free_resident_bytes() >= held + 1000 * 1000);
    /// ```
    pub fn free_resident_bytes(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.resident_bytes.saturating_sub(c.live_blocks * c.slot_size))
            .sum()
    }
}

/// The index in [`Stats::classes`] of each class position (unused for positions without slots).
const fn class_index(sc: u32) -> usize {
    let mut k = 0;
    let mut c = MIN_SC;
    while c < sc {
        if slot_size(c) != 0 {
            k += 1;
        }
        c += 1;
    }
    k
}

/// Bytes resident in `[start, start + len)`, widened to whole pages.
fn resident(start: usize, len: usize) -> usize {
    if len == 0 {
        return 0;
    }
    let page = smalloc_plat::page_size();
    let lo = start & !(page - 1);
    let hi = (start + len).next_multiple_of(page);
    // SAFETY: lo is page-aligned and non-null (inside the reservation); mincore reads nothing.
    unsafe {
        smalloc_plat::resident(
            NonNull::new_unchecked(core::ptr::with_exposed_provenance_mut(lo)),
            hi - lo,
        )
    }
}

/// Live blocks in the current run of class `sc` of slab `s`: slots handed out (bumped past, or
/// all of them for a run taken from its free list) minus those on its free list.
///
/// # Safety
/// The caller owns the slab, and the class has a current run.
unsafe fn current_live(s: Slab, sc: u32) -> u64 {
    let per = slots_per_run(sc) as u64;
    let h = s.hot(sc);
    // SAFETY: per the caller, the entry and the list links of its free slots are ours to read.
    unsafe {
        let bumped = (*h).bump.wrapping_sub((*h).run_start);
        let handed = if (*h).bump != 0 && bumped <= (*h).run_len {
            (bumped / slot_size(sc)) as u64
        } else {
            per
        };
        let mut free = 0;
        let mut p = (*h).free;
        while p != 0 && free < per {
            free += 1;
            p = core::ptr::with_exposed_provenance::<usize>(p).read();
        }
        handed.saturating_sub(free)
    }
}

/// Gathers the statistics of the live reservation `r`.
pub(crate) fn gather(r: Reservation) -> Stats {
    let g = r.global();
    let mut st = Stats::default();
    let mut live = [0u64; CLASSES];
    let used = (g.slabs_used.load(Ordering::Relaxed) as usize).min(OWNED_SLABS);
    let t = thread::state();
    // SAFETY: the calling thread's own state.
    let mine = unsafe { ((*t).base == r.base && (*t).slab != 0).then(|| (*t).slab as usize - 1) };
    for index in 0..used {
        let s = r.slab(index);
        // A slab nobody owns is claimed while it is counted, so that its current runs can be
        // read (as `trim` does); it is given back untouched.
        let borrowed = mine != Some(index) && ownership::claim_exact(&g.claimed, index);
        let exact = mine == Some(index) || borrowed;
        st.metadata_bytes += resident(s.start(), RUNS_OFF + RUNS_LEN);
        // SAFETY: the slab's metadata area is mapped for the reservation's life; the words read
        // here are atomics (written by the owner with plain atomic stores).
        unsafe {
            st.given_back_bytes += (*s.header()).purged_total.load(Ordering::Relaxed);
            for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
                let k = class_index(sc);
                let c = s.class(sc);
                live[k] += (*c).retired_live.load(Ordering::Relaxed) as u64;
                if (*c).current() != 0 {
                    live[k] += if exact {
                        current_live(s, sc)
                    } else {
                        slots_per_run(sc) as u64
                    };
                }
                let runs = (*s.class(sc)).fresh.load(Ordering::Relaxed) as usize;
                if runs > 0 {
                    st.classes[k].resident_bytes +=
                        resident(s.run_addr(sc, 0), runs << run_bits(sc));
                }
            }
        }
        if borrowed {
            r.release(index);
        }
    }
    for shared in 0..SHARED_SLABS {
        let mut any = false;
        for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
            let k = class_index(sc);
            live[k] = live[k].wrapping_add(r.shared_live(shared, sc).load(Ordering::Relaxed));
            let high = r.shared_high(shared, sc).load(Ordering::Relaxed) as usize;
            if high > 0 {
                any = true;
                st.classes[k].resident_bytes +=
                    resident(r.shared_slot(shared, sc, 0), high * slot_size(sc));
                let links = r.shared_link(shared, sc, 0) as *const _ as usize;
                st.metadata_bytes += resident(links, high * 8);
            }
        }
        if any {
            // The list heads and counters, in the first megabyte of the metadata area.
            let meta = r.base + area_offset(OWNED_SLABS + shared, 0);
            st.metadata_bytes += resident(meta, INBOX_OFF);
        }
    }
    for (c, n) in st.classes.iter_mut().zip(live) {
        // Counts of shared slabs wrap when a free's decrement lands before the allocation's
        // increment: a transient negative reads as zero.
        let n = if (n as i64) < 0 { 0 } else { n as usize };
        c.live_blocks = n;
        st.live_blocks += n;
        st.live_bytes += n * c.slot_size;
        st.resident_bytes += c.resident_bytes;
    }
    st.resident_bytes += st.metadata_bytes;
    st.given_back_bytes += g.shared_purged.load(Ordering::Relaxed);
    st.direct_blocks = g.direct_blocks.load(Ordering::Relaxed) as usize;
    st.direct_bytes = g.direct_bytes.load(Ordering::Relaxed) as usize;
    st.live_blocks += st.direct_blocks;
    st.live_bytes += st
        .direct_bytes
        .saturating_sub(st.direct_blocks * smalloc_plat::page_size());
    st.threads = g.attached.load(Ordering::Relaxed) as usize;
    st.slabs_in_use = g
        .claimed
        .iter()
        .map(|w| w.load(Ordering::Relaxed).count_ones() as usize)
        .sum();
    st
}

/// Binary prefixes for [`Bytes`].
const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];

/// A byte count printed with a binary prefix.
struct Bytes(u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = self.0 as f64;
        let mut unit = 0;
        while v >= 1024.0 && unit + 1 < UNITS.len() {
            v /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[unit])
        }
    }
}

/// The summary that `SMALLOC_SHOW_STATS` prints: totals, then one line per class in use.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "smalloc statistics")?;
        writeln!(
            f,
            "  live:       {} in {} blocks",
            Bytes(self.live_bytes as u64),
            self.live_blocks
        )?;
        writeln!(
            f,
            "  resident:   {} (metadata {}, free slots {})",
            Bytes(self.resident_bytes as u64),
            Bytes(self.metadata_bytes as u64),
            Bytes(self.free_resident_bytes() as u64)
        )?;
        writeln!(
            f,
            "  direct:     {} in {} mappings",
            Bytes(self.direct_bytes as u64),
            self.direct_blocks
        )?;
        writeln!(f, "  given back: {}", Bytes(self.given_back_bytes))?;
        writeln!(
            f,
            "  threads:    {} attached, {} slabs owned",
            self.threads, self.slabs_in_use
        )?;
        writeln!(
            f,
            "  {:>12} {:>12} {:>12} {:>12}",
            "slot", "live blocks", "live", "resident"
        )?;
        for c in self
            .classes
            .iter()
            .filter(|c| c.live_blocks != 0 || c.resident_bytes != 0)
        {
            writeln!(
                f,
                "  {:>12} {:>12} {:>12} {:>12}",
                Bytes(c.slot_size as u64).to_padded(),
                c.live_blocks,
                Bytes((c.live_blocks * c.slot_size) as u64).to_padded(),
                Bytes(c.resident_bytes as u64).to_padded()
            )?;
        }
        Ok(())
    }
}

impl Bytes {
    /// The figure as a fixed-size string, so that it can be right-aligned in a column (a
    /// `Display` value ignores width unless it pads itself).
    fn to_padded(&self) -> Padded {
        let mut p = Padded {
            buf: [0; 24],
            len: 0,
        };
        let _ = fmt::write(&mut p, format_args!("{self}"));
        p
    }
}

/// A short string on the stack.
struct Padded {
    buf: [u8; 24],
    len: usize,
}

impl fmt::Write for Padded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

impl fmt::Display for Padded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(core::str::from_utf8(&self.buf[..self.len]).unwrap_or(""))
    }
}

/// The reservation whose statistics are printed at exit (`SMALLOC_SHOW_STATS`); zero if none.
static SHOW_AT_EXIT: AtomicUsize = AtomicUsize::new(0);

/// Called once a reservation is made: if `SMALLOC_SHOW_STATS` is set, its statistics are printed
/// to standard error at exit (those of the first such reservation). Only reads the environment
/// in place: registering anything here (`atexit`) could lock or allocate inside `malloc`; the
/// printing runs from the `.fini_array` entry below instead.
pub(crate) fn on_reserved(base: usize) {
    if smalloc_plat::env_flag(c"SMALLOC_SHOW_STATS") {
        let _ = SHOW_AT_EXIT.compare_exchange(0, base, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// Called before a reservation is unmapped: its statistics can no longer be printed.
pub(crate) fn on_unmapped(base: usize) {
    let _ = SHOW_AT_EXIT.compare_exchange(base, 0, Ordering::AcqRel, Ordering::Relaxed);
}

/// Runs [`print_at_exit`] when the process exits (or the shared library holding smalloc is
/// unloaded), after `main` and the `atexit` handlers.
#[cfg(all(target_os = "linux", not(miri)))]
#[used]
// SAFETY: `.fini_array` holds pointers to functions taking no arguments, run once at exit;
// print_at_exit is one, and needs nothing that exit has already torn down (it writes with the
// write system call).
#[unsafe(link_section = ".fini_array")]
static PRINT_AT_EXIT: extern "C" fn() = print_at_exit;

/// Prints the statistics of the reservation in [`SHOW_AT_EXIT`].
extern "C" fn print_at_exit() {
    let base = SHOW_AT_EXIT.load(Ordering::Acquire);
    if base == 0 {
        return;
    }
    let st = gather(Reservation { base });
    let mut out = smalloc_plat::StackWriter::new(smalloc_plat::write_stderr);
    let _ = fmt::write(&mut out, format_args!("{st}"));
}
