//! Real programs nobody here wrote, run with libsmalloc preloaded: each must exit 0 and print
//! exactly what it prints on glibc's malloc (run just before, in the same test).
//!
//! A program that is not installed skips its test with a message, unless
//! `SMALLOC_REQUIRE_ALL_PROGRAMS` is set (`.ci/run` installs them all and sets it).

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    Alloc, Outcome, assert_same, check_preloaded, libsmalloc_so, manifest_dir, require, run,
    same_on_both, scratch,
};

/// A script under `tests/scripts/`.
fn script(name: &str) -> PathBuf {
    manifest_dir().join("tests").join("scripts").join(name)
}

/// A deterministic stream of numbers (xorshift), for generated inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn preloading_takes_effect() {
    // The library is mapped into a preloaded process...
    let Some(cat) = require("cat") else { return };
    let mut cmd = Command::new(cat);
    cmd.arg("/proc/self/maps");
    Alloc::Smalloc.apply(&mut cmd);
    let out = run(&mut cmd, None);
    assert!(out.status.success(), "{}", out.describe());
    let lib = fs::canonicalize(libsmalloc_so()).expect("the library's path");
    assert!(
        out.text().contains(&*lib.to_string_lossy()),
        "libsmalloc.so is not mapped:\n{}",
        out.text()
    );
    // ... and serves its malloc: a 24-byte request gets a 32-byte slot (glibc's gives 24).
    let Some(python) = require("python3") else {
        return;
    };
    let probe = "import ctypes; c = ctypes.CDLL(None); c.malloc.restype = ctypes.c_void_p; \
                 print(c.malloc_usable_size(ctypes.c_void_p(c.malloc(24))))";
    for (alloc, expected) in [(Alloc::Glibc, "24\n"), (Alloc::Smalloc, "32\n")] {
        let mut cmd = Command::new(&python);
        cmd.args(["-c", probe]);
        alloc.apply(&mut cmd);
        let out = run(&mut cmd, None);
        assert!(
            out.status.success() && out.text() == expected,
            "on {alloc:?}: {}",
            out.describe()
        );
    }
}

#[test]
fn program_startup() {
    // Start-up is where an interposed malloc meets the loader's own allocations and the first
    // thread-local accesses: a few programs that do little else.
    for (program, args) in [
        ("true", &[][..]),
        // Not `/`: the link count of /proc follows the number of processes on the machine.
        ("ls", &["-la", "/usr/include"][..]),
        ("sh", &["-c", "echo start; echo up"][..]),
        ("python3", &["-c", "print('hello')"][..]),
    ] {
        let Some(path) = require(program) else {
            continue;
        };
        let mut glibc = Command::new(&path);
        glibc.args(args);
        Alloc::Glibc.apply(&mut glibc);
        let a = run(&mut glibc, None);
        let mut smalloc = Command::new(&path);
        smalloc.args(args);
        Alloc::Smalloc.apply(&mut smalloc);
        let b = run(&mut smalloc, None);
        assert!(a.status.success(), "{program} on glibc: {}", a.describe());
        assert!(b.status.success(), "{program} on smalloc: {}", b.describe());
        check_preloaded(program, &b);
        assert_same(program, &a.stdout, &b.stdout);
    }
}

#[test]
fn python3_allocation_heavy_script() {
    let Some(python) = require("python3") else {
        return;
    };
    same_on_both(
        "python3 alloc_heavy.py",
        || {
            let mut cmd = Command::new(&python);
            cmd.arg(script("alloc_heavy.py"))
                .env("PYTHONHASHSEED", "0")
                .env("PYTHONDONTWRITEBYTECODE", "1");
            cmd
        },
        None,
    );
}

