//! smalloc under valgrind's memcheck, through the C ABI (`LD_PRELOAD=libsmalloc.so`): a correct C
//! program must draw no error, and a buggy one must have each of its bugs reported at its line,
//! as memcheck reports them with its own allocator. The Rust side (smalloc as the global
//! allocator) is `hellomalloc/tests/memcheck.rs`.
//!
//! memcheck replaces `malloc` and friends wherever a library without a soname exports them, which
//! includes `libsmalloc.so`; `--soname-synonyms=somalloc=nouserintercepts` (any name no library
//! has) limits that to the C library, so the preloaded smalloc serves the program and describes
//! its blocks to memcheck with client requests. Skipped without valgrind or gcc, unless
//! `SMALLOC_REQUIRE_ALL_PROGRAMS` is set.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Alloc, Outcome, c_source, compile, require, run, scratch};

/// memcheck's options for every run: errors (definite leaks included) make the exit status 99,
/// and stacks are deep enough to reach `main` through smalloc's frames in a debug build.
const MEMCHECK: &[&str] = &[
    "--soname-synonyms=somalloc=nouserintercepts",
    "--error-exitcode=99",
    "--leak-check=full",
    "--show-leak-kinds=all",
    "--errors-for-leak-kinds=definite",
    "--num-callers=40",
];

/// Compiles `tests/c/<name>.c` with `flags` into a scratch directory; `None` without gcc.
fn build(name: &str, flags: &[&str]) -> Option<PathBuf> {
    let gcc = require("gcc")?;
    let exe = scratch(&format!("memcheck-{name}")).join(name);
    let mut args: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    args.extend(["-g".into(), "-fno-builtin".into(), "-pthread".into()]);
    args.extend(["-o".into(), exe.display().to_string()]);
    args.push(c_source(&format!("{name}.c")).display().to_string());
    compile(&gcc, &args);
    Some(exe)
}

/// Runs `exe` under memcheck on `alloc`.
fn memcheck(valgrind: &Path, exe: &Path, alloc: Alloc) -> Outcome {
    let mut cmd = Command::new(valgrind);
    cmd.args(MEMCHECK).arg(exe);
    alloc.apply(&mut cmd);
    run(&mut cmd, None)
}

/// memcheck's reports in its log: the lines of each (without the `==pid==` prefix and the
/// indentation). A report starts with an unindented line and ends at an empty one.
fn reports(log: &str) -> Vec<Vec<String>> {
    let mut all = vec![];
    let mut cur: Vec<String> = vec![];
    for line in log.lines() {
        let Some((_, text)) = line.strip_prefix("==").and_then(|l| l.split_once("== ")) else {
            continue;
        };
        if (text.trim().is_empty() || !text.starts_with(' ')) && !cur.is_empty() {
            all.push(std::mem::take(&mut cur));
        }
        if !text.trim().is_empty() {
            cur.push(text.trim().to_string());
        }
    }
    if !cur.is_empty() {
        all.push(cur);
    }
    all
}

/// The line of `tests/c/<file>` that holds `marker`.
fn line_of(file: &str, marker: &str) -> usize {
    let src = fs::read_to_string(c_source(file)).expect("reading the C source");
    1 + src
        .lines()
        .position(|l| l.contains(marker))
        .unwrap_or_else(|| panic!("no {marker} in {file}"))
}

/// The report whose first line contains `headline` and whose own stack (the first frame in
/// `main`) is at `file:line`, if any.
fn find<'a>(
    reports: &'a [Vec<String>],
    headline: &str,
    file: &str,
    line: usize,
) -> Option<&'a Vec<String>> {
    let at = format!("main ({file}:{line})");
    reports.iter().find(|r| {
        r[0].contains(headline)
            && r.iter()
                .find(|l| l.contains(": main ("))
                .is_some_and(|l| l.ends_with(&at))
    })
}

