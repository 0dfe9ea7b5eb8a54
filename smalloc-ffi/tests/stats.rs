//! The allocator's own figures and controls, `malloc_trim`, `mallinfo2`, `mallinfo`,
//! `malloc_info` and `malloc_stats` (standard names, and the `smalloc_` ones), checked by a C
//! program (`tests/c/stats.c`) against what it allocated and against the resident set the
//! kernel reports; `malloc_info`'s XML is parsed with python3.
//!
//! Each run on smalloc is preceded by one on glibc's malloc, which checks the test itself (glibc
//! has all these functions). In fallback mode they may be glibc's.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use common::{Alloc, Build, Mode, Outcome, build_c, require, run, run_c, scratch};

/// Every mode, each preceded by its reference on glibc.
const ALL_MODES: &[Mode] = &[
    Mode::Glibc,
    Mode::Smalloc,
    Mode::FallbackReference,
    Mode::Fallback,
];

/// Runs one section of the program built as `build` in `mode` and fails unless its last line of
/// output is `ok SECTION`. Returns what it printed.
fn section(exe: &Path, build: Build, mode: Mode, name: &str, arg: Option<&Path>) -> Outcome {
    let mut args = vec![OsStr::new(name)];
    if let Some(arg) = arg {
        args.push(arg.as_os_str());
    }
    let out = run_c(exe, build, mode, &args);
    assert!(
        out.status.success() && out.text().lines().last() == Some(&format!("ok {name}")),
        "section `{name}` ({build:?} build) in {mode:?} mode failed:\n{}",
        out.describe()
    );
    out
}

/// malloc_trim(0) returns 1 and lowers VmRSS by at least 8 MiB after 64 MiB of 1-4 KiB blocks
/// were touched and freed (see `TRIM_MARGIN` in `stats.c`).
fn trim(exe: &Path, build: Build, mode: Mode) {
    section(exe, build, mode, "trim", None);
}

/// The figures of mallinfo2 and mallinfo (see `stats.c` for what is exact and what is within
/// 10 %).
fn mallinfo(exe: &Path, build: Build, mode: Mode) {
    section(exe, build, mode, "mallinfo", None);
}

/// Everything python3 finds in an XML file: the root's tag, whether it has a version, and every
/// whole number in an attribute or a text, as lines `root TAG`, `version yes|no`, `number N`.
const XML_DUMP: &str = "\
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print('root', root.tag)
print('version', 'yes' if root.get('version') else 'no')
for el in root.iter():
    for value in list(el.attrib.values()) + [el.text or '', el.tail or '']:
        for word in value.split():
            if word.isdigit():
                print('number', word)
";

/// malloc_info writes XML under a `<malloc version=...>` root that carries the figures of
/// mallinfo2 at the same moment: in smalloc mode uordblks, fordblks, arena and hblkhd; glibc's
/// (also in fallback mode) carries arena (`<system type="current">`) and hblkhd (`<total
/// type="mmap">`).
fn info(exe: &Path, build: Build, mode: Mode, python: &Path) {
    let dir = scratch(&format!("malloc-info-{build:?}-{mode:?}"));
    let xml = dir.join("info.xml");
    let out = section(exe, build, mode, "info", Some(&xml));
    let figure = |name: &str| -> String {
        out.text()
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in the output:\n{}", out.describe()))
    };
    let parsed = run(Command::new(python).args(["-c", XML_DUMP]).arg(&xml), None);
    let text = std::fs::read_to_string(&xml).unwrap_or_default();
    assert!(
        parsed.status.success(),
        "malloc_info's output ({build:?} build, {mode:?} mode) is not well-formed XML:\n{text}\n{}",
        parsed.describe()
    );
    let dump = parsed.text();
    assert!(
        dump.lines().any(|l| l == "root malloc") && dump.lines().any(|l| l == "version yes"),
        "malloc_info's XML ({build:?} build, {mode:?} mode) has no <malloc version=...> root:\n\
         {text}"
    );
    let expected: &[&str] = if mode == Mode::Smalloc {
        &["uordblks", "fordblks", "arena", "hblkhd"]
    } else {
        &["arena", "hblkhd"]
    };
    for name in expected {
        let value = figure(name);
        assert!(
            dump.lines().any(|l| l == format!("number {value}")),
            "malloc_info's XML ({build:?} build, {mode:?} mode) does not carry mallinfo2's \
             {name} ({value}):\n{text}"
        );
    }
}

