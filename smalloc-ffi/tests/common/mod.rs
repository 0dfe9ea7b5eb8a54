//! Shared by the integration tests: finds libsmalloc (building it first), compiles C programs,
//! and runs programs with and without the library preloaded.
//!
//! Cargo does not build a `cdylib` for the integration tests of its own package (they link only
//! `rlib`s), so [`lib_dir`] runs `cargo build -p smalloc-ffi --lib` itself, once per test
//! process, into the very target directory and profile the test binary was built in. When
//! nothing changed that build is a no-op; when the library's sources changed it brings
//! `libsmalloc.so` up to date, so a test never runs against a stale library. Set
//! `SMALLOC_FFI_LIB_DIR` to a directory holding `libsmalloc.so` and `libsmalloc.a` to test a
//! library built elsewhere instead.
//!
//! Programs the tests drive but that may be missing (sqlite3, gdb, node, ...) are looked up with
//! [`require`]: a missing one skips its test with a message, unless
//! `SMALLOC_REQUIRE_ALL_PROGRAMS` is set (as `.ci/run` does), which makes it a failure.

#![allow(dead_code)] // each test crate uses its own part of this module

use std::env;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// The package directory (`smalloc-ffi/`).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `tests/c/`.
pub fn c_source(name: &str) -> PathBuf {
    manifest_dir().join("tests").join("c").join(name)
}

/// The directory of `include/smalloc.h`.
pub fn include_dir() -> PathBuf {
    manifest_dir().join("include")
}

/// Where a cargo build puts its outputs, as seen from this test binary.
struct BuildDirs {
    /// The target directory (the one holding `CACHEDIR.TAG`).
    target: PathBuf,
    /// `--target` triple, when the build used one (`<target>/<triple>/<profile>`).
    triple: Option<OsString>,
    /// Cargo profile name (`dev` for the `debug` directory).
    profile: String,
}

/// Works out the target directory, triple and profile from this test binary's path:
/// `<target>[/<triple>]/<profile-dir>/deps/<test-binary>`.
fn build_dirs() -> BuildDirs {
    let exe = env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps/");
    let profile = match profile_dir.file_name().and_then(OsStr::to_str) {
        Some("debug") => "dev".to_string(),
        Some(name) => name.to_string(),
        None => panic!("unexpected test binary path {}", exe.display()),
    };
    let above = profile_dir.parent().expect("a target directory");
    let nested = above
        .parent()
        .filter(|t| !above.join("CACHEDIR.TAG").exists() && t.join("CACHEDIR.TAG").exists());
    match nested {
        Some(target) => BuildDirs {
            target: target.to_path_buf(),
            triple: above.file_name().map(OsStr::to_os_string),
            profile,
        },
        None => BuildDirs {
            target: above.to_path_buf(),
            triple: None,
            profile,
        },
    }
}

/// Runs `cargo build -p smalloc-ffi --lib` with `extra` arguments into `target`, in this test
/// binary's profile (and triple), and returns the directory the library lands in.
fn cargo_build_library(target: &Path, extra: &[&str]) -> PathBuf {
    let dirs = build_dirs();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--lib",
        "-p",
        "smalloc-ffi",
        "--profile",
        &dirs.profile,
    ])
    .arg("--manifest-path")
    .arg(manifest_dir().join("Cargo.toml"))
    .args(extra)
    .env("CARGO_TARGET_DIR", target);
    let mut out = target.to_path_buf();
    if let Some(triple) = &dirs.triple {
        cmd.arg("--target").arg(triple);
        out.push(triple);
    }
    out.push(match dirs.profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    });
    let result = cmd.output().expect("running cargo to build libsmalloc");
    assert!(
        result.status.success(),
        "building libsmalloc failed:\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    out
}

/// The directory holding an up-to-date `libsmalloc.so` and `libsmalloc.a` (default features).
pub fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| match env::var_os("SMALLOC_FFI_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => cargo_build_library(&build_dirs().target, &[]),
    })
}

/// The library built without the `interpose` feature (only `smalloc_` names), in a target
/// directory of its own so that it never replaces the default build's files.
pub fn lib_dir_without_interpose() -> PathBuf {
    let target = build_dirs().target.join("smalloc-ffi-no-interpose");
    cargo_build_library(&target, &["--no-default-features"])
}

/// `libsmalloc.so`.
pub fn libsmalloc_so() -> PathBuf {
    lib_dir().join("libsmalloc.so")
}

/// A fresh, empty directory for one test's files, under cargo's directory for test data.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("smalloc-ffi")
        .join(name);
    if dir.exists() {
        fs::remove_dir_all(&dir).expect("clearing the scratch directory");
    }
    fs::create_dir_all(&dir).expect("creating the scratch directory");
    dir
}

/// A build product shared by the test processes: `build` makes it (writing to the path it is
/// given) unless a product with the same `key` (the inputs' contents and the build flags) exists
/// already. Concurrent tests may both build it; each renames its own file into place, so a
/// reader never sees a half-written one.
pub fn cached_build(name: &str, key: &[&[u8]], build: impl FnOnce(&Path)) -> PathBuf {
    let mut hasher = DefaultHasher::new();
    key.hash(&mut hasher);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("smalloc-ffi")
        .join("cache");
    fs::create_dir_all(&dir).expect("creating the build cache");
    let out = dir.join(format!("{name}-{:016x}", hasher.finish()));
    if !out.exists() {
        let tmp = dir.join(format!("{name}.{}.tmp", std::process::id()));
        build(&tmp);
        fs::rename(&tmp, &out).expect("moving a build product into place");
    }
    out
}

