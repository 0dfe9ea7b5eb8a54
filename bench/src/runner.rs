//! Runs the cases for every allocator, interleaved so that drift of a shared, noisy machine (other
//! processes, frequency changes, thermal state) hits all allocators alike.
//!
//! Order: for each round, for each case, each allocator runs the case once, with the allocator
//! order rotated by one every round (round 0: A B C, round 1: B C A, ...), so no allocator always
//! runs right after another's heap was built up. After the timed cases of a round come the
//! latency readings (in this process), then the footprint children, once per allocator per
//! round, then the memory cases' children, once per allocator per round for the first
//! [`Plan::memory_rounds`] rounds.

use std::io::Write;
use std::time::Instant;

use crate::allocators::AllocatorId;
use crate::clock::Clock;
use crate::footprint;
use crate::latency;
use crate::memory::{self, MemoryCase};
use crate::results::{MemoryResults, Results};
use crate::with_allocator;
use crate::workloads::{self, Case};

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Allocators, smalloc first.
    pub allocators: Vec<AllocatorId>,
    /// Timed cases.
    pub cases: Vec<Case>,
    /// Rounds (samples per case and allocator).
    pub rounds: usize,
    /// Timed alloc calls (and as many frees) per latency reading; 0: no latency report.
    pub latency_calls: u64,
    /// Whether to run the footprint children.
    pub footprint: bool,
    /// Memory cases to run in children, with their amounts.
    pub memory: Vec<(MemoryCase, u64)>,
    /// Rounds in which the memory cases run (the first ones; at most [`Plan::rounds`]).
    pub memory_rounds: usize,
    /// Work multiplier the cases were built with (for the report).
    pub scale: f64,
    /// Whether the slow cases are included (for the report).
    pub thorough: bool,
}

/// Runs one case once through one allocator; returns ns/op.
pub fn time_case(id: AllocatorId, case: &Case) -> f64 {
    let d = with_allocator!(id, |a| workloads::run(a, case));
    d.as_nanos() as f64 / case.ops as f64
}

/// Runs the plan, printing progress to stderr, and returns every sample.
pub fn run(plan: &Plan) -> Result<Results, String> {
    let n = plan.allocators.len();
    let mut samples = vec![vec![Vec::with_capacity(plan.rounds); n]; plan.cases.len()];
    let mut fp = vec![Vec::new(); if plan.footprint { n } else { 0 }];
    let mut lat = vec![Vec::new(); if plan.latency_calls > 0 { n } else { 0 }];
    let mut mem: Vec<MemoryResults> = plan
        .memory
        .iter()
        .map(|&(case, amount)| MemoryResults {
            case,
            amount,
            readings: vec![Vec::new(); n],
        })
        .collect();
    // Calibrated before the first round, so that its 50 ms fall in no measurement.
    let clock = (plan.latency_calls > 0).then(|| Clock::get().description());
    let start = Instant::now();
    for round in 0..plan.rounds {
        eprint!("round {}/{}:", round + 1, plan.rounds);
        for (c, case) in plan.cases.iter().enumerate() {
            for k in 0..n {
                let a = (k + round) % n;
                samples[c][a].push(time_case(plan.allocators[a], case));
            }
            eprint!(" {}", case.name);
            let _ = std::io::stderr().flush();
        }
        if plan.latency_calls > 0 {
            for k in 0..n {
                let a = (k + round) % n;
                let calls = plan.latency_calls;
                lat[a].push(with_allocator!(plan.allocators[a], |al| latency::measure(
                    al, calls
                )));
            }
            eprint!(" latency");
        }
        if plan.footprint {
            for k in 0..n {
                let a = (k + round) % n;
                fp[a].push(footprint::run_child(plan.allocators[a])?);
            }
            eprint!(" footprint");
        }
        if round < plan.memory_rounds {
            for m in mem.iter_mut() {
                for k in 0..n {
                    let a = (k + round) % n;
                    let reading = memory::run_child(plan.allocators[a], m.case, m.amount)?;
                    m.readings[a].push(reading);
                }
                eprint!(" {}", m.case.name());
                let _ = std::io::stderr().flush();
            }
        }
        eprintln!(" ({:.0} s)", start.elapsed().as_secs_f64());
    }
    Ok(Results {
        allocators: plan.allocators.clone(),
        cases: plan.cases.clone(),
        samples,
        footprint: fp,
        latency: lat,
        clock,
        latency_calls: plan.latency_calls,
        memory: mem,
        rounds: plan.rounds,
        scale: plan.scale,
        thorough: plan.thorough,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        wall_s: start.elapsed().as_secs_f64(),
    })
}
