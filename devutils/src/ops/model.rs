//! The model of a run: the blocks' contents (patterns, sampled windows), the live blocks and
//! their address ranges, each thread's share, and the counts.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::Then;
use crate::{pattern_byte, pattern_word};

// -------------------------------------------------------------- contents of the blocks

/// Blocks up to this many bytes have their pattern written and checked whole; bigger ones at a
/// sample of windows.
pub const CHECK_WHOLE: usize = 64 << 10;
/// Bytes at each end of a sampled block that are always checked.
pub(super) const EDGE: usize = 4096;
/// Windows between the ends of a sampled block.
pub(super) const SAMPLES: usize = 256;
/// Bytes of each of those windows.
const SAMPLE: usize = 64;

/// The byte ranges of a block of `len` bytes that hold its pattern: all of it, or for big blocks
/// both ends and [`SAMPLES`] evenly spread windows (8-byte aligned), in address order.
pub(super) fn windows(len: usize) -> impl Iterator<Item = (usize, usize)> {
    let sampled = len > CHECK_WHOLE;
    let (first, stride, samples) = if sampled {
        ((0, EDGE), ((len - 2 * EDGE) / SAMPLES) & !7, SAMPLES)
    } else {
        ((0, len), 0, 0)
    };
    let middle = (0..samples).map(move |k| {
        let start = EDGE + k * stride;
        (start, start + SAMPLE)
    });
    std::iter::once(first)
        .chain(middle)
        .chain(sampled.then(|| (len - EDGE, len)))
}

/// Writes the pattern of `seed` over bytes `start..end` of the block at `p` (byte `i` gets
/// [`pattern_byte`]`(seed, i)`, whatever the window).
///
/// # Safety
/// `p` must be writable for `end` bytes.
unsafe fn fill_range(p: *mut u8, start: usize, end: usize, seed: u64) {
    let mut i = start;
    // SAFETY: every write is below `end`, per the caller.
    unsafe {
        while i < end && !i.is_multiple_of(8) {
            p.add(i).write(pattern_byte(seed, i));
            i += 1;
        }
        while i + 8 <= end {
            let w = pattern_word(seed, i / 8).to_le_bytes();
            p.add(i).copy_from_nonoverlapping(w.as_ptr(), 8);
            i += 8;
        }
        while i < end {
            p.add(i).write(pattern_byte(seed, i));
            i += 1;
        }
    }
}

/// Whether bytes `start..end` at `p` hold the pattern of `seed`; the first bad index if not.
///
/// # Safety
/// `p` must be readable for `end` bytes.
unsafe fn check_range(p: *const u8, start: usize, end: usize, seed: u64) -> Result<(), usize> {
    let mut i = start;
    // SAFETY: every read is below `end`, per the caller.
    unsafe {
        while i < end && !i.is_multiple_of(8) {
            if p.add(i).read() != pattern_byte(seed, i) {
                return Err(i);
            }
            i += 1;
        }
        while i + 8 <= end {
            let w = p.add(i).cast::<u64>().read_unaligned();
            if w.to_le_bytes() != pattern_word(seed, i / 8).to_le_bytes() {
                break;
            }
            i += 8;
        }
        while i < end {
            if p.add(i).read() != pattern_byte(seed, i) {
                return Err(i);
            }
            i += 1;
        }
    }
    Ok(())
}

/// Whether bytes `start..end` at `p` are zero; the first non-zero index if not.
///
/// # Safety
/// `p` must be readable for `end` bytes.
unsafe fn check_zero(p: *const u8, start: usize, end: usize) -> Result<(), usize> {
    // SAFETY: every read is below `end`, per the caller.
    (start..end).try_for_each(|i| match unsafe { p.add(i).read() } {
        0 => Ok(()),
        _ => Err(i),
    })
}

// ------------------------------------------------------------------------------ the model

/// A live block, as the model knows it.
#[derive(Debug)]
pub(super) struct Block {
    pub(super) ptr: *mut u8,
    /// Bytes asked for (the `Layout` size through `GlobalAlloc`).
    pub(super) size: usize,
    /// Bytes the program may use, which hold the pattern: `size` through `GlobalAlloc`, the
    /// usable size through the C functions.
    pub(super) len: usize,
    /// Alignment of its `Layout` (through `GlobalAlloc`).
    pub(super) align: usize,
    /// Bytes of address space it owns, for the overlap check: its usable size if known.
    pub(super) span: usize,
    /// Seed of its pattern.
    pub(super) seed: u64,
    /// Whether it counts against the budget of live bytes.
    pub(super) budgeted: bool,
}

// SAFETY: a Block describes memory from an allocator that any thread may use and free; the
// interpreters hand each block to exactly one thread at a time.
unsafe impl Send for Block {}

impl fmt::Display for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block {:?} ({} bytes", self.ptr, self.size)?;
        if self.align > 1 {
            write!(f, ", aligned to {}", self.align)?;
        }
        write!(f, ")")
    }
}

impl Block {
    /// Checks that the block still holds its pattern.
    pub(super) fn verify(&self, when: &str) -> Result<(), String> {
        for (start, end) in windows(self.len) {
            // SAFETY: the block is live and `len` bytes long.
            if let Err(i) = unsafe { check_range(self.ptr, start, end, self.seed) } {
                return Err(format!("{self} {when}: byte {i} changed"));
            }
        }
        Ok(())
    }

    /// Writes a new pattern over the block.
    pub(super) fn fill(&mut self, seed: u64) {
        self.seed = seed;
        for (start, end) in windows(self.len) {
            // SAFETY: the block is live and `len` bytes long.
            unsafe { fill_range(self.ptr, start, end, seed) };
        }
    }