/// A long interactive session: definitions, expressions echoed by the REPL, loops, an exception,
/// all typed into the prompt one line at a time.
fn python_session() -> String {
    let mut s = String::from("import json, collections\nhistory = []\n");
    for i in 0..1500 {
        match i % 6 {
            0 => writeln!(
                s,
                "history.append([str(n) * {} for n in range({})])",
                i % 9,
                i % 50
            ),
            1 => writeln!(s, "len(history), sum(map(len, history[-1]))"),
            2 => writeln!(
                s,
                "d{i} = {{f'k{{n}}': n * {i} for n in range({})}}\nlen(d{i})",
                i % 40
            ),
            3 => writeln!(s, "json.dumps(sorted(d{}.items())[:3])", i - 1),
            4 => writeln!(
                s,
                "def f{i}(n):\n    return [x * x for x in range(n)][-1:] if n else []\n\nf{i}({})",
                i % 70
            ),
            _ => writeln!(
                s,
                "del d{}\ncollections.Counter('abracadabra{i}').most_common(2)",
                i - 3
            ),
        }
        .expect("writing to a String");
    }
    s.push_str("1 / 0\nx = 'still alive after the exception'\nx\nlen(history)\n");
    s
}

#[test]
fn python3_repl_session() {
    let Some(python) = require("python3") else {
        return;
    };
    let session = python_session();
    let (glibc, smalloc) = same_on_both(
        "python3 -i (REPL)",
        || {
            let mut cmd = Command::new(&python);
            cmd.args(["-i", "-q"]).env("PYTHONHASHSEED", "0");
            cmd
        },
        Some(session.as_bytes()),
    );
    // The prompts and the traceback go to standard error: the same on both.
    assert_same("python3 -i (stderr)", &glibc.stderr, &smalloc.stderr);
    assert!(glibc.text().contains("still alive after the exception"));
}

#[test]
fn sqlite3_100k_inserts_in_memory() {
    let Some(sqlite3) = require("sqlite3") else {
        return;
    };
    let mut sql = String::from(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, value REAL, payload BLOB);\nBEGIN;\n",
    );
    for i in 0..100_000u64 {
        writeln!(
            sql,
            "INSERT INTO t(name, value, payload) VALUES('name-{}', {}.25, zeroblob({}));",
            i * 7919 % 100_003,
            i % 1000,
            i % 300
        )
        .expect("writing to a String");
    }
    sql.push_str(
        "COMMIT;\n\
         CREATE INDEX t_name ON t(name);\n\
         SELECT count(*), sum(value), sum(length(payload)) FROM t;\n\
         SELECT name FROM t ORDER BY name DESC LIMIT 5;\n\
         SELECT id % 10 AS k, count(*), avg(value) FROM t GROUP BY k ORDER BY k;\n\
         UPDATE t SET value = value * 2, name = name || '-x' WHERE id % 3 = 0;\n\
         DELETE FROM t WHERE id % 5 = 0;\n\
         SELECT count(*), total(value), max(name) FROM t;\n\
         SELECT group_concat(name, ',') FROM (SELECT name FROM t ORDER BY id LIMIT 20);\n",
    );
    same_on_both(
        "sqlite3 :memory:",
        || {
            let mut cmd = Command::new(&sqlite3);
            cmd.arg(":memory:");
            cmd
        },
        Some(sql.as_bytes()),
    );
}

#[test]
fn gcc_compiles_a_c_file() {
    let Some(gcc) = require("gcc") else { return };
    let dir = scratch("gcc");
    // A file with enough in it to keep the compiler busy for a moment.
    let mut src = String::from("#include <stdio.h>\n#include <string.h>\n");
    for i in 0..300 {
        writeln!(
            src,
            "static unsigned long f{i}(unsigned long x) {{\n\
             \x20   unsigned long a[{n}];\n\
             \x20   for (unsigned i = 0; i < {n}; i++) a[i] = x * {i} + i;\n\
             \x20   unsigned long s = 0;\n\
             \x20   for (unsigned i = 0; i < {n}; i++) s += a[i] ^ (s >> 3);\n\
             \x20   return s + strlen(\"f{i}\");\n}}",
            n = 8 + i % 32
        )
        .expect("writing to a String");
    }
    src.push_str("int main(void) {\n    unsigned long s = 1;\n");
    for i in 0..300 {
        writeln!(src, "    s = f{i}(s);").expect("writing to a String");
    }
    src.push_str("    printf(\"%lu\\n\", s);\n    return 0;\n}\n");
    let c_file = dir.join("gen.c");
    fs::write(&c_file, src).expect("writing gen.c");

    let mut outputs = Vec::new();
    for alloc in [Alloc::Glibc, Alloc::Smalloc] {
        let obj = dir.join(format!("gen-{alloc:?}.o"));
        let exe = dir.join(format!("gen-{alloc:?}"));
        for args in [
            vec![
                "-O2".as_ref(),
                "-c".as_ref(),
                c_file.as_os_str(),
                "-o".as_ref(),
                obj.as_os_str(),
            ],
            vec![obj.as_os_str(), "-o".as_ref(), exe.as_os_str()],
        ] {
            let mut cmd = Command::new(&gcc);
            cmd.args(args).current_dir(&dir);
            alloc.apply(&mut cmd);
            let out = run(&mut cmd, None);
            assert!(out.status.success(), "gcc on {alloc:?}: {}", out.describe());
            check_preloaded("gcc", &out);
        }
        let mut prog = Command::new(&exe);
        Alloc::Glibc.apply(&mut prog);
        let out = run(&mut prog, None);
        assert!(out.status.success(), "{}", out.describe());
        outputs.push((fs::read(&obj).expect("reading the object file"), out.stdout));
    }
    assert!(
        outputs[0].0 == outputs[1].0,
        "gcc produced different object code on smalloc"
    );
    assert_same("program built by gcc", &outputs[0].1, &outputs[1].1);
}

