//! A Rust program with smalloc as its global allocator (`src/bin/memcheck_clean.rs`) under
//! valgrind's memcheck: smalloc must serve it (not its fallback allocator), describe every block
//! to memcheck, and memcheck must find no error and no leak. Skipped without valgrind unless
//! `SMALLOC_REQUIRE_ALL_PROGRAMS` is set. The C side is `smalloc-ffi/tests/memcheck.rs`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

/// `valgrind` from `PATH`, or `None` (the test is then skipped, unless every program is
/// required).
fn valgrind() -> Option<PathBuf> {
    let found = env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join("valgrind"))
            .find(|p| p.is_file())
    });
    let required =
        env::var_os("SMALLOC_REQUIRE_ALL_PROGRAMS").is_some_and(|v| !v.is_empty() && v != "0");
    assert!(
        found.is_some() || !required,
        "valgrind was not found in PATH, and SMALLOC_REQUIRE_ALL_PROGRAMS is set"
    );
    if found.is_none() {
        eprintln!("SKIPPED: valgrind was not found in PATH");
    }
    found
}

#[test]
fn rust_program_on_smalloc_is_clean_under_memcheck() {
    let Some(valgrind) = valgrind() else { return };
    let out = Command::new(valgrind)
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
        ])
        .arg(env!("CARGO_BIN_EXE_memcheck_clean"))
        .output()
        .expect("running valgrind");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stdout}\n{log}", out.status);
    // smalloc served the program: small blocks from its slabs, the big one from a direct mapping.
    assert!(
        stdout.contains("blocks from smalloc's slabs: true; big block outside them: true"),
        "{stdout}"
    );
    assert!(log.contains("ERROR SUMMARY: 0 errors"), "{log}");
    assert!(log.contains("definitely lost: 0 bytes"), "{log}");
    // memcheck saw smalloc's blocks (the program makes some 13,000 allocations): without the
    // client requests it would count none.
    let allocs: usize = log
        .split_once("total heap usage: ")
        .and_then(|(_, rest)| rest.split_once(" allocs"))
        .map(|(n, _)| n.replace(',', ""))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no heap summary:\n{log}"));
    assert!(
        allocs > 10_000,
        "memcheck counted {allocs} allocations:\n{log}"
    );
}
