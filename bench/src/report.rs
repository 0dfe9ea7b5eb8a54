//! Turns [`Results`] into the human tables (one per workload, then the summary) and the machine
//! formats (CSV with the `csv` crate, JSON with `serde_json`; both from the `Serialize` rows and
//! records below).
//!
//! Ratios are always smalloc's median over the peer's median, of ns/op or of MiB: below 1.00,
//! smalloc is faster (or smaller); above, the peer is.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::allocators::AllocatorId;
use crate::latency::PERCENTILES;
use crate::results::{MemoryResults, Results, Stats, geomean};
use crate::workloads::Workload;

/// A figure with about three significant digits.
pub(crate) fn num(x: f64) -> String {
    if x < 10.0 {
        format!("{x:.2}")
    } else if x < 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// `median [min-max]`.
fn cell(s: Option<Stats>) -> String {
    match s {
        Some(s) => format!("{} [{}-{}]", num(s.median), num(s.min), num(s.max)),
        None => "-".into(),
    }
}

/// A ratio as `0.52x`.
fn ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// Lays out rows of cells as a Markdown table (readable as plain text too), first column left
/// aligned, the others right aligned.
pub(crate) fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let width: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].chars().count(), 3])
                .max()
                .unwrap_or(3)
        })
        .collect();
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            if i == 0 {
                let _ = write!(s, " {c:<w$} |", w = width[i]);
            } else {
                let _ = write!(s, " {c:>w$} |", w = width[i]);
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header);
    out.push('|');
    for (i, w) in width.iter().enumerate() {
        // Markdown alignment: the first column left, the figures right.
        let end = if i == 0 { '-' } else { ':' };
        let _ = write!(out, " {}{end} |", "-".repeat(*w - 1));
    }
    out.push('\n');
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

/// The case name, starred when it runs more threads than there are CPUs.
pub(crate) fn case_label(r: &Results, c: usize) -> String {
    let case = &r.cases[c];
    if case.threads > r.cpus {
        format!("{}*", case.name)
    } else {
        case.name.clone()
    }
}

/// The full human report: header, one table per workload, footprint, summary.
pub fn text(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "smalloc bench: {} round(s), scale {}, {} CPU(s){}; measured in {:.0} s",
        r.rounds,
        r.scale,
        r.cpus,
        if r.thorough { ", thorough" } else { "" },
        r.wall_s
    );
    for &a in &r.allocators {
        let _ = writeln!(out, "  {:<9} {}", a.name(), a.description());
    }
    let _ = writeln!(
        out,
        "Cells: median ns/op [min-max over rounds]. Ratios: smalloc / peer (below 1.00x: smalloc \
         faster).\n* = more threads than CPUs (oversubscribed): contention, not scaling."
    );
    for w in Workload::ALL {
        let cs: Vec<usize> = (0..r.cases.len())
            .filter(|&c| r.cases[c].workload == w)
            .collect();
        if cs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n## {}: {}\n", w.name(), w.description());
        let labels: Vec<String> = cs.iter().map(|&c| case_label(r, c)).collect();
        out.push_str(&figure_tables(
            r,
            "case",
            &labels,
            |k, a| r.stats(cs[k], a),
            |k, a| r.ratio(cs[k], a),
        ));
    }
    if !r.latency.is_empty() {
        out.push_str(&latency_text(r));
    }
    if !r.footprint.is_empty() {
        out.push_str(&footprint_text(r));
    }
    for m in &r.memory {
        out.push_str(&memory_text(r, m));
    }
    if r.peers().next().is_some() && !r.cases.is_empty() {
        out.push_str(&summary_text(r));
    }
    if r.peers().next().is_some() && !r.side_labels().is_empty() {
        out.push_str(&side_summary_text(r));
    }
    out
}

/// The labels of the latency figures: `alloc p50` ... `free max`.
pub(crate) fn latency_labels() -> Vec<String> {
    ["alloc", "free"]
        .iter()
        .flat_map(|call| PERCENTILES.iter().map(move |(_, p)| format!("{call} {p}")))
        .collect()
}

