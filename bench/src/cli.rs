//! Command-line parsing (with `lexopt`) and the subcommands of the `bench` binary.

use std::hint::black_box;

use lexopt::{Arg, Parser};

use crate::allocators::{self, AllocatorId};
use crate::footprint;
use crate::markdown;
use crate::memory::MemoryCase;
use crate::report;
use crate::runner::{self, Plan};
use crate::with_allocator;
use crate::workloads::{self, pair};

/// The `--help` text.
pub const USAGE: &str = "\
bench: smalloc side by side with the allocators a user would pick instead

USAGE:
  bench [OPTIONS]                 run the workloads (smalloc alone unless --compare)
  bench pair64 [--allocator NAME] [--iters N] [--hold K] [--fixed]
                                  N alloc/free pairs of 64 B through one allocator (holding
                                  K other 64 B blocks meanwhile), then print ns/pair
                                  (for callgrind: see bench/README.md)
  bench list                      list the allocators and cases

OPTIONS:
  --compare          also run every peer, interleaved with smalloc
  --thorough         add the slow cases (1024 threads; phases with 2 GiB per phase)
  --allocators LIST  comma-separated allocators to run (smalloc is always included)
  --only LIST        comma-separated substrings: run only the cases whose name contains one
                     (timed cases, latency, footprint and memory cases alike)
  --rounds N         samples per case and allocator (default 7 with --compare, else 3)
  --scale F          multiply the work of every case by F (default 1.0)
  --no-footprint     skip the footprint child processes
  --no-latency       skip the tail-latency report
  --no-memory        skip the memory cases (realloc-strings, phases, trim, thp-threads)
  --memory-rounds N  rounds that also run the memory cases (default 3, at most --rounds)
  --csv FILE         also write every figure as CSV
  --json FILE        also write every figure and raw sample as JSON
  --plot FILE.svg    also draw the smalloc / peer ratios as a bar chart (needs peers)
  --markdown FILE    also write the comparison tables as GitHub Markdown, headed by the date,
                     the machine and the command (to paste into README.md)
  -h, --help         this text
";

/// Timed alloc calls (and as many frees) per allocator and round in the latency report, at
/// scale 1: enough that p99.9 rests on a thousand calls.
pub const LATENCY_CALLS: u64 = 1_000_000;

/// Rounds that run the memory cases by default: their figures vary little from round to round,
/// and `phases` and `trim` move gigabytes per child.
pub const MEMORY_ROUNDS: usize = 3;

/// Options of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Options {
    pub(crate) compare: bool,
    pub(crate) thorough: bool,
    pub(crate) allocators: Option<Vec<AllocatorId>>,
    pub(crate) only: Vec<String>,
    pub(crate) rounds: Option<usize>,
    pub(crate) scale: Option<f64>,
    pub(crate) no_footprint: bool,
    pub(crate) no_latency: bool,
    pub(crate) no_memory: bool,
    pub(crate) memory_rounds: Option<usize>,
    pub(crate) csv: Option<String>,
    pub(crate) json: Option<String>,
    pub(crate) plot: Option<String>,
    pub(crate) markdown: Option<String>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Parsed<T> {
    /// `-h` or `--help`: print [`USAGE`].
    Help,
    /// Run with these options.
    Run(T),
}

/// An argument as it was written, for error messages.
fn shown(arg: &Arg<'_>) -> String {
    match arg {
        Arg::Short(c) => format!("-{c}"),
        Arg::Long(name) => format!("--{name}"),
        Arg::Value(v) => v.to_string_lossy().into_owned(),
    }
}

/// Takes the value of option `name` (the next argument, or what follows `=`).
fn value(p: &mut Parser, name: &str) -> Result<String, String> {
    let v = p.value().map_err(|_| format!("{name} needs a value"))?;
    v.into_string()
        .map_err(|v| format!("{name}: '{}' is not UTF-8", v.to_string_lossy()))
}

/// Takes the value of number option `name`.
fn number<T: std::str::FromStr>(p: &mut Parser, name: &str) -> Result<T, String> {
    let s = value(p, name)?;
    s.parse()
        .map_err(|_| format!("{name}: cannot read '{s}' as a number"))
}

/// Splits a comma-separated list, dropping empty items.
fn list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|n| !n.is_empty())
}

