//! `--markdown FILE`: the comparison tables of a run as GitHub Markdown, in the form of README.md's
//! "Speed and memory" section, headed by the date, the machine and the command that produced
//! them, so that they can be pasted as they are.
//!
//! The tables: the two summaries of the text report (smalloc / peer: time, then the memory and
//! tail-latency figures; one row per peer), then one column per allocator: the timed cases (ns
//! per op), the tail latency (ns) and the memory figures that have a ratio (footprint and the
//! memory cases). Cells are medians over the rounds; the spreads, the other figures and the raw
//! samples are in the text report, `--csv` and `--json`.

use std::fmt::Write as _;
use std::time::SystemTime;

use devutils::procfs::{self, CpuInfo};

use crate::memory::Unit;
use crate::report::{case_label, latency_labels, num, side_summary_table, summary_table, table};
use crate::results::{Results, Stats};

/// Where, when and how a run was made: the head of the Markdown report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunInfo {
    /// The day of the run, UTC, `YYYY-MM-DD`.
    pub date: String,
    /// The CPU's model name, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs online (`processor` lines of `/proc/cpuinfo`; 0 if it could not be read).
    pub cpus_online: usize,
    /// The kernel's release, if `/proc` has it.
    pub kernel: Option<String>,
    /// The command that ran, as it can be typed again.
    pub command: String,
}

impl RunInfo {
    /// This machine, today, and the bench command run with `args` (without the program name).
    pub fn current(args: &[String]) -> RunInfo {
        let cpuinfo = CpuInfo::read().unwrap_or_default();
        RunInfo {
            date: date(SystemTime::now()),
            cpu: cpuinfo.model.unwrap_or_else(|| "unknown CPU".into()),
            cpus_online: cpuinfo.processors,
            kernel: procfs::kernel_release(),
            command: command_line(args),
        }
    }
}

/// The UTC day of `t`, `YYYY-MM-DD`.
pub fn date(t: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(t).to_string();
    // `YYYY-MM-DDTHH:MM:SSZ`: the day is what comes before the `T`.
    stamp.split('T').next().unwrap_or_default().to_string()
}