/// The latency table: one row per figure, one column per allocator, then the ratios.
fn latency_text(r: &Results) -> String {
    let mut out = String::new();
    let clock = r.clock.clone().unwrap_or_default();
    let _ = writeln!(
        out,
        "\n## latency: single alloc and free calls of the mixed workload ({} live blocks, random \
         frees), {} of each per allocator and round, each timed alone; ns, median [min-max] over \
         rounds. Clock: {clock}; a pair of readings costs {} ns (median of {} back-to-back \
         pairs, measured before every reading; median [min-max] over them), included in every \
         figure: nothing is subtracted\n",
        crate::workloads::mixed::LIVE,
        r.latency_calls,
        cell(r.clock_overhead()),
        crate::clock::OVERHEAD_PAIRS,
    );
    out.push_str(&figure_tables(
        r,
        "call",
        &latency_labels(),
        |k, a| r.latency_stats(a, k),
        |k, a| r.latency_ratio(a, k),
    ));
    out
}

/// A table with one row per label and one column per allocator (`value(row, allocator)`), then,
/// when there are peers, the table of the smalloc / peer ratios (`ratio_of(row, peer)`).
fn figure_tables(
    r: &Results,
    first: &str,
    labels: &[String],
    value: impl Fn(usize, usize) -> Option<Stats>,
    ratio_of: impl Fn(usize, usize) -> Option<f64>,
) -> String {
    let mut header = vec![first.to_string()];
    header.extend(r.allocators.iter().map(|a| a.name().to_string()));
    let rows: Vec<Vec<String>> = labels
        .iter()
        .enumerate()
        .map(|(k, label)| {
            let mut row = vec![label.clone()];
            row.extend((0..r.allocators.len()).map(|a| cell(value(k, a))));
            row
        })
        .collect();
    let mut out = table(&header, &rows);
    if r.peers().next().is_some() {
        out.push('\n');
        let mut header = vec!["smalloc vs".to_string()];
        header.extend(r.peers().map(|(_, a)| a.name().to_string()));
        let rows: Vec<Vec<String>> = labels
            .iter()
            .enumerate()
            .map(|(k, label)| {
                let mut row = vec![label.clone()];
                row.extend(r.peers().map(|(a, _)| ratio(ratio_of(k, a))));
                row
            })
            .collect();
        out.push_str(&table(&header, &rows));
    }
    out
}

/// The table of one memory case: one row per allocator, its figures, then the ratios of the
/// figures that have one ("n/a" where the figure does not apply to the allocator).
fn memory_text(r: &Results, m: &MemoryResults) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## {}: {} (child process per allocator; median [min-max] over {} round(s))\n",
        m.case.name(),
        m.case.description(m.amount),
        m.readings.first().map_or(0, Vec::len),
    );
    let figures = m.case.figures();
    // Ratio columns only where there is a peer to compare with.
    let has_peers = r.peers().next().is_some();
    let compared: Vec<usize> = (0..figures.len())
        .filter(|&f| has_peers && figures[f].ratio.is_some())
        .collect();
    let mut header = vec!["allocator".to_string()];
    header.extend(figures.iter().map(|f| f.label.to_string()));
    header.extend(compared.iter().enumerate().map(|(i, &f)| {
        let label = figures[f].label;
        if i == 0 {
            format!("smalloc vs: {label}")
        } else {
            label.to_string()
        }
    }));
    let measured = |a: usize| m.readings.get(a).is_some_and(|v| !v.is_empty());
    let rows: Vec<Vec<String>> = r
        .allocators
        .iter()
        .enumerate()
        .filter(|&(a, _)| measured(a))
        .map(|(a, id)| {
            let mut row = vec![id.name().to_string()];
            row.extend((0..figures.len()).map(|f| match m.stats(a, f) {
                None => "n/a".to_string(),
                Some(s) if figures[f].unit == crate::memory::Unit::Kib => cell(Some(s)),
                // Bytes per block and counts: whole numbers, the median alone unless the rounds
                // differ.
                Some(s) if s.min == s.max => format!("{:.0}", s.median),
                Some(s) => format!("{:.0} [{:.0}-{:.0}]", s.median, s.min, s.max),
            }));
            row.extend(compared.iter().map(|&f| {
                if *id == AllocatorId::Smalloc {
                    String::new()
                } else if m.stats(a, f).is_none() {
                    "n/a".to_string()
                } else {
                    ratio(m.ratio(a, f))
                }
            }));
            row
        })
        .collect();
    out.push_str(&table(&header, &rows));
    out
}