/// Parses a comma-separated list of allocator names.
fn allocator_list(s: &str) -> Result<Vec<AllocatorId>, String> {
    list(s)
        .map(|n| {
            AllocatorId::parse(n).ok_or_else(|| {
                let known: Vec<_> = AllocatorId::all().iter().map(|a| a.name()).collect();
                format!(
                    "unknown allocator '{n}' (compiled in: {}; snmalloc and rpmalloc need \
                     --features)",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// Parses the options of a run.
pub(crate) fn parse(args: &[String]) -> Result<Parsed<Options>, String> {
    let mut o = Options::default();
    let mut p = Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| format!("{e} (try --help)"))? {
        let name = shown(&arg);
        let name = name.as_str();
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(Parsed::Help),
            Arg::Long("compare") => o.compare = true,
            Arg::Long("thorough") => o.thorough = true,
            Arg::Long("no-footprint") => o.no_footprint = true,
            Arg::Long("no-latency") => o.no_latency = true,
            Arg::Long("no-memory") => o.no_memory = true,
            Arg::Long("memory-rounds") => o.memory_rounds = Some(number(&mut p, name)?),
            Arg::Long("allocators") => o.allocators = Some(allocator_list(&value(&mut p, name)?)?),
            Arg::Long("only") => o.only = list(&value(&mut p, name)?).map(String::from).collect(),
            Arg::Long("rounds") => o.rounds = Some(number(&mut p, name)?),
            Arg::Long("scale") => o.scale = Some(number(&mut p, name)?),
            Arg::Long("csv") => o.csv = Some(value(&mut p, name)?),
            Arg::Long("json") => o.json = Some(value(&mut p, name)?),
            Arg::Long("plot") => o.plot = Some(value(&mut p, name)?),
            Arg::Long("markdown") => o.markdown = Some(value(&mut p, name)?),
            _ => return Err(format!("unknown argument '{name}' (try --help)")),
        }
    }
    Ok(Parsed::Run(o))
}

/// Runs the `bench` command with `args` (without the program name).
pub fn main(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some(footprint::CHILD_COMMAND) => footprint::child_main(&args[1..]),
        Some("pair64") => match parse_pair64(&args[1..])? {
            Parsed::Help => {
                print!("{USAGE}");
                Ok(())
            }
            Parsed::Run(o) => pair64(o),
        },
        Some("list") => {
            list_cases();
            Ok(())
        }
        _ => match parse(args)? {
            Parsed::Help => {
                print!("{USAGE}");
                Ok(())
            }
            Parsed::Run(o) => run(o, args),
        },
    }
}

/// `bench list`: the allocators and every case.
fn list_cases() {
    for a in AllocatorId::all() {
        println!("allocator {:<9} {}", a.name(), a.description());
    }
    for c in workloads::cases(1.0, true) {
        println!("case {:<18} {} ops", c.name, c.ops);
    }
    println!(
        "latency {:<15} {} alloc and as many free calls timed one by one",
        "latency", LATENCY_CALLS
    );
    println!(
        "memory {:<16} {} blocks (child process)",
        "footprint",
        footprint::BLOCKS
    );
    for m in MemoryCase::ALL {
        let thorough = if m == MemoryCase::Phases {
            ", doubled with --thorough"
        } else {
            ""
        };
        println!(
            "memory {:<16} {} {} (child process{thorough})",
            m.name(),
            m.amount(1.0, false),
            m.amount_unit()
        );
    }
}

/// The main run: plan, measure, report. `args` are the command line's, for the Markdown
/// report's note of the command.
fn run(o: Options, args: &[String]) -> Result<(), String> {
    allocators::check_smalloc_reserved()?;
    let mut ids = match (&o.allocators, o.compare) {
        (Some(list), _) => list.clone(),
        (None, true) => AllocatorId::all(),
        (None, false) => vec![AllocatorId::Smalloc],
    };
    ids.retain(|&a| a != AllocatorId::Smalloc);
    ids.insert(0, AllocatorId::Smalloc);
    ids.dedup();
    let scale = o.scale.unwrap_or(1.0);
    if !scale.is_finite() || scale <= 0.0 {
        return Err("--scale must be positive".into());
    }
    // Whether --only selects the case (or report) called `name`.
    let selected =
        |name: &str| o.only.is_empty() || o.only.iter().any(|s| name.contains(s.as_str()));
    let mut cases = workloads::cases(scale, o.thorough);
    cases.retain(|c| selected(&c.name));
    let footprint = !o.no_footprint && selected("footprint");
    let latency_calls = if !o.no_latency && selected("latency") {
        ((LATENCY_CALLS as f64 * scale).round() as u64).max(1)
    } else {
        0
    };
    let memory: Vec<(MemoryCase, u64)> = MemoryCase::ALL
        .into_iter()
        .filter(|m| !o.no_memory && selected(m.name()))
        .map(|m| (m, m.amount(scale, o.thorough)))
        .collect();
    if cases.is_empty() && !footprint && latency_calls == 0 && memory.is_empty() {
        return Err("no case matches --only".into());
    }
    let rounds = o.rounds.unwrap_or(if o.compare { 7 } else { 3 }).max(1);
    let plan = Plan {
        allocators: ids,
        cases,
        rounds,
        latency_calls,
        footprint,
        memory,
        memory_rounds: o.memory_rounds.unwrap_or(MEMORY_ROUNDS).clamp(1, rounds),
        scale,
        thorough: o.thorough,
    };
    let results = runner::run(&plan)?;
    print!("{}", report::text(&results));
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|e| format!("cannot write {path}: {e}"))
    };
    if let Some(p) = &o.csv {
        write(p, report::csv(&results))?;
        eprintln!("wrote {p}");
    }
    if let Some(p) = &o.json {
        let text = serde_json::to_string_pretty(&report::json(&results))
            .map_err(|e| format!("cannot encode JSON: {e}"))?;
        write(p, text + "\n")?;
        eprintln!("wrote {p}");
    }
    if let Some(p) = &o.plot {
        crate::plot::render(&results, p)?;
        eprintln!("wrote {p}");
    }
    if let Some(p) = &o.markdown {
        let info = markdown::RunInfo::current(args);
        write(p, markdown::render(&results, &info))?;
        eprintln!("wrote {p}");
    }
    Ok(())
}

/// The options of `bench pair64`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Pair64 {
    pub(crate) id: AllocatorId,
    pub(crate) iters: u64,
    pub(crate) hold: usize,
    /// The size as a compile-time constant instead of a run-time value.
    pub(crate) fixed: bool,
}

