//! A clock cheap enough to time single allocator calls (the `latency` report).
//!
//! On x86_64 with an invariant time-stamp counter (`constant_tsc` in `/proc/cpuinfo`) it reads
//! the TSC, fenced with `lfence` on both sides so that the calls being timed neither start before
//! the first reading nor end after the second; its frequency is calibrated once against
//! [`Instant`]. Elsewhere it falls back to [`Instant`] (nanoseconds since the clock was set up).
//!
//! Nothing is subtracted from a timed interval: what a pair of readings costs is measured, as the
//! median of back-to-back readings ([`Clock::overhead_ns`]), and reported next to the figures.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where the ticks come from.
#[derive(Clone, Copy, Debug)]
enum Source {
    /// The x86_64 time-stamp counter.
    #[cfg(target_arch = "x86_64")]
    Tsc,
    /// `Instant`, counted in nanoseconds from this base.
    Instant(Instant),
}

/// The clock: its source and its calibration.
#[derive(Clone, Debug)]
pub struct Clock {
    source: Source,
    /// Nanoseconds per tick (1 for the `Instant` fallback).
    ns_per_tick: f64,
}

/// How long the TSC is calibrated against `Instant`: long enough that the two readings of
/// `Instant` at its ends (tens of ns) are noise.
const CALIBRATION: Duration = Duration::from_millis(50);

/// Back-to-back reading pairs the overhead is the median of.
pub const OVERHEAD_PAIRS: usize = 10_001;

/// Whether the CPU says its time-stamp counter ticks at a constant rate whatever the core's
/// frequency (otherwise its ticks are not time).
#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    devutils::procfs::cpu_has_flag("constant_tsc")
}

/// Reads the time-stamp counter between two `lfence`s: earlier instructions have completed
/// before it is read, later ones start after.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn fenced_rdtsc() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: lfence (SSE2) and rdtsc are part of every x86_64 CPU; neither touches memory.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

impl Clock {
    /// The process's clock, set up (and calibrated) on first use.
    pub fn get() -> &'static Clock {
        static CLOCK: OnceLock<Clock> = OnceLock::new();
        CLOCK.get_or_init(Clock::new)
    }

    fn new() -> Clock {
        #[cfg(target_arch = "x86_64")]
        let (source, ns_per_tick) = if invariant_tsc() {
            let (i0, t0) = (Instant::now(), fenced_rdtsc());
            std::thread::sleep(CALIBRATION);
            let (i1, t1) = (Instant::now(), fenced_rdtsc());
            let ticks = t1.wrapping_sub(t0).max(1);
            (Source::Tsc, (i1 - i0).as_nanos() as f64 / ticks as f64)
        } else {
            (Source::Instant(Instant::now()), 1.0)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let (source, ns_per_tick) = (Source::Instant(Instant::now()), 1.0);
        Clock {
            source,
            ns_per_tick,
        }
    }

    /// The current reading, in ticks.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match self.source {
            #[cfg(target_arch = "x86_64")]
            Source::Tsc => fenced_rdtsc(),
            Source::Instant(base) => base.elapsed().as_nanos() as u64,
        }
    }

    /// `ticks` in nanoseconds.
    pub fn ns(&self, ticks: u64) -> f64 {
        ticks as f64 * self.ns_per_tick
    }

    /// What one timed interval costs with nothing in it, measured now: the median over
    /// [`OVERHEAD_PAIRS`] pairs of back-to-back readings, ns. (On a shared machine it varies
    /// with the load, so the latency report measures it with every reading.)
    pub fn overhead_ns(&self) -> f64 {
        let mut gaps: Vec<u64> = (0..OVERHEAD_PAIRS)
            .map(|_| {
                let t0 = self.now();
                let t1 = self.now();
                t1.wrapping_sub(t0)
            })
            .collect();
        gaps.sort_unstable();
        self.ns(gaps[gaps.len() / 2])
    }

    /// What the clock is, for the report's header.
    pub fn description(&self) -> String {
        match self.source {
            #[cfg(target_arch = "x86_64")]
            Source::Tsc => format!(
                "rdtsc between lfences, {:.3} GHz (calibrated against Instant)",
                1.0 / self.ns_per_tick
            ),
            Source::Instant(_) => "std::time::Instant".into(),
        }
    }
}
