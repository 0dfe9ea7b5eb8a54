//! Blocks through their whole life in a process whose address space changed before its first
//! allocation, checked by a C program (`tests/c/lifetime.c`): regions mapped and unmapped and
//! threads with 64 MiB stacks started and joined before the first `malloc`, then multi-GiB and
//! ordinary blocks allocated, measured, resized and freed in rounds, VmSize and VmRSS coming back
//! after each round.
//!
//! Whatever the allocator saw at its first use, a block that later lands on those addresses (one
//! of smalloc's direct mappings, or one of glibc's mmapped blocks when smalloc runs in fallback
//! mode) is the program's like any other: measured at its size, resized, and given back on free.
//!
//! Each run on smalloc is preceded by one on glibc's malloc, which checks the test itself.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::path::Path;

use common::{Build, Mode, build_c, run_c};

/// Runs the program built as `build` in `mode` and fails unless it reports success.
fn lifetime(exe: &Path, build: Build, mode: Mode) {
    let out = run_c(exe, build, mode, &[]);
    assert!(
        out.status.success() && out.text() == "ok lifetime\n",
        "lifetime ({build:?} build) in {mode:?} mode failed:\n{}",
        out.describe()
    );
    eprintln!("{build:?} build in {mode:?} mode: {:.2?}", out.elapsed);
}

/// 3 GiB blocks (smalloc's direct mappings) and blocks of 8 bytes to 32 MiB.
#[test]
fn blocks_after_early_mappings_and_threads() {
    let Some(exe) = build_c("lifetime.c", Build::Standard) else {
        return;
    };
    lifetime(&exe, Build::Standard, Mode::Glibc);
    lifetime(&exe, Build::Standard, Mode::Smalloc);
}

/// Under `ulimit -v 4000000` smalloc's reservation is refused and glibc serves every block
/// through it: 256 MiB blocks, and blocks of 8 bytes to 32 MiB (glibc maps those of 128 KiB and
/// more by themselves).
#[test]
fn blocks_after_early_mappings_and_threads_in_fallback_mode() {
    let Some(exe) = build_c("lifetime.c", Build::Standard) else {
        return;
    };
    lifetime(&exe, Build::Standard, Mode::FallbackReference);
    lifetime(&exe, Build::Standard, Mode::Fallback);
}

/// The `smalloc_` names, from the shared library linked (its `malloc` is the process's, so
/// smalloc starts at `pthread_create`'s first allocation, as when preloaded).
#[test]
fn blocks_after_early_mappings_prefixed_shared() {
    if let Some(exe) = build_c("lifetime.c", Build::PrefixedShared) {
        lifetime(&exe, Build::PrefixedShared, Mode::Smalloc);
    }
}

/// The `smalloc_` names, from the static library linked.
#[test]
fn blocks_after_early_mappings_prefixed_static() {
    if let Some(exe) = build_c("lifetime.c", Build::PrefixedStatic) {
        lifetime(&exe, Build::PrefixedStatic, Mode::Smalloc);
    }
}

/// The `smalloc_` names, from a library without the standard names: smalloc side by side with
/// glibc's malloc, which serves the threads.
#[test]
fn blocks_after_early_mappings_side_by_side() {
    if let Some(exe) = build_c("lifetime.c", Build::SideBySide) {
        lifetime(&exe, Build::SideBySide, Mode::Smalloc);
    }
}