/// Parses the options of `bench pair64` (`args` after `pair64`).
pub(crate) fn parse_pair64(args: &[String]) -> Result<Parsed<Pair64>, String> {
    let mut o = Pair64 {
        id: AllocatorId::Smalloc,
        iters: 1_000_000,
        hold: 0,
        fixed: false,
    };
    let mut p = Parser::from_args(args);
    while let Some(arg) = p.next().map_err(|e| format!("pair64: {e}"))? {
        let name = shown(&arg);
        let name = name.as_str();
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(Parsed::Help),
            Arg::Long("allocator") => {
                o.id = AllocatorId::parse(&value(&mut p, name)?)
                    .ok_or_else(|| format!("unknown allocator in {args:?}"))?
            }
            Arg::Long("iters") => o.iters = number(&mut p, name)?,
            Arg::Long("hold") => o.hold = number(&mut p, name)?,
            Arg::Long("fixed") => o.fixed = true,
            _ => return Err(format!("pair64: unknown argument '{name}'")),
        }
    }
    Ok(Parsed::Run(o))
}

/// `bench pair64`: the smallest program that exercises one allocator's 64-byte alloc/free pair,
/// so that `valgrind --tool=callgrind` run at two iteration counts gives instructions per pair
/// as the difference of the totals over the difference of the counts (startup cancels out).
fn pair64(o: Pair64) -> Result<(), String> {
    let Pair64 {
        id,
        iters,
        hold,
        fixed,
    } = o;
    if id == AllocatorId::Smalloc {
        allocators::check_smalloc_reserved()?;
        // Its blocks must come from its slabs, or the figure would not be smalloc's.
        if !allocators::smalloc_serves_from_slabs() {
            return Err("smalloc's 64 B block did not come from its slabs".into());
        }
    }
    let d = with_allocator!(id, |a| {
        // Blocks held during the loop shift which slot the pairs reuse (see README.md).
        let l = crate::workloads::common::layout(64);
        let held: Vec<*mut u8> = (0..hold)
            // SAFETY: a non-zero layout.
            .map(|_| unsafe { crate::workloads::common::alloc(a, l) })
            .collect();
        let d = if fixed {
            pair::run_fixed64(a, black_box(iters))
        } else {
            pair::run(a, 64, black_box(iters))
        };
        for p in held {
            // SAFETY: each held block is freed once, with its layout.
            unsafe { std::alloc::GlobalAlloc::dealloc(a, p, l) };
        }
        d
    });
    println!(
        "pair64 allocator={} iters={} hold={} fixed={} ns_per_pair={:.3}",
        id.name(),
        iters,
        hold,
        fixed,
        d.as_nanos() as f64 / iters.max(1) as f64
    );
    Ok(())
}