/// Runs a scripted git session in `dir` on `alloc` and returns everything it printed.
fn git_session(git: &Path, dir: &Path, alloc: Alloc) -> Vec<u8> {
    let repo = dir.join("repo");
    let git_cmd_in = |args: &[&str], stdin: Option<&[u8]>| {
        let mut cmd = Command::new(git);
        cmd.args(args)
            .current_dir(&repo)
            .env("HOME", dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("XDG_CONFIG_HOME", dir)
            .env("GIT_AUTHOR_NAME", "A U Thor")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_AUTHOR_DATE", "2020-02-02T02:02:02Z")
            .env("GIT_COMMITTER_NAME", "C O Mitter")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_COMMITTER_DATE", "2020-02-02T02:02:02Z")
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        alloc.apply(&mut cmd);
        let out = run(&mut cmd, stdin);
        assert!(
            out.status.success(),
            "git {args:?} on {alloc:?}: {}",
            out.describe()
        );
        check_preloaded("git", &out);
        out.stdout
    };
    let git_cmd = |args: &[&str]| git_cmd_in(args, None);
    fs::create_dir_all(&repo).expect("creating the repository directory");
    let mut printed = git_cmd(&["init", "-q", "-b", "main"]);
    let mut rng = Rng(7);
    for round in 0..3 {
        for i in 0..150 {
            if round > 0 && !rng.next().is_multiple_of(3) {
                continue;
            }
            let mut text = String::new();
            for line in 0..(rng.next() % 200) {
                writeln!(text, "file {i} round {round} line {line} {:x}", rng.next())
                    .expect("writing to a String");
            }
            let sub = repo.join(format!("dir{}", i % 10));
            fs::create_dir_all(&sub).expect("creating a directory");
            fs::write(sub.join(format!("file{i}.txt")), text).expect("writing a file");
        }
        git_cmd(&["add", "-A"]);
        let message = format!("round {round}");
        printed.extend(git_cmd(&["commit", "-q", "-m", &message]));
    }
    for args in [
        &["log", "--format=%H %T %an <%ae> %ad %s", "--date=iso"][..],
        &["log", "--stat", "--format=%H", "-2"],
        &["diff", "--stat", "HEAD~2", "HEAD"],
        &["cat-file", "-p", "HEAD"],
        &["ls-tree", "-r", "HEAD"],
    ] {
        printed.extend(git_cmd(args));
    }
    // Pack every object with delta compression (what `git gc` does, minus its housekeeping);
    // the pack's name hashes the objects in it, so it is the same on both allocators.
    let objects = git_cmd(&["rev-list", "--objects", "--all"]);
    printed.extend(git_cmd_in(
        &[
            "pack-objects",
            "-q",
            "--window=50",
            ".git/objects/pack/pack",
        ],
        Some(&objects),
    ));
    for args in [
        &["prune-packed", "-q"][..],
        &["count-objects"],
        &["fsck", "--full", "--no-progress"],
        &["status", "--porcelain"],
    ] {
        printed.extend(git_cmd(args));
    }
    printed.extend(objects);
    printed
}

#[test]
fn git_init_commit_log() {
    let Some(git) = require("git") else { return };
    let dir = scratch("git");
    let glibc = git_session(&git, &dir.join("glibc"), Alloc::Glibc);
    let smalloc = git_session(&git, &dir.join("smalloc"), Alloc::Smalloc);
    assert!(!glibc.is_empty());
    assert_same("git session", &glibc, &smalloc);
}

#[test]
fn sort_a_million_lines() {
    let Some(sort) = require("sort") else { return };
    let dir = scratch("sort");
    let input = dir.join("lines.txt");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut text = String::with_capacity(20 << 20);
    for i in 0..1_000_000u32 {
        writeln!(text, "{:08x} {}", rng.next() as u32, i % 977).expect("writing to a String");
    }
    fs::write(&input, text).expect("writing the input");
    for args in [&["-k1,1"][..], &["-n", "-k2,2", "-k1,1r"][..]] {
        same_on_both(
            &format!("sort {args:?}"),
            || {
                let mut cmd = Command::new(&sort);
                cmd.args(args).arg(&input).env("LC_ALL", "C");
                cmd
            },
            None,
        );
    }
}

#[test]
fn xz_round_trip() {
    let Some(xz) = require("xz") else { return };
    let dir = scratch("xz");
    let input = dir.join("data");
    let mut rng = Rng(99);
    let mut data = Vec::with_capacity(3 << 20);
    while data.len() < 3 << 20 {
        let r = rng.next();
        if r.is_multiple_of(4) {
            data.extend_from_slice(&r.to_le_bytes());
        } else {
            data.extend_from_slice(format!("record {} value {}\n", r % 5000, r % 97).as_bytes());
        }
    }
    fs::write(&input, &data).expect("writing the input");
    let (compressed, _) = same_on_both(
        "xz -c",
        || {
            let mut cmd = Command::new(&xz);
            cmd.args(["-T1", "-6", "-c"]).arg(&input);
            cmd
        },
        None,
    );
    let packed = dir.join("data.xz");
    fs::write(&packed, &compressed.stdout).expect("writing the compressed file");
    let (restored, _) = same_on_both(
        "xz -d -c",
        || {
            let mut cmd = Command::new(&xz);
            cmd.args(["-d", "-c"]).arg(&packed);
            cmd
        },
        None,
    );
    assert!(restored.stdout == data, "xz did not restore the input");
}

#[test]
fn bash_script() {
    let Some(bash) = require("bash") else { return };
    same_on_both(
        "bash work.sh",
        || {
            let mut cmd = Command::new(&bash);
            cmd.arg(script("work.sh")).env("LC_ALL", "C");
            cmd
        },
        None,
    );
}

#[test]
fn node_script() {
    let Some(node) = require("node") else { return };
    same_on_both(
        "node objects.js",
        || {
            let mut cmd = Command::new(&node);
            cmd.arg(script("objects.js"));
            cmd
        },
        None,
    );
}

/// gdb's output with process and thread numbers masked, which differ from run to run.
fn mask_numbers(out: &Outcome) -> Vec<u8> {
    let text = out.text();
    let mut masked = String::with_capacity(text.len());
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                masked.push('N');
            }
            in_number = true;
        } else {
            masked.push(c);
            in_number = false;
        }
    }
    masked.into_bytes()
}

#[test]
fn gdb_runs_a_program() {
    let Some(gdb) = require("gdb") else { return };
    let Some(truth) = require("true") else { return };
    // The preload applies to gdb itself and, through the environment, to the program it runs.
    let on = |alloc: Alloc| {
        let mut cmd = Command::new(&gdb);
        cmd.args(["-nx", "-batch", "-ex", "run", "--args"])
            .arg(&truth);
        alloc.apply(&mut cmd);
        let out = run(&mut cmd, None);
        assert!(out.status.success(), "gdb on {alloc:?}: {}", out.describe());
        out
    };
    let glibc = on(Alloc::Glibc);
    let smalloc = on(Alloc::Smalloc);
    check_preloaded("gdb", &smalloc);
    assert!(
        glibc.text().contains("exited normally"),
        "{}",
        glibc.describe()
    );
    assert_same("gdb", &mask_numbers(&glibc), &mask_numbers(&smalloc));
}