/// The second summary: smalloc / peer for each memory figure with a ratio and for the tail
/// latency.
fn side_summary_text(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## summary, memory and tail latency: smalloc / peer of the medians (below 1.00x: \
         smalloc smaller or faster; n/a: the peer has no such figure)\n"
    );
    out.push_str(&side_summary_table(r));
    out
}

/// The second summary's table: one row per peer, one column per memory figure with a ratio and
/// per tail-latency figure.
pub(crate) fn side_summary_table(r: &Results) -> String {
    let mut header = vec!["peer".to_string()];
    header.extend(r.side_labels());
    let rows: Vec<Vec<String>> = r
        .peers()
        .map(|(a, id)| {
            let mut row = vec![id.name().to_string()];
            row.extend(
                r.side_ratios(a)
                    .into_iter()
                    .map(|x| x.map_or_else(|| "n/a".to_string(), |v| format!("{v:.2}x"))),
            );
            row
        })
        .collect();
    table(&header, &rows)
}

/// The footprint table.
fn footprint_text(r: &Results) -> String {
    let mut out = String::new();
    let req = r
        .footprint_stats(0)
        .map_or(0.0, |f| f.requested_peak)
        .round();
    let _ = writeln!(
        out,
        "\n## footprint: in a child process per allocator, {} blocks of the mixed sizes written \
         in full, half freed and replaced, then all freed; peak live requests {req} MiB\n",
        crate::footprint::BLOCKS
    );
    let header: Vec<String> = [
        "allocator",
        "baseline RSS MiB",
        "peak RSS MiB",
        "RSS after free MiB",
        "smalloc vs: peak",
        "after free",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = r
        .allocators
        .iter()
        .enumerate()
        .filter_map(|(a, id)| {
            let f = r.footprint_stats(a)?;
            let (rp, ra) = if *id == AllocatorId::Smalloc {
                ("".into(), "".into())
            } else {
                let rr = r.footprint_ratios(a);
                (ratio(rr.map(|x| x.0)), ratio(rr.map(|x| x.1)))
            };
            Some(vec![
                id.name().to_string(),
                num(f.baseline.median),
                cell(Some(f.peak)),
                cell(Some(f.after_free)),
                rp,
                ra,
            ])
        })
        .collect();
    out.push_str(&table(&header, &rows));
    out
}

/// One summary row per peer.
pub struct SummaryRow {
    /// The peer.
    pub peer: AllocatorId,
    /// Geometric mean of smalloc/peer time ratios over all timed cases.
    pub geomean: f64,
    /// Cases where smalloc was faster (ratio below 1).
    pub wins: usize,
    /// Cases compared.
    pub cases: usize,
    /// The case where smalloc fared worst against this peer, and its ratio.
    pub worst: (String, f64),
    /// Footprint ratios (peak, after free), if measured.
    pub footprint: Option<(f64, f64)>,
}

/// The summary rows, one per peer that has results.
pub fn summary(r: &Results) -> Vec<SummaryRow> {
    r.peers()
        .filter_map(|(a, peer)| {
            let ratios = r.ratios(a);
            let values: Vec<f64> = ratios.iter().map(|x| x.1).collect();
            let worst = ratios.iter().copied().max_by(|x, y| x.1.total_cmp(&y.1))?;
            Some(SummaryRow {
                peer,
                geomean: geomean(&values)?,
                wins: values.iter().filter(|&&v| v < 1.0).count(),
                cases: values.len(),
                worst: (r.cases[worst.0].name.clone(), worst.1),
                footprint: r.footprint_ratios(a),
            })
        })
        .collect()
}

/// The summary: its title and table.
fn summary_text(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## summary: smalloc / peer, geometric mean of the time ratios over all {} timed cases \
         (below 1.00x: smalloc faster)\n",
        r.cases.len()
    );
    out.push_str(&summary_table(r));
    out
}

