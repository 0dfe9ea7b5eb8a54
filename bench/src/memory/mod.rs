//! The memory cases: resident-set figures of programs that users of allocators run, each measured
//! in a child process per allocator, as [`footprint`] is (the same re-executed
//! bench binary and hidden subcommand, with the case's name and amount as further arguments).
//!
//! | case | module |
//! | --- | --- |
//! | `realloc-strings` | [`realloc_strings`] |
//! | `phases` | [`phases`] |
//! | `trim` | [`trim`] |
//! | `thp-threads` | [`thp`] |
//!
//! A child prints one line, `memory` and its figures (`-` for one that does not apply), which the
//! parent reads back into a list of `Option<u64>` in the order of [`MemoryCase::figures`].

pub mod block_list;
pub mod phases;
pub mod realloc_strings;
pub mod thp;
pub mod trim;

use crate::allocators::AllocatorId;
use crate::footprint;
use crate::with_allocator;

/// The prefix of a memory child's reading line.
const TAG: &str = "memory";

/// One memory case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryCase {
    /// [`realloc_strings`].
    ReallocStrings,
    /// [`phases`].
    Phases,
    /// [`trim`].
    Trim,
    /// [`thp`].
    ThpThreads,
}

/// How a figure is read and shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Read in KiB (as `/proc/self/status` has it), shown in MiB.
    Kib,
    /// Bytes.
    Bytes,
    /// A count.
    Count,
}

impl Unit {
    /// A reading in the unit it is shown in.
    pub fn show(self, raw: u64) -> f64 {
        match self {
            Unit::Kib => raw as f64 / 1024.0,
            Unit::Bytes | Unit::Count => raw as f64,
        }
    }

    /// The unit's name in CSV and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Unit::Kib => "MiB",
            Unit::Bytes => "B",
            Unit::Count => "count",
        }
    }
}

/// One figure a memory case reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Figure {
    /// Key in CSV and JSON, e.g. `rss-end`.
    pub key: &'static str,
    /// Column header in the report.
    pub label: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// `Some(column header)` if the smalloc / peer ratio of this figure is reported (in the
    /// case's table and in the memory summary).
    pub ratio: Option<&'static str>,
}

/// Shorthand for the figure tables below.
const fn fig(key: &'static str, label: &'static str, unit: Unit) -> Figure {
    Figure {
        key,
        label,
        unit,
        ratio: None,
    }
}

/// [`fig`] with its ratio reported under `summary`.
const fn compared(
    key: &'static str,
    label: &'static str,
    unit: Unit,
    summary: &'static str,
) -> Figure {
    Figure {
        key,
        label,
        unit,
        ratio: Some(summary),
    }
}

const REALLOC_STRINGS: [Figure; 3] = [
    fig("rss-baseline", "baseline RSS MiB", Unit::Kib),
    fig("rss-with-strings", "RSS with strings MiB", Unit::Kib),
    compared(
        "rss-per-string",
        "RSS per string B",
        Unit::Bytes,
        "realloc-strings",
    ),
];

const PHASES: [Figure; 4] = [
    fig("rss-baseline", "baseline RSS MiB", Unit::Kib),
    fig("rss-after-phase-1", "RSS after phase 1 MiB", Unit::Kib),
    compared("rss-end", "RSS at end MiB", Unit::Kib, "phases end"),
    compared("rss-peak", "peak RSS MiB", Unit::Kib, "phases peak"),
];

const TRIM: [Figure; 4] = [
    fig("rss-baseline", "baseline RSS MiB", Unit::Kib),
    fig("rss-peak", "peak RSS MiB", Unit::Kib),
    fig("rss-after-free", "RSS after free MiB", Unit::Kib),
    compared(
        "rss-after-trim",
        "RSS after trim MiB",
        Unit::Kib,
        "after trim",
    ),
];

const THP: [Figure; 5] = [
    fig("rss-baseline", "baseline RSS MiB", Unit::Kib),
    fig("rss-with-blocks", "RSS with blocks MiB", Unit::Kib),
    compared(
        "rss-after-collapse",
        "RSS after collapse MiB",
        Unit::Kib,
        "thp-threads",
    ),
    fig("ranges-collapsed", "2 MiB ranges collapsed", Unit::Count),
    fig("ranges", "of ranges", Unit::Count),
];

impl MemoryCase {
    /// Every memory case, in report order.
    pub const ALL: [MemoryCase; 4] = [
        MemoryCase::ReallocStrings,
        MemoryCase::Phases,
        MemoryCase::Trim,
        MemoryCase::ThpThreads,
    ];

