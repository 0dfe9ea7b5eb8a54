//! Runs the cases for every allocator, interleaved so that drift of a shared, noisy machine (other
//! processes, frequency changes, thermal state) hits all allocators alike.
//!
//! Order: for each round, for each case, each allocator runs the case once, with the allocator
//! order rotated by one every round (round 0: A B C, round 1: B C A, ...), so no allocator always
//! runs right after another's heap was built up. Footprint children run once per allocator per
//! round, after the timed cases of that round.

use std::io::Write;
use std::time::Instant;

use crate::allocators::AllocatorId;
use crate::footprint;
use crate::results::Results;
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
    /// Whether to run the footprint children.
    pub footprint: bool,
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
        if plan.footprint {
            for k in 0..n {
                let a = (k + round) % n;
                fp[a].push(footprint::run_child(plan.allocators[a])?);
            }
            eprint!(" footprint");
        }
        eprintln!(" ({:.0} s)", start.elapsed().as_secs_f64());
    }
    Ok(Results {
        allocators: plan.allocators.clone(),
        cases: plan.cases.clone(),
        samples,
        footprint: fp,
        rounds: plan.rounds,
        scale: plan.scale,
        thorough: plan.thorough,
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        wall_s: start.elapsed().as_secs_f64(),
    })
}