/// The summary's table: one row per peer.
pub(crate) fn summary_table(r: &Results) -> String {
    let header: Vec<String> = [
        "peer",
        "time geomean",
        "smalloc faster in",
        "smalloc's worst case",
        "peak RSS",
        "RSS after free",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = summary(r)
        .into_iter()
        .map(|s| {
            vec![
                s.peer.name().to_string(),
                format!("{:.2}x", s.geomean),
                format!("{}/{}", s.wins, s.cases),
                format!("{} {:.2}x", s.worst.0, s.worst.1),
                ratio(s.footprint.map(|f| f.0)),
                ratio(s.footprint.map(|f| f.1)),
            ]
        })
        .collect();
    table(&header, &rows)
}

/// A figure written with a fixed number of decimals (`{:.N}`) in the CSV, so that a column
/// reads alike from line to line.
struct Fixed(f64, usize);

impl Serialize for Fixed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.*}", self.1, self.0))
    }
}

/// The CSV's header: the fields of [`CsvRow`], in order.
const CSV_COLUMNS: [&str; 11] = [
    "workload",
    "case",
    "threads",
    "ops",
    "unit",
    "allocator",
    "median",
    "min",
    "max",
    "samples",
    "smalloc_over_this",
];

/// One line of the CSV: a figure of one allocator, its fields as [`CSV_COLUMNS`] names them.
#[derive(Serialize)]
struct CsvRow<'a> {
    workload: &'a str,
    case: String,
    threads: u64,
    ops: u64,
    unit: &'a str,
    allocator: &'a str,
    median: Fixed,
    min: Fixed,
    max: Fixed,
    samples: usize,
    /// Empty where there is no ratio (smalloc's own line, or a figure without one).
    smalloc_over_this: Option<Fixed>,
}

impl<'a> CsvRow<'a> {
    /// The line of `s` (shown with `decimals`) from `samples` readings of `allocator`, ratio
    /// `ratio`; `what` is (workload, case, threads, ops, unit).
    fn new(
        what: (&'a str, String, u64, u64, &'a str),
        allocator: AllocatorId,
        s: Stats,
        decimals: usize,
        samples: usize,
        ratio: Option<f64>,
    ) -> Self {
        let (workload, case, threads, ops, unit) = what;
        CsvRow {
            workload,
            case,
            threads,
            ops,
            unit,
            allocator: allocator.name(),
            median: Fixed(s.median, decimals),
            min: Fixed(s.min, decimals),
            max: Fixed(s.max, decimals),
            samples,
            smalloc_over_this: ratio.map(|v| Fixed(v, 4)),
        }
    }
}

/// One CSV line per (case, allocator), per (footprint figure, allocator), per (latency figure,
/// allocator) and per (memory figure, allocator), after a header line.
pub fn csv(r: &Results) -> String {
    let mut rows = Vec::new();
    for (c, case) in r.cases.iter().enumerate() {
        for (a, &id) in r.allocators.iter().enumerate() {
            let Some(s) = r.stats(c, a) else { continue };
            let what = (
                case.workload.name(),
                case.name.clone(),
                case.threads as u64,
                case.ops,
                "ns/op",
            );
            rows.push(CsvRow::new(
                what,
                id,
                s,
                3,
                r.samples[c][a].len(),
                r.ratio(c, a),
            ));
        }
    }
    for (a, &id) in r.allocators.iter().enumerate() {
        let Some(f) = r.footprint_stats(a) else {
            continue;
        };
        let rr = r.footprint_ratios(a);
        for (name, s, rv) in [
            ("footprint-peak-rss", f.peak, rr.map(|x| x.0)),
            ("footprint-rss-after-free", f.after_free, rr.map(|x| x.1)),
        ] {
            let what = ("footprint", name.to_string(), 1, 0, "MiB");
            rows.push(CsvRow::new(what, id, s, 2, r.footprint[a].len(), rv));
        }
    }
    for (k, label) in latency_labels().iter().enumerate() {
        for (a, &id) in r.allocators.iter().enumerate() {
            let Some(s) = r.latency_stats(a, k) else {
                continue;
            };
            let case = format!("latency-{}", label.replace(' ', "-"));
            let what = ("latency", case, 1, r.latency_calls, "ns");
            let ratio = r.latency_ratio(a, k);
            rows.push(CsvRow::new(what, id, s, 2, r.latency[a].len(), ratio));
        }
    }
    for m in &r.memory {
        let threads = if m.case == crate::memory::MemoryCase::ThpThreads {
            m.amount
        } else {
            1
        };
        for (f, fig) in m.case.figures().iter().enumerate() {
            for (a, &id) in r.allocators.iter().enumerate() {
                let Some(s) = m.stats(a, f) else { continue };
                let case = format!("{}-{}", m.case.name(), fig.key);
                let what = (m.case.name(), case, threads, 0, fig.unit.name());
                let ratio = m.ratio(a, f).filter(|_| fig.ratio.is_some());
                rows.push(CsvRow::new(what, id, s, 2, m.readings[a].len(), ratio));
            }
        }
    }
    // The header is written even when there is no row (the crate's own header comes with the
    // first row).
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    // Plain strings and numbers into memory: nothing here can fail.
    w.write_record(CSV_COLUMNS)
        .expect("writing to memory cannot fail");
    for row in rows {
        w.serialize(row).expect("a CSV row serializes");
    }
    let bytes = w.into_inner().expect("writing to memory cannot fail");
    String::from_utf8(bytes).expect("every CSV field is UTF-8")
}

