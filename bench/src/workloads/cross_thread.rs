//! `cross-thread`: a producer thread allocates blocks and passes them to a consumer thread, which
//! checks and frees them. Every free is remote, the case that thread caches handle worst.
//!
//! The hand-off is a bounded single-producer single-consumer ring of plain atomics (`Ring`,
//! allocated before timing), so the only allocator calls in the timed part are the workload's own.
//! The ring, the hand-off blocks and the CPU pinning are shared with [`ring`](super::ring).

use std::alloc::GlobalAlloc;
use std::hint::spin_loop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use super::common::{alloc, layout};
use crate::rng::Rng;

/// Ring slots: enough that the producer rarely waits for the consumer.
const RING: usize = 4096;

/// Spins on `cond` until it holds, yielding the CPU now and then: on a machine with two cores
/// and other load, pure spinning could starve the very thread being waited for.
#[inline(always)]
pub(crate) fn wait_until(mut cond: impl FnMut() -> bool) {
    let mut spins = 0u32;
    while !cond() {
        spins += 1;
        if spins < 64 {
            spin_loop();
        } else {
            thread::yield_now();
        }
    }
}

/// Pins the calling thread to the `n`-th CPU it may run on (modulo their number). Does nothing
/// if the affinity cannot be read or set (the measurement is then merely noisier).
pub(crate) fn pin_to_cpu(n: usize) {
    // SAFETY: cpu_set_t is plain data; the calls only read and write the set we pass, for the
    // calling thread (pid 0).
    unsafe {
        let mut allowed: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut allowed) != 0 {
            return;
        }
        let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &allowed))
            .collect();
        if cpus.len() < 2 {
            return;
        }
        let mut one: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpus[n % cpus.len()], &mut one);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &one);
    }
}

/// A bounded single-producer single-consumer ring of block pointers (0: empty slot). The `i`-th
/// block sent goes to slot `i % RING`, so sender and receiver need no shared index: each counts
/// its own blocks.
pub(crate) struct Ring {
    slots: Vec<AtomicUsize>,
}

impl Ring {
    /// An empty ring (allocated here, before any timing starts).
    pub(crate) fn new() -> Ring {
        Ring {
            slots: (0..RING).map(|_| AtomicUsize::new(0)).collect(),
        }
    }

    /// Whether block number `i` can be sent now: its slot no longer holds the block sent
    /// [`RING`] places earlier.
    #[inline(always)]
    pub(crate) fn can_send(&self, i: u64) -> bool {
        self.slots[i as usize % RING].load(Ordering::Acquire) == 0
    }

    /// Sends block number `i` (the sender's `i`-th) without waiting; [`Ring::can_send`] must
    /// have said yes (only the one sender fills slots, so it still holds).
    #[inline(always)]
    pub(crate) fn put(&self, i: u64, p: *mut u8) {
        self.slots[i as usize % RING].store(p as usize, Ordering::Release);
    }

    /// Sends block number `i`, waiting until [`Ring::can_send`].
    #[inline(always)]
    pub(crate) fn send(&self, i: u64, p: *mut u8) {
        wait_until(|| self.can_send(i));
        self.put(i, p);
    }

    /// Whether block number `i` (the receiver's `i`-th) has arrived.
    #[inline(always)]
    pub(crate) fn has(&self, i: u64) -> bool {
        self.slots[i as usize % RING].load(Ordering::Acquire) != 0
    }

    /// Receives block number `i` if it has arrived.
    #[inline(always)]
    pub(crate) fn try_receive(&self, i: u64) -> Option<*mut u8> {
        let slot = &self.slots[i as usize % RING];
        let p = slot.load(Ordering::Acquire);
        if p == 0 {
            return None;
        }
        slot.store(0, Ordering::Release);
        Some(p as *mut u8)
    }

    /// Receives block number `i`, waiting until it has been sent.
    #[inline(always)]
    pub(crate) fn receive(&self, i: u64) -> *mut u8 {
        wait_until(|| self.has(i));
        self.try_receive(i)
            .expect("only the receiver empties its slots")
    }
}

/// Allocates a block of 16-256 B for hand-off number `i` and writes `i` and its size into its
/// first two words, which [`free_handed`] checks.
#[inline(always)]
pub(crate) fn new_handed<A: GlobalAlloc>(a: &A, rng: &mut Rng, i: u64) -> *mut u8 {
    let size = rng.range(16, 256) as usize;
    // SAFETY: size >= 16, so both words fit.
    unsafe {
        let p = alloc(a, layout(size));
        p.cast::<u64>().write(i);
        p.cast::<u64>().add(1).write(size as u64);
        p
    }
}

/// Checks that `p` is hand-off number `i` from [`new_handed`] and frees it.
///
/// # Safety
/// `p` must be a live block from [`new_handed`], received through a [`Ring`] (whose Release /
/// Acquire pair makes its two words visible), and not used again.
#[inline(always)]
pub(crate) unsafe fn free_handed<A: GlobalAlloc>(a: &A, p: *mut u8, i: u64) {
    // SAFETY: the caller guarantees a live block whose two words were written and published; it
    // is freed once, with the size it was allocated with.
    unsafe {
        let seq = p.cast::<u64>().read();
        let size = p.cast::<u64>().add(1).read() as usize;
        assert_eq!(seq, i, "block handed over out of order or corrupted");
        a.dealloc(p, layout(size));
    }
}

/// Passes `blocks` blocks of 16-256 B from one thread to another and returns the span from the
/// first thread's start to the last one's end.
pub fn run<A: GlobalAlloc + Sync>(a: &A, blocks: u64) -> Duration {
    let ring = Ring::new();
    let ring = &ring;
    // Thread 0 produces, thread 1 consumes, each on a CPU of its own where there are two: left to
    // the scheduler, the pair sometimes shares one CPU (no cache line ever changes hands) and
    // sometimes not, and the figure jumps between the two cases from round to round.
    super::multi_thread::timed_threads(2, |t| {
        pin_to_cpu(t);
        if t == 0 {
            let mut rng = Rng::new(0xC7055);
            for i in 0..blocks {
                ring.send(i, new_handed(a, &mut rng, i));
            }
        } else {
            for i in 0..blocks {
                // SAFETY: the block came through the ring and is freed once, here.
                unsafe { free_handed(a, ring.receive(i), i) };
            }
        }
    })
}
