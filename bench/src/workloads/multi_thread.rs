//! Threads running at once: `multi-thread` (each thread its own working set, nothing shared but
//! the allocator) and `hotspot` (every thread hammering the same size class).
//!
//! Each thread reads the clock right after all threads have been released together and again
//! when it is done; the figure is the span from the earliest start to the latest end (wall time
//! over all threads' operations). The threads read the clock themselves because the spawning
//! thread, when threads outnumber CPUs, may not run again until the workers are long done. On a
//! machine with fewer cores than threads the threads take turns (they are oversubscribed): that
//! measures behaviour under contention and preemption, not scaling.

use std::alloc::GlobalAlloc;
use std::hint::black_box;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use super::common::{alloc, layout};
use super::mixed;

/// Blocks each hotspot thread holds at once.
pub const BURST: usize = 8;

/// Stack size of the worker threads: they need little, and 1024 default 8 MiB stacks would be a
/// lot of address space for nothing.
pub(crate) const STACK: usize = 256 * 1024;

/// Runs `f(thread_index)` on `threads` threads released together; returns the span from the
/// first thread's start to the last thread's end.
pub(crate) fn timed_threads(threads: usize, f: impl Fn(usize) + Sync) -> Duration {
    let barrier = Barrier::new(threads);
    let spans: Vec<(Instant, Instant)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (barrier, f) = (&barrier, &f);
                thread::Builder::new()
                    .stack_size(STACK)
                    .spawn_scoped(s, move || {
                        barrier.wait();
                        let start = Instant::now();
                        f(t);
                        (start, Instant::now())
                    })
                    .expect("cannot spawn a benchmark thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("benchmark thread panicked"))
            .collect()
    });
    let first = spans
        .iter()
        .map(|s| s.0)
        .min()
        .expect("at least one thread");
    let last = spans
        .iter()
        .map(|s| s.1)
        .max()
        .expect("at least one thread");
    last - first
}

/// Runs `f` on a new thread (with the small worker stack) and returns its result once the
/// thread has exited.
pub(crate) fn on_new_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    thread::scope(|s| {
        thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(s, f)
            .expect("cannot spawn a benchmark thread")
            .join()
            .expect("benchmark thread panicked")
    })
}

/// `threads` threads each run `ops_per_thread` operations of the mixed workload on their own
/// [`mixed::LIVE`] blocks (each with its own seed).
pub fn independent<A: GlobalAlloc + Sync>(a: &A, threads: usize, ops_per_thread: u64) -> Duration {
    timed_threads(threads, |t| {
        let mut slots = vec![(std::ptr::null_mut::<u8>(), 0usize); mixed::LIVE];
        mixed::churn(a, &mut slots, ops_per_thread, 0x313D + t as u64);
    })
}

/// `threads` threads each allocate [`BURST`] blocks of 64 B, write them, and free them, until each
/// has done `pairs_per_thread` alloc/free pairs.
pub fn hotspot<A: GlobalAlloc + Sync>(a: &A, threads: usize, pairs_per_thread: u64) -> Duration {
    let l = layout(64);
    timed_threads(threads, |t| {
        let mut held = [std::ptr::null_mut::<u8>(); BURST];
        for round in 0..pairs_per_thread / BURST as u64 {
            let tag = (round as usize ^ t) as u64;
            for p in held.iter_mut() {
                // SAFETY: 64-byte blocks; the write is in bounds.
                unsafe {
                    *p = alloc(a, l);
                    p.cast::<u64>().write(tag);
                }
            }
            black_box(&mut held);
            for &p in &held {
                // SAFETY: each block is live, written above, and freed once with its layout.
                unsafe {
                    assert_eq!(p.cast::<u64>().read(), tag, "hotspot block overwritten");
                    a.dealloc(p, l);
                }
            }
        }
    })
}