    /// The case's name (on the command line, in `--only` and in every report).
    pub fn name(self) -> &'static str {
        match self {
            MemoryCase::ReallocStrings => "realloc-strings",
            MemoryCase::Phases => "phases",
            MemoryCase::Trim => "trim",
            MemoryCase::ThpThreads => "thp-threads",
        }
    }

    /// Looks a case up by name.
    pub fn parse(name: &str) -> Option<MemoryCase> {
        MemoryCase::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Its amount of work: strings, bytes per phase, bytes, threads. `scale` multiplies it (but
    /// for `thp-threads`, whose point is the thread count); `thorough` doubles `phases`.
    pub fn amount(self, scale: f64, thorough: bool) -> u64 {
        let n = |base: u64| ((base as f64 * scale).round() as u64).max(1);
        match self {
            MemoryCase::ReallocStrings => n(200_000),
            MemoryCase::Phases => n(if thorough { 2 << 30 } else { 1 << 30 }),
            MemoryCase::Trim => n(1 << 30),
            MemoryCase::ThpThreads => thp::THREADS as u64,
        }
    }

    /// What the amount counts (for `bench list`).
    pub fn amount_unit(self) -> &'static str {
        match self {
            MemoryCase::ReallocStrings => "strings",
            MemoryCase::Phases => "B per phase",
            MemoryCase::Trim => "B",
            MemoryCase::ThpThreads => "threads",
        }
    }

    /// The figures its child reports, in order.
    pub fn figures(self) -> &'static [Figure] {
        match self {
            MemoryCase::ReallocStrings => &REALLOC_STRINGS,
            MemoryCase::Phases => &PHASES,
            MemoryCase::Trim => &TRIM,
            MemoryCase::ThpThreads => &THP,
        }
    }

    /// One line saying what it measures (the title of its table; the same as in README.md).
    pub fn description(self, amount: u64) -> String {
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        match self {
            MemoryCase::ReallocStrings => format!(
                "{amount} strings, each grown by realloc from 8 B, doubling, to {} B and written, \
                 all kept alive; resident set increase per string",
                realloc_strings::FINAL_SIZE
            ),
            MemoryCase::Phases => format!(
                "{:.0} MiB of {}-{} B blocks allocated, written and freed, then {:.0} MiB of \
                 {}-{} B blocks; resident set at the end and peak",
                mib(amount),
                phases::SIZES[0].0,
                phases::SIZES[0].1,
                mib(amount),
                phases::SIZES[1].0,
                phases::SIZES[1].1,
            ),
            MemoryCase::Trim => format!(
                "{:.0} MiB of {} B blocks allocated, written and freed, then the allocator's trim \
                 (smalloc trim, malloc_trim(0), mi_collect(true), jemalloc arena purge); \
                 resident set after it",
                mib(amount),
                trim::BLOCK
            ),
            MemoryCase::ThpThreads => format!(
                "{amount} threads each hold {} blocks of each of {:?} B, then \
                 madvise(MADV_COLLAPSE) on the 2 MiB around every block (THP 'always' \
                 simulated); resident set after it",
                thp::PER_CLASS,
                thp::SIZES
            ),
        }
    }

    /// Runs the case in this process through allocator `id` and returns its figures (see
    /// [`MemoryCase::figures`]).
    pub fn measure(self, id: AllocatorId, amount: u64) -> Vec<Option<u64>> {
        with_allocator!(id, |a| match self {
            MemoryCase::ReallocStrings => realloc_strings::measure(a, amount),
            MemoryCase::Phases => phases::measure(a, amount),
            MemoryCase::Trim => trim::measure(id, a, amount),
            MemoryCase::ThpThreads => thp::measure(a, amount as usize),
        })
    }
}

/// The child's side: runs case `name` with `amount` through `id` and prints its reading line.
pub fn child_main(id: AllocatorId, name: &str, amount: &str) -> Result<(), String> {
    let case = MemoryCase::parse(name).ok_or_else(|| format!("unknown memory case {name}"))?;
    let amount = amount
        .parse()
        .map_err(|_| format!("memory case {name}: bad amount '{amount}'"))?;
    let words: Vec<String> = case
        .measure(id, amount)
        .into_iter()
        .map(|f| f.map_or_else(|| "-".to_string(), |v| v.to_string()))
        .collect();
    println!("{TAG} {}", words.join(" "));
    Ok(())
}

/// The parent's side: runs case `case` with `amount` in a child process for allocator `id` and
/// returns its figures.
pub fn run_child(
    id: AllocatorId,
    case: MemoryCase,
    amount: u64,
) -> Result<Vec<Option<u64>>, String> {
    let who = format!("{} child for {id}", case.name());
    let words =
        footprint::child_reading(&[id.name(), case.name(), &amount.to_string()], TAG, &who)?;
    parse_figures(case, &words).map_err(|e| format!("{who}: {e}"))
}

/// Reads the words of a child's reading line back into figures (`-`: `None`), checking that there
/// are as many as `case` reports.
pub fn parse_figures(case: MemoryCase, words: &[String]) -> Result<Vec<Option<u64>>, String> {
    let figures = words
        .iter()
        .map(|w| match w.as_str() {
            "-" => Ok(None),
            w => w
                .parse()
                .map(Some)
                .map_err(|e| format!("bad reading {w}: {e}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if figures.len() != case.figures().len() {
        return Err(format!(
            "{} figures instead of {}: {words:?}",
            figures.len(),
            case.figures().len()
        ));
    }
    Ok(figures)
}