/// The JSON report: the run's settings, then every figure with its raw samples.
#[derive(Serialize)]
struct JsonReport<'a> {
    rounds: usize,
    scale: f64,
    thorough: bool,
    cpus: usize,
    wall_s: f64,
    allocators: Vec<JsonAllocator>,
    ratio: &'static str,
    cases: Vec<JsonCase<'a>>,
    footprint: BTreeMap<&'static str, JsonFootprint>,
    latency: JsonLatency<'a>,
    memory: Vec<JsonMemory>,
    summary: Vec<JsonSummary>,
    summary_memory_and_latency: BTreeMap<&'static str, BTreeMap<String, Option<f64>>>,
}

/// An allocator of the run.
#[derive(Serialize)]
struct JsonAllocator {
    name: &'static str,
    description: &'static str,
}

/// A timed case, with a result per allocator (keyed by name).
#[derive(Serialize)]
struct JsonCase<'a> {
    workload: &'static str,
    case: &'a str,
    threads: usize,
    ops: u64,
    results: BTreeMap<&'static str, JsonCaseResult<'a>>,
}

/// One allocator's figures of a timed case.
#[derive(Serialize)]
struct JsonCaseResult<'a> {
    ns_per_op: Stats,
    samples_ns_per_op: &'a [f64],
    smalloc_over_this: Option<f64>,
}

/// One allocator's footprint figures, MiB.
#[derive(Serialize)]
struct JsonFootprint {
    baseline_rss_mib: Stats,
    peak_rss_mib: Stats,
    rss_after_free_mib: Stats,
    requested_peak_mib: f64,
    smalloc_over_this_peak: Option<f64>,
    smalloc_over_this_after_free: Option<f64>,
}

/// The latency report: the clock, then per allocator (keyed by name) its figures (keyed by
/// `alloc_p50` ... `free_max`).
#[derive(Serialize)]
struct JsonLatency<'a> {
    clock: &'a Option<String>,
    clock_overhead_ns: Option<Stats>,
    calls_per_round: u64,
    results: BTreeMap<&'static str, BTreeMap<String, JsonLatencyFigure>>,
}

/// One latency figure of one allocator, ns.
#[derive(Serialize)]
struct JsonLatencyFigure {
    ns: Stats,
    samples_ns: Vec<f64>,
    smalloc_over_this: Option<f64>,
}

/// A memory case, with per allocator (keyed by name) its figures (keyed by [`Figure::key`]).
///
/// [`Figure::key`]: crate::memory::Figure::key
#[derive(Serialize)]
struct JsonMemory {
    case: &'static str,
    amount: u64,
    description: String,
    results: BTreeMap<&'static str, BTreeMap<&'static str, JsonMemoryFigure>>,
}

/// One figure of a memory case for one allocator, in its unit (`null` where it does not apply).
#[derive(Serialize)]
struct JsonMemoryFigure {
    unit: &'static str,
    stats: Option<Stats>,
    samples: Vec<Option<f64>>,
    smalloc_over_this: Option<f64>,
}

/// A line of the summary.
#[derive(Serialize)]
struct JsonSummary {
    peer: &'static str,
    time_geomean_smalloc_over_peer: f64,
    cases_smalloc_faster: usize,
    cases: usize,
    worst_case: String,
    worst_ratio: f64,
    footprint_peak_ratio: Option<f64>,
    footprint_after_free_ratio: Option<f64>,
}