    /// Checks that the first `size` bytes read as zero.
    pub(super) fn check_zeroed(&self) -> Result<(), String> {
        for (start, end) in windows(self.size) {
            // SAFETY: the block is live and at least `size` bytes long.
            if let Err(i) = unsafe { check_zero(self.ptr, start, end) } {
                return Err(format!("{self} was to be zeroed, byte {i} is not"));
            }
        }
        Ok(())
    }

    /// Checks that a block `moved` to `to` by realloc kept the first `kept` bytes of this one.
    pub(super) fn check_kept(&self, to: *const u8, kept: usize) -> Result<(), String> {
        for (start, end) in windows(self.len) {
            let end = end.min(kept);
            if start >= end {
                break;
            }
            // SAFETY: the new block is live and at least `kept` bytes long.
            if let Err(i) = unsafe { check_range(to, start, end, self.seed) } {
                return Err(format!(
                    "{self} resized to {to:?}: byte {i} of the {kept} to keep was lost"
                ));
            }
        }
        Ok(())
    }
}

/// Counts of what a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blocks obtained by allocation calls.
    pub allocs: u64,
    /// Of which zeroed.
    pub zeroed: u64,
    /// Successful resizes.
    pub reallocs: u64,
    /// Blocks freed (by `free`, `realloc` to 0, or at the end).
    pub frees: u64,
    /// Blocks handed to another thread.
    pub handoffs: u64,
    /// Blocks obtained or resized to more than [`LARGEST_SLOT`](super::LARGEST_SLOT) bytes.
    pub direct: u64,
    /// Requests that failed, as they had to or were allowed to.
    pub refused: u64,
    /// Ops that had nothing to act on, or that the interface cannot express, or that would
    /// have exceeded the budget.
    pub skipped: u64,
}

impl Stats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Stats) {
        self.allocs += other.allocs;
        self.zeroed += other.zeroed;
        self.reallocs += other.reallocs;
        self.frees += other.frees;
        self.handoffs += other.handoffs;
        self.direct += other.direct;
        self.refused += other.refused;
        self.skipped += other.skipped;
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} allocs ({} zeroed), {} reallocs, {} frees, {} handoffs, {} direct, {} refused, \
             {} skipped",
            self.allocs,
            self.zeroed,
            self.reallocs,
            self.frees,
            self.handoffs,
            self.direct,
            self.refused,
            self.skipped
        )
    }
}

/// Locks `m`, whatever a panicking thread left in it (the model only matters until the first
/// error, which every thread then sees).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The model shared by the threads of a run: the address ranges of the live blocks, and the
/// bytes they take.
pub(super) struct Shared {
    pub(super) ranges: Mutex<BTreeMap<usize, usize>>,
    pub(super) live: AtomicUsize,
    pub(super) budget: usize,
}

impl Shared {
    pub(super) fn new(budget: usize) -> Shared {
        Shared {
            ranges: Mutex::new(BTreeMap::new()),
            live: AtomicUsize::new(0),
            budget,
        }
    }

    /// Records `b`'s range, failing if it overlaps a live block's.
    pub(super) fn insert(&self, b: &Block) -> Result<(), String> {
        let start = b.ptr as usize;
        let Some(end) = start.checked_add(b.span) else {
            return Err(format!("{b} with {} usable bytes wraps around", b.span));
        };
        let mut ranges = lock(&self.ranges);
        let before = ranges.range(..=start).next_back();
        let after = ranges.range(start..).next();
        for (&s, &e) in before.into_iter().chain(after) {
            if s < end && start < e {
                return Err(format!(
                    "{b}, {} usable bytes, overlaps the live block {:#x}..{e:#x}",
                    b.span, s
                ));
            }
        }
        ranges.insert(start, end);
        Ok(())
    }

    /// Forgets `b`'s range (before the allocator may hand it out again).
    pub(super) fn remove(&self, b: &Block) {
        lock(&self.ranges).remove(&(b.ptr as usize));
    }

    /// Counts `size` more live bytes, unless that exceeds the budget.
    pub(super) fn reserve(&self, size: usize) -> bool {
        let before = self.live.fetch_add(size, Ordering::Relaxed);
        if before.saturating_add(size) > self.budget {
            self.live.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    pub(super) fn unreserve(&self, size: usize) {
        self.live.fetch_sub(size, Ordering::Relaxed);
    }
}

/// Where a thread finds the blocks other threads hand it, and what to do with each.
pub(super) type Inbox = Mutex<Vec<(Block, Then)>>;

/// One thread's part of a run: its blocks and counts.
pub(super) struct Worker {
    pub(super) me: usize,
    /// The blocks ops refer to by index: those the thread allocated, or resized after it
    /// allocated them or handed them to itself.
    pub(super) blocks: Vec<Block>,
    /// Blocks other threads handed over and the thread resized: freed at the end. Kept apart
    /// so that which block an index names never depends on when blocks arrive, which in a
    /// concurrent run is a matter of timing: each thread's ops then do the same every run.
    pub(super) received: Vec<Block>,
    pub(super) stats: Stats,
    pub(super) seeds: u64,
}

impl Worker {
    pub(super) fn new(me: usize) -> Worker {
        Worker {
            me,
            blocks: Vec::new(),
            received: Vec::new(),
            stats: Stats::default(),
            seeds: 0,
        }
    }

    /// A seed no other block of the run has had.
    pub(super) fn seed(&mut self) -> u64 {
        self.seeds += 1;
        ((self.me as u64 + 1) << 40) | self.seeds
    }

    /// The position in `blocks` of block `index`, if there are any.
    pub(super) fn pick(&mut self, index: usize) -> Option<usize> {
        if self.blocks.is_empty() {
            self.stats.skipped += 1;
            return None;
        }
        Some(index % self.blocks.len())
    }
}
