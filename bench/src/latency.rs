//! `latency`: the tail of single allocator calls, where the timed cases report only averages.
//!
//! The workload is [`mixed`]'s: [`mixed::LIVE`] slots, first all filled (untimed), then every
//! operation frees the block of a random slot and allocates a new one of a [`mixed_size`]
//! (written, and checked before it is freed, outside the timed calls). Each `dealloc` and each
//! `alloc` is timed on its own with the [`Clock`] (two readings around the one call; nothing is
//! subtracted; what a pair of readings costs is measured right before the run). The ticks go to
//! buffers allocated and written before the loop; the percentiles are taken over all calls of
//! the run.
//!
//! [`mixed_size`]: crate::workloads::common::mixed_size

use std::alloc::GlobalAlloc;

use crate::clock::Clock;
use crate::rng::Rng;
use crate::workloads::common::{alloc, layout, mixed_size, touch};
use crate::workloads::mixed::{self, Call, Probe};

/// The percentiles reported, as fractions, with their labels.
pub const PERCENTILES: [(f64, &str); 4] =
    [(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9"), (1.0, "max")];

/// Index of p99.9 in [`PERCENTILES`] (the summary's figure).
pub const P999: usize = 2;

/// One run's figures: [`PERCENTILES`] of the alloc and of the free calls, ns.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latency {
    /// Percentiles of the `alloc` calls, ns.
    pub alloc_ns: [f64; 4],
    /// Percentiles of the `dealloc` calls, ns.
    pub free_ns: [f64; 4],
    /// What a pair of clock readings cost right before this run
    /// ([`Clock::overhead_ns`]), ns: included in every figure above.
    pub clock_overhead_ns: f64,
}

/// A [`Probe`] that times every call with the [`Clock`] into preallocated buffers.
struct Recorder {
    clock: &'static Clock,
    alloc: Vec<u64>,
    free: Vec<u64>,
    allocs: usize,
    frees: usize,
}

impl Probe for Recorder {
    #[inline(always)]
    fn call<R>(&mut self, call: Call, f: impl FnOnce() -> R) -> R {
        let t0 = self.clock.now();
        let r = f();
        let t = self.clock.now().wrapping_sub(t0);
        match call {
            Call::Alloc => {
                self.alloc[self.allocs] = t;
                self.allocs += 1;
            }
            Call::Free => {
                self.free[self.frees] = t;
                self.frees += 1;
            }
        }
        r
    }
}

/// The `q`-quantile of `sorted` by the nearest-rank method (`q` = 1: the largest value).
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// [`PERCENTILES`] of `ticks` (sorted in place), in ns.
fn summarize(clock: &Clock, ticks: &mut [u64]) -> [f64; 4] {
    ticks.sort_unstable();
    PERCENTILES.map(|(q, _)| clock.ns(percentile(ticks, q)))
}

/// Times `calls` allocs and as many frees through `a` and returns their percentiles.
pub fn measure<A: GlobalAlloc>(a: &A, calls: u64) -> Latency {
    let clock = Clock::get();
    let clock_overhead_ns = clock.overhead_ns();
    let n = calls as usize;
    // Written once here so that no page of the buffers faults in during the loop.
    let mut rec = Recorder {
        clock,
        alloc: vec![u64::MAX; n],
        free: vec![u64::MAX; n],
        allocs: 0,
        frees: 0,
    };
    let mut rng = Rng::new(0x1A7E);
    let mut slots = vec![(std::ptr::null_mut::<u8>(), 0usize); mixed::LIVE];
    for (i, slot) in slots.iter_mut().enumerate() {
        let size = mixed_size(&mut rng);
        // SAFETY: non-zero size; `touch` stays inside the block; the tag is the slot's index,
        // as `mixed::steps` expects.
        unsafe {
            let p = alloc(a, layout(size));
            touch(p, size, i as u8);
            *slot = (p, size);
        }
    }
    mixed::steps(a, &mut slots, calls, &mut rng, &mut rec);
    mixed::free_all(a, &mut slots);
    Latency {
        alloc_ns: summarize(clock, &mut rec.alloc[..rec.allocs]),
        free_ns: summarize(clock, &mut rec.free[..rec.frees]),
        clock_overhead_ns,
    }
}
