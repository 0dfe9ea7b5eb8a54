//! The C ABI, checked by a C program (`tests/c/abi.c`) compiled with gcc by each test.
//!
//! Semantic sections run twice: on glibc's malloc (no preload), which checks the test itself
//! against the reference implementation, and on smalloc (preloaded), which must behave the
//! same and also meet smalloc's own promises (see the comments in `abi.c`). Stress sections
//! (threads, fork, thread exit, dlopen, huge blocks) run on smalloc.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Alloc, C_FLAGS, STATIC_LIBS, c_source, cached_build, compile, include_dir, lib_dir,
    lib_dir_without_interpose, libsmalloc_so, limit_address_space, require, run, scratch,
};

/// Compiles `abi.c` into `dir` with `extra` flags (after the source); `None` without gcc.
fn build_abi(dir: &Path, name: &str, extra: &[&str]) -> Option<PathBuf> {
    let gcc = require("gcc")?;
    let exe = dir.join(name);
    let mut args: Vec<String> = C_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push("-o".into());
    args.push(exe.display().to_string());
    args.push(c_source("abi.c").display().to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push("-ldl".into());
    compile(&gcc, &args);
    Some(exe)
}

/// Compiles `src` into `out` with `tool`, warnings as errors, plus the `extra` flags.
fn build(tool: &Path, src: &Path, out: &Path, extra: &[&str]) {
    let mut args: Vec<&OsStr> = ["-O2", "-Wall", "-Werror"].map(OsStr::new).to_vec();
    args.extend(extra.iter().map(OsStr::new));
    args.extend([OsStr::new("-o"), out.as_os_str(), src.as_os_str()]);
    compile(tool, &args);
}

/// The program with the standard names, built once for all the tests that use it.
fn abi() -> Option<PathBuf> {
    let gcc = require("gcc")?;
    let src = c_source("abi.c");
    let text = fs::read(&src).expect("reading abi.c");
    let flags = C_FLAGS.join(" ");
    Some(cached_build("abi", &[&text, flags.as_bytes()], |out| {
        let mut args: Vec<&OsStr> = C_FLAGS.iter().map(OsStr::new).collect();
        args.extend([OsStr::new("-o"), out.as_os_str(), src.as_os_str()]);
        args.push(OsStr::new("-ldl"));
        compile(&gcc, &args);
    }))
}

/// Runs one section of `exe` in `mode` on `alloc`, optionally with an address-space limit, and
/// fails unless it reports success.
fn section(
    exe: &Path,
    alloc: Alloc,
    mode: &str,
    name: &str,
    arg: Option<&Path>,
    limit: Option<u64>,
) {
    let mut cmd = Command::new(exe);
    cmd.arg(mode).arg(name);
    if let Some(arg) = arg {
        cmd.arg(arg);
    }
    alloc.apply(&mut cmd);
    if let Some(bytes) = limit {
        limit_address_space(&mut cmd, bytes);
    }
    let out = run(&mut cmd, None);
    assert!(
        out.status.success() && out.text() == format!("ok {name}\n"),
        "section `{name}` in mode `{mode}` on {alloc:?} failed:\n{}",
        out.describe()
    );
}

/// A semantic section: on glibc first (validating the test), then on smalloc.
fn both(name: &str) {
    let Some(exe) = abi() else { return };
    section(&exe, Alloc::Glibc, "glibc", name, None, None);
    section(&exe, Alloc::Smalloc, "smalloc", name, None, None);
}

/// A section on smalloc only.
fn smalloc_only(name: &str) {
    let Some(exe) = abi() else { return };
    section(&exe, Alloc::Smalloc, "smalloc", name, None, None);
}

/// Sections that need nothing but the allocator, for the builds of the prefixed names.
const PLAIN_SECTIONS: &[&str] = &[
    "basic", "errno", "calloc", "realloc", "align", "usable", "c23", "foreign",
];

#[test]
fn basic_sizes_and_malloc_zero() {
    both("basic");
}

#[test]
fn errno_and_overflow() {
    both("errno");
}

#[test]
fn calloc_zeroes() {
    both("calloc");
}

#[test]
fn realloc_keeps_contents() {
    both("realloc");
}

#[test]
fn alignments_8_to_2mib() {
    both("align");
}

#[test]
fn usable_size_is_writable() {
    both("usable");
}

#[test]
fn c23_sized_frees() {
    both("c23");
}

#[test]
fn foreign_pointers_go_to_their_allocator() {
    both("foreign");
}

#[test]
fn blocks_past_the_biggest_slot() {
    smalloc_only("large");
}

/// Growing a block that sits in a big slot must not commit the pages the program never touched.
/// C's `realloc` gives no old size, so the core is handed the whole slot; it skips source pages
/// that read as zero when the destination is known to be zero already. 100 MiB used in a 128 MiB
/// slot, grown to 200 MiB, must not add the 28 MiB never touched to the resident set (the old
/// slot, freed, may stay resident).
#[test]
fn realloc_of_big_blocks_keeps_untouched_pages_free() {
    both("realloc-rss");
}

#[test]
fn threads_with_cross_thread_frees() {
    smalloc_only("threads");
}

#[test]
fn hundreds_of_threads() {
    smalloc_only("many-threads");
}

#[test]
fn fork_in_a_multithreaded_program() {
    smalloc_only("fork");
}

#[test]
fn thread_exit_destructors_allocate() {
    smalloc_only("thread-exit");
}

#[test]
fn cpp_thread_local_destructors_allocate() {
    let Some(gxx) = require("g++") else { return };
    let dir = scratch("thread-local");
    let exe = dir.join("thread_local");
    let src = c_source("thread_local.cpp");
    build(&gxx, &src, &exe, &["-pthread"]);
    for alloc in [Alloc::Glibc, Alloc::Smalloc] {
        let mut cmd = Command::new(&exe);
        alloc.apply(&mut cmd);
        let out = run(&mut cmd, None);
        assert!(
            out.status.success() && out.text() == "ok thread_local\n",
            "on {alloc:?}:\n{}",
            out.describe()
        );
    }
}

#[test]
fn dlopen_many_libraries_with_thread_locals() {
    let Some(exe) = abi() else { return };
    let Some(gcc) = require("gcc") else { return };
    let dir = scratch("dlopen");
    let first = dir.join("plugin0.so");
    let src = c_source("plugin.c");
    build(&gcc, &src, &first, &["-shared", "-fPIC"]);
    // Separate files make separate modules, each with its own thread-local block.
    for i in 1..32 {
        fs::copy(&first, dir.join(format!("plugin{i}.so"))).expect("copying the plugin");
    }
    section(&exe, Alloc::Glibc, "glibc", "dlopen", Some(&dir), None);
    section(&exe, Alloc::Smalloc, "smalloc", "dlopen", Some(&dir), None);
}

#[test]
fn fallback_to_glibc_when_the_reservation_is_refused() {
    let Some(exe) = abi() else { return };
    // 4 GiB of address space: plenty for the program, far too little for smalloc's 32 TiB.
    let limit = Some(4 << 30);
    for name in PLAIN_SECTIONS.iter().chain(&["threads", "fork"]) {
        section(&exe, Alloc::Smalloc, "fallback", name, None, limit);
    }
}

#[test]
fn prefixed_names_from_the_shared_library() {
    let dir = scratch("prefixed-shared");
    let include = format!("-I{}", include_dir().display());
    let libdir = lib_dir().display().to_string();
    let Some(exe) = build_abi(
        &dir,
        "abi",
        &[
            "-DPREFIXED",
            &include,
            &format!("-L{libdir}"),
            // DT_RPATH (not RUNPATH) wins over LD_LIBRARY_PATH, which cargo points at its own
            // output directories, where a different libsmalloc.so may be.
            "-Wl,--disable-new-dtags",
            &format!("-Wl,-rpath,{libdir}"),
            "-lsmalloc",
        ],
    ) else {
        return;
    };
    for name in PLAIN_SECTIONS {
        section(&exe, Alloc::Glibc, "smalloc", name, None, None);
    }
}

#[test]
fn prefixed_names_from_the_static_library() {
    let dir = scratch("prefixed-static");
    let include = format!("-I{}", include_dir().display());
    let archive = lib_dir().join("libsmalloc.a").display().to_string();
    let mut extra = vec!["-DPREFIXED", &include, &archive];
    extra.extend(STATIC_LIBS);
    let Some(exe) = build_abi(&dir, "abi", &extra) else {
        return;
    };
    for name in PLAIN_SECTIONS.iter().chain(&["threads"]) {
        section(&exe, Alloc::Glibc, "smalloc", name, None, None);
    }
}

#[test]
fn dlopen_local_does_not_replace_malloc() {
    let Some(exe) = abi() else {
        return;
    };
    section(
        &exe,
        Alloc::Glibc,
        "glibc",
        "separate",
        Some(&libsmalloc_so()),
        None,
    );
}

#[test]
fn without_the_interpose_feature_malloc_stays_glibc() {
    if require("gcc").is_none() {
        return;
    }
    let libs = lib_dir_without_interpose();
    let dir = scratch("no-interpose");
    let include = format!("-I{}", include_dir().display());
    let libdir = libs.display().to_string();
    let shared = build_abi(
        &dir,
        "abi-shared",
        &[
            "-DPREFIXED",
            &include,
            &format!("-L{libdir}"),
            // DT_RPATH (not RUNPATH) wins over LD_LIBRARY_PATH, which cargo points at its own
            // output directories, where a different libsmalloc.so may be.
            "-Wl,--disable-new-dtags",
            &format!("-Wl,-rpath,{libdir}"),
            "-lsmalloc",
        ],
    );
    let archive = libs.join("libsmalloc.a").display().to_string();
    let mut extra = vec!["-DPREFIXED", &include, &archive];
    extra.extend(STATIC_LIBS);
    let static_ = build_abi(&dir, "abi-static", &extra);
    for exe in [shared, static_].into_iter().flatten() {
        for name in ["separate", "basic", "foreign"] {
            section(&exe, Alloc::Glibc, "smalloc", name, None, None);
        }
    }
}

#[test]
fn exports_exactly_the_c_functions() {
    let Some(nm) = require("nm") else { return };
    let out = run(
        Command::new(nm)
            .args(["-D", "--defined-only", "--format=posix"])
            .arg(libsmalloc_so()),
        None,
    );
    assert!(out.status.success(), "{}", out.describe());
    let mut names: Vec<String> = out
        .text()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    names.sort();
    let c_names = [
        "aligned_alloc",
        "calloc",
        "free",
        "free_aligned_sized",
        "free_sized",
        "mallinfo",
        "mallinfo2",
        "malloc",
        "malloc_info",
        "malloc_stats",
        "malloc_trim",
        "malloc_usable_size",
        "mallopt",
        "memalign",
        "posix_memalign",
        "pvalloc",
        "realloc",
        "reallocarray",
        "valloc",
    ];
    let mut expected: Vec<String> = c_names
        .iter()
        .flat_map(|n| [n.to_string(), format!("smalloc_{n}")])
        .collect();
    expected.sort();
    assert_eq!(names, expected);
}

/// `include/smalloc.h` declares every `smalloc_` function with the type it must have, and is
/// usable from C (C99 and C11) and C++ (C++11 and C++17) with warnings as errors.
#[test]
fn header_declares_every_function_for_c_and_cpp() {
    let src = c_source("header.c");
    let include = format!("-I{}", include_dir().display());
    let dir = scratch("header");
    for (tool, language, standard) in [
        ("gcc", "c", "c99"),
        ("gcc", "c", "c11"),
        ("g++", "c++", "c++11"),
        ("g++", "c++", "c++17"),
    ] {
        let Some(path) = require(tool) else { continue };
        let out = dir.join(format!("header-{standard}.o"));
        let standard = format!("-std={standard}");
        let args: Vec<&OsStr> = [
            OsStr::new("-x"),
            OsStr::new(language),
            OsStr::new(&standard),
            OsStr::new("-Wall"),
            OsStr::new("-Wextra"),
            OsStr::new("-Werror"),
            OsStr::new("-pedantic"),
            OsStr::new(&include),
            OsStr::new("-c"),
            src.as_os_str(),
            OsStr::new("-o"),
            out.as_os_str(),
        ]
        .to_vec();
        compile(&path, &args);
    }
}
