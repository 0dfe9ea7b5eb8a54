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
