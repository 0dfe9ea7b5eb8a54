//! `errno` around every allocation function, checked by a C program (`tests/c/errno.c`): a call
//! that succeeds leaves `errno` exactly as it found it, the process's very first call (the one
//! that starts the allocator) included, in normal and in fallback mode; a call that fails sets
//! what glibc sets.
//!
//! Each function is tried as the first call of a process of its own; the run that starts with
//! `malloc` then goes through every function and every path that makes system calls. Each run
//! on smalloc is preceded by one on glibc's malloc, which checks the test itself.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::ffi::OsStr;
use std::path::Path;

use common::{Build, Mode, build_c, run_c};

/// The functions a process may call first (see `errno.c`); the run starting with `malloc`
/// checks every function.
const FIRST_CALLS: &[&str] = &[
    "malloc",
    "calloc",
    "realloc",
    "reallocarray",
    "free",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "free_sized",
    "malloc_trim",
    "mallinfo",
    "mallinfo2",
    "malloc_stats",
    "mallopt",
    "malloc_info",
];

/// Runs the program built as `build` in `mode`, first calling `first`, and fails unless it
/// reports success.
fn errno_run(exe: &Path, build: Build, mode: Mode, first: &str) {
    let out = run_c(exe, build, mode, &[OsStr::new(first)]);
    assert!(
        out.status.success() && out.text() == format!("ok errno {first}\n"),
        "errno ({build:?} build, {mode:?} mode, first call {first}) failed:\n{}",
        out.describe()
    );
}

/// Every first call in each of `modes`, in that order.
fn every_first_call(build: Build, modes: &[Mode]) {
    let Some(exe) = build_c("errno.c", build) else {
        return;
    };
    for first in FIRST_CALLS {
        for &mode in modes {
            errno_run(&exe, build, mode, first);
        }
    }
}

#[test]
fn errno_kept_by_every_first_call_and_every_function() {
    every_first_call(Build::Standard, &[Mode::Glibc, Mode::Smalloc]);
}

/// Under `ulimit -v 4000000`, where smalloc's reservation is refused and glibc serves every
/// block through it.
#[test]
fn errno_kept_in_fallback_mode() {
    every_first_call(Build::Standard, &[Mode::FallbackReference, Mode::Fallback]);
}

/// The `smalloc_` names, from the shared library linked.
#[test]
fn errno_kept_by_the_prefixed_names_shared() {
    every_first_call(Build::PrefixedShared, &[Mode::Smalloc]);
}

/// The `smalloc_` names, from the static library linked.
#[test]
fn errno_kept_by_the_prefixed_names_static() {
    every_first_call(Build::PrefixedStatic, &[Mode::Smalloc]);
}

/// The `smalloc_` names, from a library without the standard names (glibc's malloc stays the
/// process's).
#[test]
fn errno_kept_by_the_prefixed_names_side_by_side() {
    every_first_call(Build::SideBySide, &[Mode::Smalloc]);
}