/// Whether a report's first stack shows smalloc's code (its client request), not memcheck's own
/// allocator (`vgpreload_memcheck`).
fn by_smalloc(report: &[String]) -> bool {
    let first_stack: Vec<&String> = report
        .iter()
        .skip(1)
        .take_while(|l| l.starts_with("at ") || l.starts_with("by "))
        .collect();
    first_stack.iter().any(|l| l.contains("smalloc"))
        && !first_stack.iter().any(|l| l.contains("vgpreload_memcheck"))
}

#[test]
fn correct_c_program_has_no_error_on_smalloc() {
    let Some(valgrind) = require("valgrind") else {
        return;
    };
    let Some(exe) = build("memcheck_clean", &["-O2", "-Wall", "-Wextra", "-Werror"]) else {
        return;
    };
    let out = memcheck(&valgrind, &exe, Alloc::Smalloc);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && out.text().contains("clean: done"),
        "memcheck found errors, or the program failed:\n{}",
        out.describe()
    );
    assert!(log.contains("ERROR SUMMARY: 0 errors"), "{log}");
    // The block the program keeps to its end was smalloc's, described to memcheck by smalloc.
    let all = reports(&log);
    let kept = all
        .iter()
        .find(|r| r[0].contains("777 bytes in 1 blocks are still reachable"))
        .unwrap_or_else(|| panic!("no record of the block kept at exit:\n{log}"));
    assert!(
        by_smalloc(kept),
        "not allocated by smalloc:\n{}",
        kept.join("\n")
    );
}

/// The bugs of `memcheck_bugs.c`: the marker of each, and the start of memcheck's report of it.
const BUGS: &[(&str, &str)] = &[
    ("BUG(use-after-free)", "Invalid read of size 4"),
    ("BUG(double-free)", "Invalid free()"),
    (
        "BUG(uninitialised)",
        "Conditional jump or move depends on uninitialised value(s)",
    ),
    ("BUG(overflow)", "Invalid write of size 1"),
    ("BUG(leak)", "100 bytes in 1 blocks are definitely lost"),
];

/// Runs the buggy program on `alloc` and checks that each bug is reported at its line, and
/// nothing else; returns the reports.
fn check_bugs(alloc: Alloc) -> Option<Vec<Vec<String>>> {
    let valgrind = require("valgrind")?;
    // -O0: every bad access happens at the line it is written on.
    let exe = build("memcheck_bugs", &["-O0"])?;
    let out = memcheck(&valgrind, &exe, alloc);
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{}", out.describe());
    assert!(
        out.text()
            .contains("distinct blocks after the double free: yes"),
        "{}",
        out.describe()
    );
    let all = reports(&log);
    for (marker, headline) in BUGS {
        let line = line_of("memcheck_bugs.c", marker);
        assert!(
            find(&all, headline, "memcheck_bugs.c", line).is_some(),
            "{alloc:?}: no \"{headline}\" at memcheck_bugs.c:{line} ({marker}):\n{log}"
        );
    }
    let summary = format!("ERROR SUMMARY: {} errors", BUGS.len());
    assert!(
        log.contains(&summary),
        "{alloc:?}: expected {summary}:\n{log}"
    );
    Some(all)
}

#[test]
fn buggy_c_program_has_each_bug_reported_at_its_line_on_smalloc() {
    let Some(all) = check_bugs(Alloc::Smalloc) else {
        return;
    };
    // The blocks were smalloc's: the leaked one was described to memcheck by smalloc.
    let line = line_of("memcheck_bugs.c", "BUG(leak)");
    let leak = find(&all, "definitely lost", "memcheck_bugs.c", line).expect("checked above");
    assert!(
        by_smalloc(leak),
        "not allocated by smalloc:\n{}",
        leak.join("\n")
    );
}

#[test]
fn buggy_c_program_has_each_bug_reported_at_its_line_on_glibc() {
    // The same reports from memcheck's own allocator: the reference the smalloc run matches.
    check_bugs(Alloc::Glibc);
}
