//! What a run measured: every sample of every (case, allocator) pair, and the footprint figures,
//! with the statistics the reports derive from them (median, spread, ratios, geometric means).
//! Nothing here is ever filled in except from a timed run or a child process's reading.

use serde::Serialize;

use crate::allocators::AllocatorId;
use crate::footprint::Footprint;
use crate::latency::{Latency, P999, PERCENTILES};
use crate::memory::MemoryCase;
use crate::workloads::Case;

/// Median, minimum and maximum of a set of samples (in JSON: `{"median", "min", "max"}`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stats {
    /// The median (mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
}

impl Stats {
    /// Statistics of `samples`, or `None` if there are none.
    pub fn of(samples: &[f64]) -> Option<Stats> {
        if samples.is_empty() {
            return None;
        }
        let mut v = samples.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Stats {
            median,
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

/// Geometric mean of positive ratios, or `None` for an empty list.
pub fn geomean(ratios: &[f64]) -> Option<f64> {
    if ratios.is_empty() {
        None
    } else {
        Some((ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp())
    }
}

/// Everything one invocation measured.
#[derive(Clone, Debug)]
pub struct Results {
    /// The allocators, smalloc first.
    pub allocators: Vec<AllocatorId>,
    /// The timed cases, in report order.
    pub cases: Vec<Case>,
    /// `samples[case][allocator]`: ns/op of each round.
    pub samples: Vec<Vec<Vec<f64>>>,
    /// `footprint[allocator]`: one reading per round (empty if footprint was skipped).
    pub footprint: Vec<Vec<Footprint>>,
    /// `latency[allocator]`: one reading per round (empty if latency was not measured).
    pub latency: Vec<Vec<Latency>>,
    /// The latency clock's description, if latency was measured.
    pub clock: Option<String>,
    /// Timed alloc calls (and as many frees) per latency reading.
    pub latency_calls: u64,
    /// The memory cases run, in report order.
    pub memory: Vec<MemoryResults>,
    /// Rounds run.
    pub rounds: usize,
    /// Work multiplier the cases were built with.
    pub scale: f64,
    /// Whether the slow cases were included.
    pub thorough: bool,
    /// CPUs available to the process.
    pub cpus: usize,
    /// Wall time of the whole measurement, seconds.
    pub wall_s: f64,
}

/// The readings of one memory case.
#[derive(Clone, Debug)]
pub struct MemoryResults {
    /// The case.
    pub case: MemoryCase,
    /// Its amount of work (see [`MemoryCase::amount`]).
    pub amount: u64,
    /// `readings[allocator][round][figure]`, figures as in [`MemoryCase::figures`], raw units.
    pub readings: Vec<Vec<Vec<Option<u64>>>>,
}

impl MemoryResults {
    /// Statistics of figure `f` for allocator `a`, in the unit it is shown in (`None` if the
    /// figure does not apply to the allocator, or was not measured).
    pub fn stats(&self, a: usize, f: usize) -> Option<Stats> {
        let unit = self.case.figures()[f].unit;
        let v: Vec<f64> = self
            .readings
            .get(a)?
            .iter()
            .filter_map(|round| round.get(f).copied().flatten())
            .map(|raw| unit.show(raw))
            .collect();
        Stats::of(&v)
    }

    /// smalloc's median of figure `f` over allocator `a`'s (`smalloc` is allocator 0): below 1,
    /// smalloc uses less.
    pub fn ratio(&self, a: usize, f: usize) -> Option<f64> {
        Some(self.stats(0, f)?.median / self.stats(a, f)?.median)
    }
}

/// Footprint statistics of one allocator, in MiB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FootprintStats {
    /// Peak resident set (`VmHWM`).
    pub peak: Stats,
    /// Resident set after everything was freed (`VmRSS`).
    pub after_free: Stats,
    /// Resident set before the workload allocated anything.
    pub baseline: Stats,
    /// Bytes the workload had live at its peak, MiB (the same for every allocator).
    pub requested_peak: f64,
}

impl Results {
    /// Index of `id` in [`Results::allocators`].
    pub fn index_of(&self, id: AllocatorId) -> Option<usize> {
        self.allocators.iter().position(|&a| a == id)
    }

    /// The allocators other than smalloc.
    pub fn peers(&self) -> impl Iterator<Item = (usize, AllocatorId)> + '_ {
        self.allocators
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, a)| a != AllocatorId::Smalloc)
    }

    /// Statistics of case `c` for allocator `a` (indices).
    pub fn stats(&self, c: usize, a: usize) -> Option<Stats> {
        Stats::of(&self.samples[c][a])
    }

