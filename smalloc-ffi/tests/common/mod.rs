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
use std::os::unix::process::CommandExt;
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

/// Flags for the C test programs built by [`build_c`]: warnings are errors, and `-fno-builtin`
/// keeps gcc from folding allocation calls away (it may drop a malloc/free pair or assume a huge
/// malloc fails).
pub const C_FLAGS: &[&str] = &[
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-fno-builtin",
    "-pthread",
];

/// Libraries a program linked with `libsmalloc.a` needs (`rustc --print native-static-libs`).
pub const STATIC_LIBS: &[&str] = &[
    "-lgcc_s",
    "-lutil",
    "-lrt",
    "-lpthread",
    "-lm",
    "-ldl",
    "-lc",
];

/// How a C test program reaches the allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// Standard names (`malloc`, ...), linked with nothing but the C library: smalloc comes in
    /// by preload.
    Standard,
    /// `smalloc_` names (`-DPREFIXED`), linked with `libsmalloc.so`, whose standard names then
    /// replace the C library's malloc in the whole process.
    PrefixedShared,
    /// `smalloc_` names, linked with `libsmalloc.a`, whose standard names replace the C
    /// library's malloc too.
    PrefixedStatic,
    /// `smalloc_` names, linked with a `libsmalloc.so` built without the `interpose` feature:
    /// glibc's malloc stays the process's, and smalloc serves only the program's own calls.
    SideBySide,
}

/// Compiles `tests/c/<source>` (which may include `tests/c/check.h` and `smalloc.h`) as `build`
/// says, and returns the executable; `None` without gcc. Each program is built once for all the
/// tests that use it, and again whenever its sources or the library it links change.
pub fn build_c(source: &str, build: Build) -> Option<PathBuf> {
    let gcc = require("gcc")?;
    let src = c_source(source);
    let stem = source.rsplit_once('.').map_or(source, |(s, _)| s);
    let mut args: Vec<String> = C_FLAGS.iter().map(|s| s.to_string()).collect();
    if build != Build::Standard {
        args.push("-DPREFIXED".into());
        args.push(format!("-I{}", include_dir().display()));
    }
    let shared = |dir: &Path| {
        let so = dir.join("libsmalloc.so");
        let dir = dir.display();
        let args = vec![
            format!("-L{dir}"),
            // DT_RPATH (not RUNPATH) wins over LD_LIBRARY_PATH, which cargo points at its own
            // output directories, where a different libsmalloc.so may be.
            "-Wl,--disable-new-dtags".into(),
            format!("-Wl,-rpath,{dir}"),
            "-lsmalloc".into(),
        ];
        (Some(so), args)
    };
    let (library, libs) = match build {
        Build::Standard => (None, Vec::new()),
        Build::PrefixedShared => shared(lib_dir()),
        Build::PrefixedStatic => {
            let archive = lib_dir().join("libsmalloc.a");
            let mut libs = vec![archive.display().to_string()];
            libs.extend(STATIC_LIBS.iter().map(|s| s.to_string()));
            (Some(archive), libs)
        }
        Build::SideBySide => shared(&lib_dir_without_interpose()),
    };
    args.push("-o".into());
    let mut key: Vec<Vec<u8>> = vec![args.join(" ").into_bytes(), libs.join(" ").into_bytes()];
    for file in [
        src.clone(),
        c_source("check.h"),
        include_dir().join("smalloc.h"),
    ]
    .into_iter()
    .chain(library)
    {
        key.push(fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display())));
    }
    let key: Vec<&[u8]> = key.iter().map(Vec::as_slice).collect();
    let name = format!("{stem}-{build:?}");
    Some(cached_build(&name, &key, |out| {
        let mut all: Vec<OsString> = args.iter().map(OsString::from).collect();
        all.extend([out.as_os_str().to_owned(), src.as_os_str().to_owned()]);
        all.extend(libs.iter().map(OsString::from));
        all.push("-ldl".into());
        compile(&gcc, &all);
    }))
}

/// The address-space limit of fallback mode, `ulimit -v 4000000` (in KiB): plenty for the
/// test programs, far too little for smalloc's 32 TiB reservation.
pub const FALLBACK_LIMIT: u64 = 4_000_000 * 1024;

/// Who serves a C test program's allocations, which the program is told as its first argument
/// (`glibc`, `smalloc` or `fallback`, see `tests/c/check.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// glibc's malloc, no smalloc at all: checks the test itself against the reference.
    Glibc,
    /// smalloc: preloaded for [`Build::Standard`], linked otherwise.
    Smalloc,
    /// smalloc loaded (as for `Smalloc`) under [`FALLBACK_LIMIT`], which makes it hand every
    /// request to glibc.
    Fallback,
    /// glibc's malloc alone under [`FALLBACK_LIMIT`], the program told `fallback`: the
    /// reference for `Fallback`, which checks the test itself.
    FallbackReference,
}

impl Mode {
    /// The program's first argument.
    pub fn arg(self) -> &'static str {
        match self {
            Mode::Glibc => "glibc",
            Mode::Smalloc => "smalloc",
            Mode::Fallback | Mode::FallbackReference => "fallback",
        }
    }
}

/// Runs `exe MODE args...` built as `build`, in `mode`: with libsmalloc preloaded when a
/// standard-names program runs on smalloc, and the address space limited for the fallback
/// modes.
pub fn run_c(exe: &Path, build: Build, mode: Mode, args: &[&OsStr]) -> Outcome {
    let mut cmd = Command::new(exe);
    cmd.arg(mode.arg()).args(args);
    let preload = build == Build::Standard && matches!(mode, Mode::Smalloc | Mode::Fallback);
    if preload {
        Alloc::Smalloc.apply(&mut cmd);
    } else {
        Alloc::Glibc.apply(&mut cmd);
    }
    if matches!(mode, Mode::Fallback | Mode::FallbackReference) {
        limit_address_space(&mut cmd, FALLBACK_LIMIT);
    }
    let out = run(&mut cmd, None);
    if preload {
        check_preloaded(&format!("{}", exe.display()), &out);
    }
    out
}

/// Limits the address space of the process `cmd` starts (`RLIMIT_AS`, what `ulimit -v` sets),
/// not that of the test.
pub fn limit_address_space(cmd: &mut Command, bytes: u64) -> &mut Command {
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}
