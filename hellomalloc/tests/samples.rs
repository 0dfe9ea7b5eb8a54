//! Runs both sample programs and checks what they print.

use std::process::Command;

fn run(exe: &str) -> String {
    let out = Command::new(exe).output().expect("run the sample");
    assert!(out.status.success(), "{exe} failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn check(stdout: &str, how: &str) {
    assert!(stdout.contains("Hello, smalloc!"), "{stdout}");
    assert!(stdout.contains("squares: [1, 4, 9, 16, 25, 36, 49, 64, 81, 100]"));
    let last = format!("initialized by {how}; String and Vec in smalloc's slabs: true");
    assert!(stdout.contains(&last), "{stdout}");
}

#[test]
fn ctor_sample() {
    check(&run(env!("CARGO_BIN_EXE_hellomalloc_ctor")), "ctor");
}

#[test]
fn procmacro_sample() {
    check(
        &run(env!("CARGO_BIN_EXE_hellomalloc_procmacro")),
        "#[smalloc_main]",
    );
}

#[test]
fn show_stats_prints_the_report_at_exit() {
    for exe in [
        env!("CARGO_BIN_EXE_hellomalloc_ctor"),
        env!("CARGO_BIN_EXE_hellomalloc_procmacro"),
    ] {
        let quiet = Command::new(exe).output().expect("run the sample");
        assert!(quiet.status.success());
        assert!(!String::from_utf8_lossy(&quiet.stderr).contains("smalloc statistics"));
        let out = Command::new(exe)
            .env("SMALLOC_SHOW_STATS", "1")
            .output()
            .expect("run the sample");
        assert!(out.status.success(), "{exe} failed: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("smalloc statistics") && err.contains("threads:    1 attached"),
            "{exe}: {err}"
        );
        // The samples leave nothing of their own allocated at exit but the runtime's few blocks.
        assert!(err.contains("live:"), "{err}");
    }
}
