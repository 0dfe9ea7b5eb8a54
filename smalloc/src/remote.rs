//! Remote frees: blocks freed by a thread that does not own their slab.
//!
//! A remote free must reach the slab's owner without a lock and without the owner's help. Two
//! lock-free structures per owned slab carry them:
//!
//! * The **inbox**, a ring of [`INBOX_LEN`] pointer words in the slab's metadata. A freeing thread
//!   collects up to [`BATCH_MAX`] pointers bound for one slab in its own thread state, then
//!   reserves that many entries with one compare-and-swap on the inbox's tail counter and stores
//!   the pointers. The owner reads entries in order from its head counter, stopping at the first
//!   that is still zero (reserved but not yet written), zeroes what it took and publishes its new
//!   head. Neither side touches the freed blocks themselves: the block's cache line, last used by
//!   the freeing thread, moves to the owner once, when the owner reuses it, and the owner reads
//!   pointers eight to a cache line instead of chasing a linked list across another core's cache.
//! * The **remote list**, a stack of blocks linked through their first word, for everything the
//!   inbox cannot take: a full inbox, or a thread that frees without batching (one that is
//!   exiting, or attached to another instance). A push writes the old head into its last block,
//!   then compare-and-swaps the head from that old value to its first block; the owner takes the
//!   whole list with one swap. Nobody ever removes a single block, so there is no ABA problem, and
//!   no link is ever read while someone may write it.
//!
//! Both are multi-producer, single-consumer, and race-free by construction: every word shared
//! between threads is an atomic, and a block changes hands only through a release (the push or
//! the entry store) matched by the owner's acquire.

use core::sync::atomic::Ordering;

use crate::sync::Atomic64;

/// Pointers a thread collects for one slab before it hands them over with one atomic operation.
pub(crate) const BATCH_MAX: usize = 16;

/// Entries of a slab's inbox (a power of two).
pub(crate) const INBOX_LEN: u64 = 8192;

/// How far ahead of the entry it frees the owner prefetches a block of its inbox.
pub(crate) const PREFETCH_AHEAD: u64 = 8;

/// Pushes the chain `first ..= last` (already linked from `first` to `last`) onto the list whose
/// head word is `head`. `set_next(block, next)` writes a block's link.
///
/// The blocks belong to the caller until the push succeeds; afterwards, to the list's owner.
#[inline]
pub(crate) fn push_chain<A: Atomic64>(
    head: &A,
    first: u64,
    last: u64,
    mut set_next: impl FnMut(u64, u64),
) {
    let mut h = head.load(Ordering::Relaxed);
    loop {
        set_next(last, h);
        // Release: the links and everything the program wrote to the blocks happen-before the
        // owner's take of them.
        match head.compare_exchange(h, first, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(now) => h = now,
        }
    }
}

/// Takes the whole list: returns its first block (zero if it was empty). Only the list's owner
/// calls this.
#[inline]
pub(crate) fn take_all<A: Atomic64>(head: &A) -> u64 {
    // A plain load first keeps the common empty case free of a locked instruction.
    if head.load(Ordering::Relaxed) == 0 {
        return 0;
    }
    head.swap(0, Ordering::Acquire)
}

/// An inbox: its tail (entries reserved by writers), its head (entries taken by the owner) and
/// its entries, all atomic words.
pub(crate) struct Inbox<'a, A, E: Fn(u64) -> &'a A> {
    /// Counts entries ever reserved; written by freeing threads.
    pub(crate) tail: &'a A,
    /// Counts entries ever taken; written by the owner only.
    pub(crate) head: &'a A,
    /// Entry `i % len`.
    pub(crate) entry: E,
    /// Number of entries ([`INBOX_LEN`] in a slab; smaller in models).
    pub(crate) len: u64,
}

impl<'a, A: Atomic64 + 'a, E: Fn(u64) -> &'a A> Inbox<'a, A, E> {
    /// Hands `ptrs` (non-zero) to the owner. Returns `false`, having done nothing, if the inbox has
    /// no room for all of them.
    pub(crate) fn push(&self, ptrs: &[u64]) -> bool {
        let n = ptrs.len() as u64;
        let mut t = self.tail.load(Ordering::Relaxed);
        loop {
            // Acquire: the owner zeroed the entries it took before it published its head, so
            // entries below `head + len` are free for us to write.
            let h = self.head.load(Ordering::Acquire);
            if t.wrapping_add(n).wrapping_sub(h) > self.len {
                return false;
            }
            match self
                .tail
                .compare_exchange(t, t + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => t = now,
            }
        }
        for (i, &p) in ptrs.iter().enumerate() {
            debug_assert!(p != 0);
            // Release: everything the program wrote to the block happens-before the owner's
            // acquire of the entry.
            (self.entry)(t + i as u64).store(p, Ordering::Release);
        }
        true
    }

    /// Takes every entry written so far, in order, up to the first reserved one still unwritten,
    /// calling `f` on each. Only the owner calls this. Returns how many it took.
    ///
    /// `ahead` is called with the entry [`PREFETCH_AHEAD`] places further on, if it is written
    /// already: a hint (`f` is about to write to the blocks, whose cache lines are likely in the
    /// freeing thread's cache, so fetching them early overlaps the misses).
    pub(crate) fn take(&self, ahead: impl Fn(u64), mut f: impl FnMut(u64)) -> u64 {
        let start = self.head.load(Ordering::Relaxed);
        let mut h = start;
        loop {
            // Only a hint, never dereferenced here: a relaxed load will do.
            let next = (self.entry)(h + PREFETCH_AHEAD).load(Ordering::Relaxed);
            if next != 0 {
                ahead(next);
            }
            let e = (self.entry)(h);
            let p = e.load(Ordering::Acquire);
            if p == 0 {
                break;
            }
            e.store(0, Ordering::Relaxed);
            h += 1;
            f(p);
        }
        if h != start {
            // Release: our zeroing of the entries happens-before a writer's reuse of them.
            self.head.store(h, Ordering::Release);
        }
        h - start
    }
}

/// A thread's pending remote frees, all bound for one slab. All zero means none.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Batch {
    /// Address of the destination slab; zero when there is no pending free.
    pub(crate) dest: u64,
    /// Pointers pending.
    pub(crate) len: u64,
    /// The pointers.
    pub(crate) ptrs: [u64; BATCH_MAX],
}

impl Batch {
    /// No pending free.
    pub(crate) const EMPTY: Batch = Batch {
        dest: 0,
        len: 0,
        ptrs: [0; BATCH_MAX],
    };

    /// Adds `block` if the batch is bound for `dest` or empty. Returns `false` (and does nothing)
    /// if it is bound elsewhere or full: flush first.
    #[inline]
    pub(crate) fn add(&mut self, dest: u64, block: u64) -> bool {
        let len = self.len as usize;
        if (self.dest != dest && len != 0) || len >= BATCH_MAX {
            return false;
        }
        self.dest = dest;
        self.ptrs[len] = block;
        self.len += 1;
        true
    }

    /// Whether the batch should be handed over now.
    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len as usize >= BATCH_MAX
    }

    /// The pending pointers and their destination, emptying the batch (the array keeps its
    /// contents until the next add overwrites them).
    #[inline]
    pub(crate) fn take(&mut self) -> Option<(u64, &[u64])> {
        let len = self.len as usize;
        if len == 0 {
            return None;
        }
        self.len = 0;
        Some((self.dest, &self.ptrs[..len]))
    }
}
