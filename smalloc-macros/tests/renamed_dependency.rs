//! Builds and runs `tests/renamed/`, a program whose dependency on smalloc's core is renamed.

use std::path::Path;
use std::process::Command;

#[test]
fn attribute_finds_a_renamed_core_crate() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Its own target directory next to the workspace's, so its build never races the tests'.
    let target = here.join("../target/renamed-dependency");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--offline", "--manifest-path"])
        .arg(here.join("tests/renamed/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("renamed ok: 1000 values"),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