/// malloc_stats writes on stderr lines with "system bytes" and "in use bytes", the last of
/// which counts at least the 16 MiB the program holds in live blocks.
fn stats(exe: &Path, build: Build, mode: Mode) {
    let out = section(exe, build, mode, "stats", None);
    let live: u64 = out
        .text()
        .lines()
        .find_map(|l| l.strip_prefix("live "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no live bytes in the output:\n{}", out.describe()));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("system bytes"),
        "malloc_stats ({build:?} build, {mode:?} mode) wrote no \"system bytes\":\n{err}"
    );
    // The last such line is the total (glibc writes one per arena, then the total).
    let in_use = err
        .lines()
        .rfind(|l| l.contains("in use bytes"))
        .and_then(|l| {
            l.split(|c: char| !c.is_ascii_digit())
                .rfind(|w| !w.is_empty())
        })
        .and_then(|w| w.parse::<u64>().ok());
    assert!(
        in_use.is_some_and(|n| n >= live),
        "malloc_stats ({build:?} build, {mode:?} mode) says {in_use:?} in use bytes with {live} \
         bytes live:\n{err}"
    );
}

#[test]
fn malloc_trim_gives_freed_memory_back() {
    let Some(exe) = build_c("stats.c", Build::Standard) else {
        return;
    };
    for &mode in ALL_MODES {
        trim(&exe, Build::Standard, mode);
    }
}

#[test]
fn mallinfo_counts_live_mapped_and_resident_bytes() {
    let Some(exe) = build_c("stats.c", Build::Standard) else {
        return;
    };
    for &mode in ALL_MODES {
        mallinfo(&exe, Build::Standard, mode);
    }
}

#[test]
fn malloc_info_writes_xml_with_the_same_figures() {
    let Some(python) = require("python3") else {
        return;
    };
    let Some(exe) = build_c("stats.c", Build::Standard) else {
        return;
    };
    for &mode in ALL_MODES {
        info(&exe, Build::Standard, mode, &python);
    }
}

#[test]
fn malloc_stats_writes_a_summary_on_stderr() {
    let Some(exe) = build_c("stats.c", Build::Standard) else {
        return;
    };
    for &mode in ALL_MODES {
        stats(&exe, Build::Standard, mode);
    }
}

/// Every section with the `smalloc_` names, in a program built as `build`.
fn prefixed(build: Build) {
    let Some(python) = require("python3") else {
        return;
    };
    let Some(exe) = build_c("stats.c", build) else {
        return;
    };
    trim(&exe, build, Mode::Smalloc);
    mallinfo(&exe, build, Mode::Smalloc);
    info(&exe, build, Mode::Smalloc, &python);
    stats(&exe, build, Mode::Smalloc);
}

/// The `smalloc_` names, from the shared library linked.
#[test]
fn prefixed_names_shared() {
    prefixed(Build::PrefixedShared);
}

/// The `smalloc_` names, from the static library linked.
#[test]
fn prefixed_names_static() {
    prefixed(Build::PrefixedStatic);
}

/// The `smalloc_` names, from a library without the standard names: the figures are smalloc's
/// alone, glibc's malloc serving the rest of the process.
#[test]
fn prefixed_names_side_by_side() {
    prefixed(Build::SideBySide);
}

#[test]
fn show_stats_prints_at_exit_under_ld_preload() {
    let Some(python) = require("python3") else {
        return;
    };
    let program = "x = [str(i) for i in range(100000)]; print(len(x))";
    let mut cmd = Command::new(&python);
    cmd.args(["-c", program]);
    Alloc::Smalloc.apply(&mut cmd);
    let quiet = run(&mut cmd, None);
    assert!(quiet.status.success(), "{}", quiet.describe());
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("smalloc statistics"),
        "printed without being asked: {}",
        quiet.describe()
    );
    cmd.env("SMALLOC_SHOW_STATS", "1");
    let shown = run(&mut cmd, None);
    assert!(shown.status.success(), "{}", shown.describe());
    assert_eq!(shown.text().trim(), "100000");
    let err = String::from_utf8_lossy(&shown.stderr);
    // The report's headline, its totals and the per-class table.
    assert!(
        err.contains("smalloc statistics") && err.contains("live:") && err.contains("slot"),
        "{}",
        shown.describe()
    );
    let live_blocks: usize = err
        .lines()
        .find_map(|l| l.trim().strip_prefix("live:"))
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no live-block count in {err}"));
    assert!(live_blocks > 0, "{err}");
}