/// Everything, raw samples included, for `serde_json`.
pub fn json(r: &Results) -> impl Serialize + '_ {
    let cases = r
        .cases
        .iter()
        .enumerate()
        .map(|(c, case)| JsonCase {
            workload: case.workload.name(),
            case: &case.name,
            threads: case.threads,
            ops: case.ops,
            results: r
                .allocators
                .iter()
                .enumerate()
                .filter_map(|(a, id)| {
                    let result = JsonCaseResult {
                        ns_per_op: r.stats(c, a)?,
                        samples_ns_per_op: &r.samples[c][a],
                        smalloc_over_this: r.ratio(c, a),
                    };
                    Some((id.name(), result))
                })
                .collect(),
        })
        .collect();
    let footprint = r
        .allocators
        .iter()
        .enumerate()
        .filter_map(|(a, id)| {
            let f = r.footprint_stats(a)?;
            let rr = r.footprint_ratios(a);
            let figures = JsonFootprint {
                baseline_rss_mib: f.baseline,
                peak_rss_mib: f.peak,
                rss_after_free_mib: f.after_free,
                requested_peak_mib: f.requested_peak,
                smalloc_over_this_peak: rr.map(|x| x.0),
                smalloc_over_this_after_free: rr.map(|x| x.1),
            };
            Some((id.name(), figures))
        })
        .collect();
    let labels = latency_labels();
    let latency = r
        .allocators
        .iter()
        .enumerate()
        .map(|(a, id)| {
            let per: BTreeMap<String, JsonLatencyFigure> = labels
                .iter()
                .enumerate()
                .filter_map(|(k, label)| {
                    let figure = JsonLatencyFigure {
                        ns: r.latency_stats(a, k)?,
                        samples_ns: r.latency_samples(a, k).unwrap_or_default(),
                        smalloc_over_this: r.latency_ratio(a, k),
                    };
                    Some((label.replace(' ', "_"), figure))
                })
                .collect();
            (id.name(), per)
        })
        .filter(|(_, per)| !per.is_empty())
        .collect();
    let memory = r
        .memory
        .iter()
        .map(|m| {
            let figures = m.case.figures();
            let per_allocator = |a: usize| {
                figures
                    .iter()
                    .enumerate()
                    .map(|(f, fig)| {
                        let figure = JsonMemoryFigure {
                            unit: fig.unit.name(),
                            stats: m.stats(a, f),
                            samples: m.readings[a]
                                .iter()
                                .map(|round| round[f].map(|v| fig.unit.show(v)))
                                .collect(),
                            smalloc_over_this: m.ratio(a, f).filter(|_| fig.ratio.is_some()),
                        };
                        (fig.key, figure)
                    })
                    .collect()
            };
            JsonMemory {
                case: m.case.name(),
                amount: m.amount,
                description: m.case.description(m.amount),
                results: r
                    .allocators
                    .iter()
                    .enumerate()
                    .map(|(a, id)| (id.name(), per_allocator(a)))
                    .collect(),
            }
        })
        .collect();
    let side_labels = r.side_labels();
    let side = r
        .peers()
        .map(|(a, id)| {
            let ratios = side_labels.iter().cloned().zip(r.side_ratios(a)).collect();
            (id.name(), ratios)
        })
        .collect();
    let summary = summary(r)
        .into_iter()
        .map(|s| JsonSummary {
            peer: s.peer.name(),
            time_geomean_smalloc_over_peer: s.geomean,
            cases_smalloc_faster: s.wins,
            cases: s.cases,
            worst_case: s.worst.0,
            worst_ratio: s.worst.1,
            footprint_peak_ratio: s.footprint.map(|f| f.0),
            footprint_after_free_ratio: s.footprint.map(|f| f.1),
        })
        .collect();
    JsonReport {
        rounds: r.rounds,
        scale: r.scale,
        thorough: r.thorough,
        cpus: r.cpus,
        wall_s: r.wall_s,
        allocators: r
            .allocators
            .iter()
            .map(|a| JsonAllocator {
                name: a.name(),
                description: a.description(),
            })
            .collect(),
        ratio: "smalloc median / peer median; below 1: smalloc faster or smaller",
        cases,
        footprint,
        latency: JsonLatency {
            clock: &r.clock,
            clock_overhead_ns: r.clock_overhead(),
            calls_per_round: r.latency_calls,
            results: latency,
        },
        memory,
        summary,
        summary_memory_and_latency: side,
    }
}