/// The `cargo` command that builds this binary as it was built (release or not, optional peers)
/// and runs it with `args`, quoted for a POSIX shell.
pub fn command_line(args: &[String]) -> String {
    let mut cmd = String::from("cargo run");
    if !cfg!(debug_assertions) {
        cmd.push_str(" --release");
    }
    cmd.push_str(" -p bench");
    let features: Vec<&str> = [
        ("snmalloc", cfg!(feature = "snmalloc")),
        ("rpmalloc", cfg!(feature = "rpmalloc")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if !features.is_empty() {
        let _ = write!(cmd, " --features {}", features.join(","));
    }
    if !args.is_empty() {
        // Arguments from the OS hold no NUL byte, the one thing `try_join` refuses.
        let words =
            shlex::try_join(args.iter().map(String::as_str)).unwrap_or_else(|_| args.join(" "));
        let _ = write!(cmd, " -- {words}");
    }
    cmd
}

/// A median as the tables show it, about three significant digits; `n/a` where there is none.
fn median(s: Option<Stats>) -> String {
    s.map_or_else(|| "n/a".into(), |s| num(s.median))
}

/// A median of a memory figure: MiB as [`median`], bytes and counts as whole numbers.
fn memory_median(s: Option<Stats>, unit: Unit) -> String {
    match s {
        Some(s) if unit != Unit::Kib => format!("{:.0}", s.median),
        s => median(s),
    }
}

/// The header of a table with one column per allocator.
fn header(r: &Results, first: &str) -> Vec<String> {
    let mut h = vec![first.to_string()];
    h.extend(r.allocators.iter().map(|a| a.name().to_string()));
    h
}

/// A row: `label`, then `cell(a)` for each of the `n` allocators.
fn row(label: String, n: usize, cell: impl Fn(usize) -> String) -> Vec<String> {
    let mut row = vec![label];
    row.extend((0..n).map(cell));
    row
}

/// The Markdown report of `r`, run as `info` says.
pub fn render(r: &Results, info: &RunInfo) -> String {
    let mut out = String::new();
    let n = r.allocators.len();
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut machine = format!("{}, {}", info.cpu, plural(info.cpus_online, "logical CPU"));
    if info.cpus_online != r.cpus {
        let _ = write!(machine, " ({} available to the run)", r.cpus);
    }
    if let Some(k) = &info.kernel {
        let _ = write!(machine, ", Linux {k}");
    }
    let _ = writeln!(
        out,
        "Measured on {} on {machine}: {}, scale {}{}, {:.0} s of measurement. The command:\n\n\
         ```sh\n{}\n```\n",
        info.date,
        plural(r.rounds, "round"),
        r.scale,
        if r.thorough { ", thorough" } else { "" },
        r.wall_s,
        info.command,
    );
    let legend: Vec<String> = r
        .allocators
        .iter()
        .map(|a| format!("`{}`: {}", a.name(), a.description()))
        .collect();
    let _ = writeln!(out, "Allocators: {}.", legend.join("; "));
    if r.peers().next().is_some() && !r.cases.is_empty() {
        let _ = writeln!(
            out,
            "\nsmalloc / peer, below 1.00x smalloc is faster or smaller. Time: geometric mean of \
             the ratios over the {}.\n",
            plural(r.cases.len(), "timed case")
        );
        out.push_str(&summary_table(r));
    }
    if r.peers().next().is_some() && !r.side_labels().is_empty() {
        let _ = writeln!(
            out,
            "\nsmalloc / peer of the memory figures and the tail latency (n/a: the peer has no \
             such figure):\n"
        );
        out.push_str(&side_summary_table(r));
    }
    if !r.cases.is_empty() {
        let _ = writeln!(
            out,
            "\nns per operation (median of {}; `*`: more threads than CPUs):\n",
            plural(r.rounds, "round")
        );
        let rows: Vec<Vec<String>> = (0..r.cases.len())
            .map(|c| row(case_label(r, c), n, |a| median(r.stats(c, a))))
            .collect();
        out.push_str(&table(&header(r, "case"), &rows));
    }
    if !r.latency.is_empty() {
        let _ = writeln!(
            out,
            "\nTail latency of single calls in a mixed workload, ns (median of {}):\n",
            plural(r.rounds, "round")
        );
        let rows: Vec<Vec<String>> = latency_labels()
            .into_iter()
            .enumerate()
            .map(|(k, label)| row(label, n, |a| median(r.latency_stats(a, k))))
            .collect();
        out.push_str(&table(&header(r, "call"), &rows));
    }
    let memory = memory_rows(r);
    if !memory.is_empty() {
        let _ = writeln!(
            out,
            "\nMemory: resident set, from a child process per allocator (median over the rounds \
             that ran it):\n"
        );
        out.push_str(&table(&header(r, "case: figure"), &memory));
    }
    out
}

/// The memory table's rows: footprint's peak and after-free RSS, then every memory figure that
/// has a smalloc / peer ratio.
fn memory_rows(r: &Results) -> Vec<Vec<String>> {
    let n = r.allocators.len();
    let mut rows = Vec::new();
    if (0..n).any(|a| r.footprint_stats(a).is_some()) {
        let f = |a| r.footprint_stats(a);
        let label = |what: &str| format!("`footprint`: {what} MiB");
        rows.push(row(label("peak RSS"), n, |a| median(f(a).map(|f| f.peak))));
        rows.push(row(label("RSS after free"), n, |a| {
            median(f(a).map(|f| f.after_free))
        }));
    }
    for m in &r.memory {
        for (f, fig) in m.case.figures().iter().enumerate() {
            if fig.ratio.is_some() {
                let label = format!("`{}`: {}", m.case.name(), fig.label);
                rows.push(row(label, n, |a| memory_median(m.stats(a, f), fig.unit)));
            }
        }
    }
    rows
}
