//! # bench: smalloc side by side with the allocators a user would pick instead
//!
//! The `bench` binary runs a suite of named workloads ([`workloads`]) through smalloc and, with
//! `--compare`, through every peer ([`allocators`]) in the same process, interleaved round by
//! round ([`runner`]), and reports medians, spreads and smalloc / peer ratios ([`report`],
//! [`plot`], and [`markdown`] for README.md). The tail latency of single calls is timed with a
//! low-overhead clock ([`latency`], [`clock`]). Memory footprint and the other resident-set
//! cases are measured in a child process per allocator ([`footprint`], [`memory`]).
//!
//! Every allocator is called directly through its own `static` [`GlobalAlloc`](std::alloc::GlobalAlloc)
//! instance; the process's global allocator stays the system allocator, so the harness's own
//! bookkeeping never lands in a heap being measured.
//!
//! See `bench/README.md` for how to run it and what each workload means.

#![deny(missing_docs)]

pub mod allocators;
pub mod cli;
pub mod clock;
pub mod footprint;
pub mod latency;
pub mod markdown;
pub mod memory;
pub mod plot;
pub mod report;
pub mod results;
pub mod rng;
pub mod runner;
pub mod workloads;

#[cfg(test)]
mod tests;
