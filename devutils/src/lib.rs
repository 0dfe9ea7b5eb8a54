//! Helpers shared by smalloc tests and benchmarks.