/// Whether every program the tests drive must be present (set by `.ci/run`).
fn all_programs_required() -> bool {
    env::var_os("SMALLOC_REQUIRE_ALL_PROGRAMS").is_some_and(|v| !v.is_empty() && v != "0")
}

/// The path of `program`, looked up in `PATH`. If it is missing, the test should be skipped:
/// this prints why and returns `None`, unless `SMALLOC_REQUIRE_ALL_PROGRAMS` is set, in which case
/// it fails the test.
pub fn require(program: &str) -> Option<PathBuf> {
    let found = env::var_os("PATH").and_then(|paths| {
        env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !all_programs_required(),
            "`{program}` was not found in PATH, and SMALLOC_REQUIRE_ALL_PROGRAMS is set \
             (.ci/run installs it)"
        );
        eprintln!(
            "SKIPPED: `{program}` was not found in PATH (install it, or set \
             SMALLOC_REQUIRE_ALL_PROGRAMS=1 to make this a failure)"
        );
    }
    found
}

/// Runs a compiler (or any build tool) and fails the test, showing its messages, if it fails.
pub fn compile<S: AsRef<OsStr>>(tool: &Path, args: &[S]) {
    let out = Command::new(tool)
        .args(args)
        .env_remove("LD_PRELOAD")
        .output()
        .expect("running the compiler");
    assert!(
        out.status.success(),
        "{} {:?} failed:\n{}",
        tool.display(),
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Which allocator a program runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alloc {
    /// The C library's own (no preload).
    Glibc,
    /// libsmalloc, preloaded.
    Smalloc,
}

impl Alloc {
    /// Sets up `cmd`'s environment for this allocator.
    pub fn apply(self, cmd: &mut Command) -> &mut Command {
        match self {
            Alloc::Glibc => cmd.env_remove("LD_PRELOAD"),
            Alloc::Smalloc => {
                let lib = libsmalloc_so();
                // The loader splits LD_PRELOAD at spaces and colons.
                assert!(
                    !lib.to_string_lossy().contains([' ', ':']),
                    "cannot preload {}: the path has a space or a colon",
                    lib.display()
                );
                cmd.env("LD_PRELOAD", lib)
            }
        }
    }
}

/// What a finished program left.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub elapsed: Duration,
}

impl Outcome {
    /// Standard output as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Status and both outputs (the ends of long ones), for failure messages.
    pub fn describe(&self) -> String {
        fn tail(b: &[u8]) -> String {
            let s = String::from_utf8_lossy(b);
            let n = s.chars().count();
            if n > 3000 {
                format!("...{}", s.chars().skip(n - 3000).collect::<String>())
            } else {
                s.into_owned()
            }
        }
        format!(
            "status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        )
    }
}

/// How long any one program may run before it is killed and the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(180);

/// Runs `cmd` to completion, feeding it `stdin`, and collects its outputs. A program still
/// running after [`TIMEOUT`] is killed and fails the test (a deadlock must not hang the suite).
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> Outcome {
    let start = Instant::now();
    // Standard input is always a pipe, closed after `stdin` (if any) is written: an empty pipe
    // is a more dependable end-of-file than /dev/null, which a sandbox may have replaced.
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
    let input = stdin.unwrap_or_default().to_vec();
    let mut pipe = child.stdin.take().expect("piped stdin");
    // A program may exit without reading everything; a broken pipe is not an error here.
    let feeder = thread::spawn(move || {
        let _ = pipe.write_all(&input);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the program") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let _ = feeder.join();
    Outcome {
        status,
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        elapsed: start.elapsed(),
    }
}

/// Runs the command `make` builds once on glibc's malloc and once on smalloc, and checks that
/// both succeed with the same (non-empty) standard output. Returns both outcomes, glibc's first.
pub fn same_on_both(
    what: &str,
    make: impl Fn() -> Command,
    stdin: Option<&[u8]>,
) -> (Outcome, Outcome) {
    let on = |alloc: Alloc| {
        let mut cmd = make();
        alloc.apply(&mut cmd);
        let out = run(&mut cmd, stdin);
        assert!(
            out.status.success(),
            "{what} failed on {alloc:?}:\n{}",
            out.describe()
        );
        out
    };
    let glibc = on(Alloc::Glibc);
    let smalloc = on(Alloc::Smalloc);
    check_preloaded(what, &smalloc);
    assert!(!glibc.stdout.is_empty(), "{what} printed nothing");
    assert_same(what, &glibc.stdout, &smalloc.stdout);
    eprintln!(
        "{what}: {:.2?} on glibc, {:.2?} on smalloc, {} bytes of identical output",
        glibc.elapsed,
        smalloc.elapsed,
        glibc.stdout.len()
    );
    (glibc, smalloc)
}

/// Fails if the loader said it could not preload the library (it then runs the program without
/// it, which would make any comparison meaningless).
pub fn check_preloaded(what: &str, out: &Outcome) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("cannot be preloaded"),
        "{what}: libsmalloc was not preloaded:\n{err}"
    );
}

/// Fails, pointing at the first differing line, if the two outputs differ.
pub fn assert_same(what: &str, glibc: &[u8], smalloc: &[u8]) {
    if glibc == smalloc {
        return;
    }
    let (a, b) = (
        String::from_utf8_lossy(glibc),
        String::from_utf8_lossy(smalloc),
    );
    let line = a
        .lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()));
    panic!(
        "{what}: output differs from line {} on (glibc: {} bytes, smalloc: {} bytes)\n\
         glibc:   {:?}\nsmalloc: {:?}",
        line + 1,
        glibc.len(),
        smalloc.len(),
        a.lines().nth(line),
        b.lines().nth(line)
    );
}
