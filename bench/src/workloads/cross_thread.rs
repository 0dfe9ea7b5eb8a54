//! `cross-thread`: a producer thread allocates blocks and passes them to a consumer thread, which
//! checks and frees them. Every free is remote, the case that thread caches handle worst.
//!
//! The hand-off is a bounded single-producer single-consumer ring of plain atomics (allocated
//! before timing), so the only allocator calls in the timed part are the workload's own.

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
fn wait_until(mut cond: impl FnMut() -> bool) {
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
fn pin_to_cpu(n: usize) {
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

/// Passes `blocks` blocks of 16-256 B from one thread to another and returns the span from the
/// first thread's start to the last one's end.
pub fn run<A: GlobalAlloc + Sync>(a: &A, blocks: u64) -> Duration {
    let ring: Vec<AtomicUsize> = (0..RING).map(|_| AtomicUsize::new(0)).collect();
    let ring = &ring;
    // Thread 0 produces, thread 1 consumes, each on a CPU of its own where there are two: left to
    // the scheduler, the pair sometimes shares one CPU (no cache line ever changes hands) and
    // sometimes not, and the figure jumps between the two cases from round to round.
    super::multi_thread::timed_threads(2, |t| {
        pin_to_cpu(t);
        if t == 0 {
            let mut rng = Rng::new(0xC7055);
            for i in 0..blocks {
                let size = rng.range(16, 256) as usize;
                // SAFETY: size >= 16, so both words fit; the block is handed over whole.
                let p = unsafe {
                    let p = alloc(a, layout(size));
                    p.cast::<u64>().write(i);
                    p.cast::<u64>().add(1).write(size as u64);
                    p
                };
                let slot = &ring[i as usize % RING];
                wait_until(|| slot.load(Ordering::Acquire) == 0);
                slot.store(p as usize, Ordering::Release);
            }
        } else {
            for i in 0..blocks {
                let slot = &ring[i as usize % RING];
                let mut p = 0;
                wait_until(|| {
                    p = slot.load(Ordering::Acquire);
                    p != 0
                });
                slot.store(0, Ordering::Release);
                let p = p as *mut u8;
                // SAFETY: the producer wrote both words before publishing the block with Release;
                // the block is freed once, with the size it was allocated with.
                unsafe {
                    let seq = p.cast::<u64>().read();
                    let size = p.cast::<u64>().add(1).read() as usize;
                    assert_eq!(seq, i, "block handed over out of order or corrupted");
                    a.dealloc(p, layout(size));
                }
            }
        }
    })
}
