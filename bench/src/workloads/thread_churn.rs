//! `thread-churn`: threads that live briefly, one after another, as in a program that spawns a
//! thread per task. What it tests is an allocator's thread start and exit (setting up and tearing
//! down its per-thread state) and how it hands a dead thread's memory on.
//!
//! [`LANES`] threads run at a time. In each lane, threads run one after another: a thread takes
//! over the [`mixed::LIVE`] slots its predecessor left behind, frees the blocks of the even slots
//! (remote frees: another thread allocated them), keeps the odd ones in its working set, runs
//! [`THREAD_OPS`] operations of the mixed workload ([`mixed::steps`]: random frees, new blocks of
//! the mixed sizes, written and checked), and exits, leaving its slots to the next thread. The
//! lane frees what its last thread left.

use std::alloc::GlobalAlloc;
use std::time::Duration;

use super::common::{check, layout};
use super::mixed::{self, Untimed};
use super::multi_thread::{on_new_thread, timed_threads};
use crate::rng::Rng;

/// Threads alive at once.
pub const LANES: usize = 4;
/// Mixed operations each thread runs before it exits.
pub const THREAD_OPS: u64 = 2_000;

/// A thread's working set, handed to its successor.
struct Slots(Vec<(*mut u8, usize)>);

// SAFETY: the blocks are plain memory from a `Sync` allocator; whoever holds the `Slots` is their
// only user, and it moves between threads whole.
unsafe impl Send for Slots {}

/// Runs `threads` threads in all (a multiple of [`LANES`]), [`THREAD_OPS`] operations each;
/// returns the span from the first lane's start to the last lane's end.
pub fn run<A: GlobalAlloc + Sync>(a: &A, threads: usize) -> Duration {
    let per_lane = (threads / LANES).max(1);
    timed_threads(LANES, |lane| {
        let mut slots = Slots(vec![(std::ptr::null_mut(), 0); mixed::LIVE]);
        for k in 0..per_lane {
            let seed = 0x7C4A + (lane * per_lane + k) as u64;
            slots = on_new_thread(move || {
                let mut slots = slots;
                for (i, slot) in slots.0.iter_mut().enumerate().step_by(2) {
                    if !slot.0.is_null() {
                        // SAFETY: the predecessor's live block, written with its slot index as
                        // tag; freed once, with its own layout.
                        unsafe {
                            check(slot.0, slot.1, i as u8);
                            a.dealloc(slot.0, layout(slot.1));
                        }
                        *slot = (std::ptr::null_mut(), 0);
                    }
                }
                mixed::steps(
                    a,
                    &mut slots.0,
                    THREAD_OPS,
                    &mut Rng::new(seed),
                    &mut Untimed,
                );
                slots
            });
        }
        mixed::free_all(a, &mut slots.0);
    })
}