    /// smalloc's median time over allocator `a`'s for case `c`: below 1, smalloc is faster.
    pub fn ratio(&self, c: usize, a: usize) -> Option<f64> {
        let s = self.index_of(AllocatorId::Smalloc)?;
        Some(self.stats(c, s)?.median / self.stats(c, a)?.median)
    }

    /// Footprint statistics of allocator `a`, if footprint was measured.
    pub fn footprint_stats(&self, a: usize) -> Option<FootprintStats> {
        let f = self.footprint.get(a)?;
        let mib = |kib: u64| kib as f64 / 1024.0;
        Some(FootprintStats {
            peak: Stats::of(&f.iter().map(|x| mib(x.peak_kib)).collect::<Vec<_>>())?,
            after_free: Stats::of(&f.iter().map(|x| mib(x.after_free_kib)).collect::<Vec<_>>())?,
            baseline: Stats::of(&f.iter().map(|x| mib(x.baseline_kib)).collect::<Vec<_>>())?,
            requested_peak: f.first()?.requested_peak as f64 / (1024.0 * 1024.0),
        })
    }

    /// smalloc's median peak RSS and RSS after free over allocator `a`'s: below 1, smalloc uses
    /// less memory.
    pub fn footprint_ratios(&self, a: usize) -> Option<(f64, f64)> {
        let s = self.footprint_stats(self.index_of(AllocatorId::Smalloc)?)?;
        let p = self.footprint_stats(a)?;
        Some((
            s.peak.median / p.peak.median,
            s.after_free.median / p.after_free.median,
        ))
    }

    /// Statistics over the rounds of latency figure `k` of allocator `a`, ns: `k` below
    /// `PERCENTILES.len()` are the alloc [`PERCENTILES`], the next ones the free ones.
    pub fn latency_stats(&self, a: usize, k: usize) -> Option<Stats> {
        Stats::of(&self.latency_samples(a, k)?)
    }

    /// The per-round readings of latency figure `k` of allocator `a`, ns (see
    /// [`Self::latency_stats`] for `k`).
    pub fn latency_samples(&self, a: usize, k: usize) -> Option<Vec<f64>> {
        let n = PERCENTILES.len();
        Some(
            self.latency
                .get(a)?
                .iter()
                .map(|l| {
                    if k < n {
                        l.alloc_ns[k]
                    } else {
                        l.free_ns[k - n]
                    }
                })
                .collect(),
        )
    }

    /// Statistics of the clock overhead measured with every latency reading, ns, over all
    /// allocators and rounds.
    pub fn clock_overhead(&self) -> Option<Stats> {
        let v: Vec<f64> = self
            .latency
            .iter()
            .flatten()
            .map(|l| l.clock_overhead_ns)
            .collect();
        Stats::of(&v)
    }

    /// smalloc's median of latency figure `k` over allocator `a`'s: below 1, smalloc is faster.
    pub fn latency_ratio(&self, a: usize, k: usize) -> Option<f64> {
        let s = self.index_of(AllocatorId::Smalloc)?;
        Some(self.latency_stats(s, k)?.median / self.latency_stats(a, k)?.median)
    }

    /// Headers of the memory and tail-latency summary: one per memory figure with a ratio, then
    /// the alloc and free p99.9 (if latency was measured).
    pub fn side_labels(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .memory
            .iter()
            .flat_map(|m| m.case.figures().iter().filter_map(|f| f.ratio))
            .map(String::from)
            .collect();
        if !self.latency.is_empty() {
            v.extend(["alloc p99.9".to_string(), "free p99.9".to_string()]);
        }
        v
    }

    /// smalloc / allocator `a` for each of [`Results::side_labels`], in order.
    pub fn side_ratios(&self, a: usize) -> Vec<Option<f64>> {
        let mut v: Vec<Option<f64>> = self
            .memory
            .iter()
            .flat_map(|m| {
                (0..m.case.figures().len())
                    .filter(|&f| m.case.figures()[f].ratio.is_some())
                    .map(move |f| m.ratio(a, f))
            })
            .collect();
        if !self.latency.is_empty() {
            v.extend([
                self.latency_ratio(a, P999),
                self.latency_ratio(a, PERCENTILES.len() + P999),
            ]);
        }
        v
    }

    /// The time ratios of smalloc over allocator `a`, one per case that both completed.
    pub fn ratios(&self, a: usize) -> Vec<(usize, f64)> {
        (0..self.cases.len())
            .filter_map(|c| self.ratio(c, a).map(|r| (c, r)))
            .collect()
    }
}
