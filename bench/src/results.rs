//! What a run measured: every sample of every (case, allocator) pair, and the footprint figures,
//! with the statistics the reports derive from them (median, spread, ratios, geometric means).
//! Nothing here is ever filled in except from a timed run or a child process's reading.

use crate::allocators::AllocatorId;
use crate::footprint::Footprint;
use crate::workloads::Case;

/// Median, minimum and maximum of a set of samples.
#[derive(Clone, Copy, Debug, PartialEq)]
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

    /// The time ratios of smalloc over allocator `a`, one per case that both completed.
    pub fn ratios(&self, a: usize) -> Vec<(usize, f64)> {
        (0..self.cases.len())
            .filter_map(|c| self.ratio(c, a).map(|r| (c, r)))
            .collect()
    }
}
