//! `ring-N`: N threads in a ring, each allocating blocks for the next one and freeing those of
//! the previous one. Every thread is at once a producer and a consumer, so every thread's
//! allocator state sees remote frees arrive while it allocates: the pattern of pipelines and
//! message-passing programs.
//!
//! Thread `t` sends through ring `t` to thread `t + 1` (modulo N) and receives through ring
//! `t - 1`. It alternates between sending a burst of up to [`BURST`] new blocks (as many as its
//! outgoing ring has room for) and receiving, checking and freeing every block that has arrived,
//! and waits only when it can do neither: with more threads than CPUs, a thread whose neighbour
//! is not running still has work for its time slice. The rings, the blocks (16-256 B, carrying
//! their sequence number and size) and the CPU pinning are those of
//! [`cross_thread`](super::cross_thread).

use std::alloc::GlobalAlloc;
use std::time::Duration;

use super::cross_thread::{Ring, free_handed, new_handed, pin_to_cpu, wait_until};
use super::multi_thread::timed_threads;
use crate::rng::Rng;

/// Threads of the ring case.
pub const THREADS: usize = 4;

/// Most blocks a thread sends before it turns to receiving.
pub const BURST: u64 = 64;

/// Runs `threads` threads in a ring, each sending `blocks_per_thread` blocks to the next (and so
/// receiving as many from the previous one); returns the span from the first thread's start to
/// the last one's end.
pub fn run<A: GlobalAlloc + Sync>(a: &A, threads: usize, blocks_per_thread: u64) -> Duration {
    let rings: Vec<Ring> = (0..threads).map(|_| Ring::new()).collect();
    let rings = &rings;
    let n = blocks_per_thread;
    timed_threads(threads, |t| {
        // Neighbours on different CPUs (where there are two or more), so blocks cross cores.
        pin_to_cpu(t);
        let out = &rings[t];
        let inbox = &rings[(t + threads - 1) % threads];
        let mut rng = Rng::new(0x21A6 + t as u64);
        let (mut sent, mut received) = (0, 0);
        while sent < n || received < n {
            let burst_end = (sent + BURST).min(n);
            while sent < burst_end && out.can_send(sent) {
                out.put(sent, new_handed(a, &mut rng, sent));
                sent += 1;
            }
            while let Some(p) = inbox.try_receive(received) {
                // SAFETY: the block came through the ring from the previous thread and is freed
                // once, here.
                unsafe { free_handed(a, p, received) };
                received += 1;
            }
            wait_until(|| {
                (sent < n && out.can_send(sent))
                    || (received < n && inbox.has(received))
                    || (sent == n && received == n)
            });
        }
    })
}
