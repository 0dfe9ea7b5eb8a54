//! Unit tests of the harness: statistics, case list, reports, plot, and a smoke run of every
//! workload through smalloc and the system allocator at a tiny scale (the workloads check the
//! memory they are given, so this also catches a broken allocator path).

use crate::allocators::{self, AllocatorId, SMALLOC, SYSTEM};
use crate::cli::{self, Options, Pair64, Parsed};
use crate::footprint::Footprint;
use crate::latency::{self, Latency, percentile};
use crate::markdown::{self, RunInfo};
use crate::memory::{self, MemoryCase};
use crate::results::{MemoryResults, Results, Stats, geomean};
use crate::rng::Rng;
use crate::workloads::{self, Workload, ring, thread_churn};
use crate::{plot, report, runner};

#[test]
fn median_of_odd_and_even_counts() {
    let s = Stats::of(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
    let s = Stats::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    assert!(Stats::of(&[]).is_none());
}

#[test]
fn geometric_mean_balances_inverse_ratios() {
    let g = geomean(&[2.0, 0.5]).unwrap();
    assert!((g - 1.0).abs() < 1e-12);
    let g = geomean(&[4.0]).unwrap();
    assert!((g - 4.0).abs() < 1e-12);
    assert!(geomean(&[]).is_none());
}

#[test]
fn rng_stays_in_range_and_shuffles_into_a_permutation() {
    let mut rng = Rng::new(0);
    for _ in 0..10_000 {
        let x = rng.range(8, 64);
        assert!((8..=64).contains(&x));
    }
    let mut v: Vec<u32> = (0..1000).collect();
    rng.shuffle(&mut v);
    assert_ne!(v, (0..1000).collect::<Vec<_>>());
    v.sort_unstable();
    assert_eq!(v, (0..1000).collect::<Vec<_>>());
}

#[test]
fn case_names_are_unique_and_thorough_adds_the_slow_cases() {
    let quick = workloads::cases(1.0, false);
    let thorough = workloads::cases(1.0, true);
    let mut names: Vec<&str> = thorough.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), thorough.len());
    assert_eq!(thorough.len(), quick.len() + 2);
    assert!(thorough.iter().any(|c| c.name == "multi-thread-1024"));
    for w in Workload::ALL {
        assert!(quick.iter().any(|c| c.workload == w), "{w:?} has no case");
    }
}

#[test]
fn every_case_runs_through_smalloc_and_the_system_allocator() {
    allocators::check_smalloc_reserved().unwrap();
    assert!(allocators::smalloc_serves_from_slabs());
    for case in workloads::cases(0.0005, false) {
        for id in [AllocatorId::Smalloc, AllocatorId::System] {
            let ns = runner::time_case(id, &case);
            assert!(ns.is_finite() && ns >= 0.0, "{} {id}: {ns}", case.name);
        }
    }
}

/// Results shaped like a real run's, with made-up figures: only the arithmetic and layout of
/// the reports are under test here.
fn sample_results() -> Results {
    let cases = workloads::cases(1.0, false);
    let allocators = vec![AllocatorId::Smalloc, AllocatorId::System];
    let samples = cases
        .iter()
        .map(|_| vec![vec![1.0, 2.0, 3.0], vec![4.0, 4.0, 4.0]])
        .collect();
    let fp = |peak, after| Footprint {
        baseline_kib: 1024,
        peak_kib: peak,
        after_free_kib: after,
        requested_peak: 50 << 20,
    };
    Results {
        allocators,
        cases,
        samples,
        footprint: vec![vec![fp(2048, 2048)], vec![fp(4096, 1024)]],
        latency: Vec::new(),
        clock: None,
        latency_calls: 0,
        memory: Vec::new(),
        rounds: 3,
        scale: 1.0,
        thorough: false,
        cpus: 2,
        wall_s: 1.0,
    }
}

#[test]
fn ratios_summary_and_machine_formats() {
    let r = sample_results();
    assert_eq!(r.ratio(0, 1), Some(0.5));
    assert_eq!(r.footprint_ratios(1), Some((0.5, 2.0)));
    let s = report::summary(&r);
    assert_eq!(s.len(), 1);
    assert!((s[0].geomean - 0.5).abs() < 1e-12);
    assert_eq!(s[0].wins, r.cases.len());

    let text = report::text(&r);
    assert!(text.contains("| pair-8 "));
    assert!(text.contains("0.50x"));
    assert!(
        text.contains("multi-thread-32*"),
        "oversubscribed cases are starred"
    );

    let csv = report::csv(&r);
    // Header, two allocators per case, two footprint figures per allocator.
    assert_eq!(csv.lines().count(), 1 + 2 * r.cases.len() + 4);
    assert!(csv.contains("pair,pair-8,1,4000000,ns/op,system,4.000,4.000,4.000,3,0.5000"));

    let json = serde_json::to_value(report::json(&r)).unwrap();
    assert_eq!(json["cases"].as_array().unwrap().len(), r.cases.len());
    assert_eq!(json["summary"][0]["peer"], "system");
}

#[test]
fn plot_renders_an_svg() {
    let r = sample_results();
    let path = std::env::temp_dir().join(format!("bench-plot-{}.svg", std::process::id()));
    let path = path.to_str().unwrap();
    plot::render(&r, path).unwrap();
    let svg = std::fs::read_to_string(path).unwrap();
    std::fs::remove_file(path).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("pair-64") && svg.contains("system"));
}

#[test]
fn clock_overhead_is_small_and_calibrated() {
    let c = crate::clock::Clock::get();
    eprintln!("{} overhead {} ns", c.description(), c.overhead_ns());
    let t0 = c.now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let ns = c.ns(c.now() - t0);
    assert!((15e6..200e6).contains(&ns), "20 ms read as {ns} ns");
    assert!(c.overhead_ns() > 0.0 && c.overhead_ns() < 10_000.0);
}

#[test]
fn thread_churn_hands_blocks_from_thread_to_thread() {
    allocators::check_smalloc_reserved().unwrap();
    // Two threads per lane: every second thread frees blocks its predecessor allocated.
    let threads = 2 * thread_churn::LANES;
    assert!(thread_churn::run(&SMALLOC, threads) > std::time::Duration::ZERO);
    assert!(thread_churn::run(&SYSTEM, threads) > std::time::Duration::ZERO);
}

#[test]
fn ring_passes_every_block_to_the_next_thread() {
    allocators::check_smalloc_reserved().unwrap();
    // More blocks than a ring holds, so senders wait for room; odd and even thread counts.
    for threads in [ring::THREADS, 3] {
        assert!(ring::run(&SMALLOC, threads, 10_000) > std::time::Duration::ZERO);
        assert!(ring::run(&SYSTEM, threads, 10_000) > std::time::Duration::ZERO);
    }
}

#[test]
fn percentiles_by_nearest_rank() {
    let v: Vec<u64> = (1..=1000).collect();
    assert_eq!(percentile(&v, 0.5), 500);
    assert_eq!(percentile(&v, 0.99), 990);
    assert_eq!(percentile(&v, 0.999), 999);
    assert_eq!(percentile(&v, 1.0), 1000);
    assert_eq!(percentile(&[7], 0.999), 7);
    assert_eq!(percentile(&[], 0.5), 0);
}

#[test]
fn latency_percentiles_are_ordered_and_include_the_clock() {
    allocators::check_smalloc_reserved().unwrap();
    for l in [
        latency::measure(&SMALLOC, 20_000),
        latency::measure(&SYSTEM, 20_000),
    ] {
        for p in [l.alloc_ns, l.free_ns] {
            assert!(p.windows(2).all(|w| w[0] <= w[1]), "{p:?}");
            assert!(p[0] > 0.0, "{p:?}");
        }
        assert!(l.clock_overhead_ns > 0.0);
    }
}

#[test]
fn every_allocator_but_upstream_has_a_trim() {
    for id in AllocatorId::all() {
        let expected = matches!(
            id,
            AllocatorId::Smalloc
                | AllocatorId::System
                | AllocatorId::Mimalloc
                | AllocatorId::Jemalloc
        );
        assert_eq!(id.trim(), expected, "{id}");
    }
}

#[test]
fn memory_cases_run_in_process_at_a_tiny_scale() {
    allocators::check_smalloc_reserved().unwrap();
    for case in MemoryCase::ALL {
        let amount = case.amount(0.001, false);
        for id in [
            AllocatorId::Smalloc,
            AllocatorId::System,
            AllocatorId::Upstream,
        ] {
            let f = case.measure(id, amount);
            assert_eq!(f.len(), case.figures().len(), "{} {id}", case.name());
            // The baseline comes first in every case and is always there.
            assert!(f[0].unwrap() > 0, "{} {id}: {f:?}", case.name());
            let words: Vec<String> = f
                .iter()
                .map(|x| x.map_or("-".into(), |v| v.to_string()))
                .collect();
            assert_eq!(memory::parse_figures(case, &words).unwrap(), f);
            match case {
                MemoryCase::Trim => assert_eq!(f[3].is_some(), id != AllocatorId::Upstream),
                MemoryCase::ThpThreads => {
                    assert!(f[3].unwrap() <= f[4].unwrap());
                    assert!(f[4].unwrap() >= 1);
                }
                _ => assert!(f.iter().all(Option::is_some)),
            }
        }
    }
    assert!(memory::parse_figures(MemoryCase::Trim, &["1".into()]).is_err());
}

/// [`sample_results`] with latency readings and one memory case (made-up figures again).
fn sample_results_with_extras() -> Results {
    let mut r = sample_results();
    let lat = |x: f64| Latency {
        alloc_ns: [x, 2.0 * x, 4.0 * x, 8.0 * x],
        free_ns: [x, 3.0 * x, 9.0 * x, 27.0 * x],
        clock_overhead_ns: 20.0,
    };
    r.latency = vec![vec![lat(10.0)], vec![lat(20.0)]];
    r.clock = Some("test clock".into());
    r.latency_calls = 1000;
    r.memory = vec![MemoryResults {
        case: MemoryCase::Trim,
        amount: 1 << 20,
        readings: vec![
            vec![vec![Some(1024), Some(4096), Some(2048), Some(1024)]],
            vec![vec![Some(1024), Some(4096), Some(2048), None]],
        ],
    }];
    r
}

#[test]
fn latency_and_memory_reports() {
    let r = sample_results_with_extras();
    assert_eq!(r.latency_ratio(1, 2), Some(0.5));
    assert_eq!(r.side_labels(), ["after trim", "alloc p99.9", "free p99.9"]);
    assert_eq!(r.side_ratios(1), [None, Some(0.5), Some(0.5)]);

    let text = report::text(&r);
    assert!(text.contains("## latency"), "{text}");
    assert!(text.contains("| alloc p99.9 "));
    assert!(text.contains("## trim"));
    assert!(text.contains("n/a"));
    assert!(text.contains("## summary, memory and tail latency"));

    let csv = report::csv(&r);
    let base = 1 + 2 * r.cases.len() + 4;
    // Eight latency figures for two allocators; four trim figures for smalloc, three for system.
    assert_eq!(csv.lines().count(), base + 16 + 7);
    assert!(
        csv.contains("latency,latency-alloc-p99.9,1,1000,ns,system,80.00,80.00,80.00,1,0.5000")
    );
    assert!(csv.contains("trim,trim-rss-after-trim,1,0,MiB,smalloc,1.00,1.00,1.00,1,"));

    let json = serde_json::to_value(report::json(&r)).unwrap();
    assert_eq!(
        json["latency"]["results"]["system"]["alloc_p99.9"]["ns"]["median"],
        80.0
    );
    assert_eq!(json["memory"][0]["case"], "trim");
    assert!(json["summary_memory_and_latency"]["system"]["after trim"].is_null());

    let path = std::env::temp_dir().join(format!("bench-plot-x-{}.svg", std::process::id()));
    let path = path.to_str().unwrap();
    plot::render(&r, path).unwrap();
    let svg = std::fs::read_to_string(path).unwrap();
    std::fs::remove_file(path).unwrap();
    assert!(svg.contains("alloc p99.9"));
}

#[test]
fn new_case_names_do_not_collide() {
    let mut names: Vec<String> = workloads::cases(1.0, true)
        .into_iter()
        .map(|c| c.name)
        .collect();
    names.extend(MemoryCase::ALL.iter().map(|m| m.name().to_string()));
    names.extend(["latency".to_string(), "footprint".to_string()]);
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n);
    for m in MemoryCase::ALL {
        assert_eq!(MemoryCase::parse(m.name()), Some(m));
    }
}

/// `bench ARGS` parsed as the options of a run.
fn parse(args: &[&str]) -> Result<Parsed<Options>, String> {
    cli::parse(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
}

/// The options of a run, or a panic.
fn options(args: &[&str]) -> Options {
    match parse(args) {
        Ok(Parsed::Run(o)) => o,
        other => panic!("{args:?}: {other:?}"),
    }
}

#[test]
fn every_option_is_read() {
    assert_eq!(options(&[]), Options::default());
    let o = options(&[
        "--compare",
        "--thorough",
        "--allocators",
        "system,,jemalloc",
        "--only",
        "pair,ring-4,",
        "--rounds",
        "5",
        "--scale",
        "0.25",
        "--no-footprint",
        "--no-latency",
        "--no-memory",
        "--memory-rounds",
        "2",
        "--csv",
        "a.csv",
        "--json",
        "a.json",
        "--plot",
        "a.svg",
        "--markdown",
        "a.md",
    ]);
    let expected = Options {
        compare: true,
        thorough: true,
        allocators: Some(vec![AllocatorId::System, AllocatorId::Jemalloc]),
        only: vec!["pair".into(), "ring-4".into()],
        rounds: Some(5),
        scale: Some(0.25),
        no_footprint: true,
        no_latency: true,
        no_memory: true,
        memory_rounds: Some(2),
        csv: Some("a.csv".into()),
        json: Some("a.json".into()),
        plot: Some("a.svg".into()),
        markdown: Some("a.md".into()),
    };
    assert_eq!(o, expected);
    // `--name=value` is the same as `--name value`; a value may start with a dash.
    assert_eq!(options(&["--rounds=4"]).rounds, Some(4));
    assert_eq!(options(&["--csv", "-"]).csv.as_deref(), Some("-"));
    assert_eq!(parse(&["--compare", "-h"]), Ok(Parsed::Help));
    assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
}

#[test]
fn bad_arguments_are_named_in_the_error() {
    let err = |args: &[&str]| parse(args).unwrap_err();
    assert_eq!(err(&["--rounds"]), "--rounds needs a value");
    assert_eq!(
        err(&["--rounds", "many"]),
        "--rounds: cannot read 'many' as a number"
    );
    assert_eq!(
        err(&["--scale", "--compare"]),
        "--scale: cannot read '--compare' as a number"
    );
    assert_eq!(
        err(&["--compare", "--bogus"]),
        "unknown argument '--bogus' (try --help)"
    );
    assert_eq!(err(&["-x"]), "unknown argument '-x' (try --help)");
    assert_eq!(err(&["stray"]), "unknown argument 'stray' (try --help)");
    assert!(
        err(&["--allocators", "system,nosuch"])
            .starts_with("unknown allocator 'nosuch' (compiled in: smalloc, system,"),
        "{}",
        err(&["--allocators", "nosuch"])
    );
    assert!(err(&["--compare=yes"]).contains("--compare"));
}

#[test]
fn every_option_in_the_help_is_read() {
    let words: Vec<&str> = cli::USAGE
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--"))
        .collect();
    assert!(words.len() >= 15, "{words:?}");
    for w in words {
        // An option of pair64 or of a run: neither parser calls it unknown.
        let run = parse(&[w, "1"]);
        let pair = cli::parse_pair64(&[w.to_string(), "1".to_string()]);
        let unknown = |e: &String| e.contains(&format!("unknown argument '{w}'"));
        assert!(
            !run.as_ref().is_err_and(unknown) || !pair.as_ref().is_err_and(unknown),
            "{w} is in the help but not read: {run:?} {pair:?}"
        );
    }
    assert!(cli::USAGE.contains("--markdown FILE"));
}

#[test]
fn pair64_options() {
    let parse =
        |args: &[&str]| cli::parse_pair64(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let default = Pair64 {
        id: AllocatorId::Smalloc,
        iters: 1_000_000,
        hold: 0,
        fixed: false,
    };
    assert_eq!(parse(&[]), Ok(Parsed::Run(default.clone())));
    let o = parse(&[
        "--allocator",
        "jemalloc",
        "--iters",
        "10",
        "--hold=3",
        "--fixed",
    ]);
    let expected = Pair64 {
        id: AllocatorId::Jemalloc,
        iters: 10,
        hold: 3,
        fixed: true,
    };
    assert_eq!(o, Ok(Parsed::Run(expected)));
    assert_eq!(
        parse(&["--allocator", "nosuch"]),
        Err(r#"unknown allocator in ["--allocator", "nosuch"]"#.to_string())
    );
    assert_eq!(
        parse(&["--iters", "x"]),
        Err("--iters: cannot read 'x' as a number".to_string())
    );
    assert_eq!(
        parse(&["--bogus"]),
        Err("pair64: unknown argument '--bogus'".to_string())
    );
    assert_eq!(
        cli::main(&["pair64".to_string(), "--bogus".to_string()]),
        Err("pair64: unknown argument '--bogus'".to_string())
    );
}

/// A made-up machine and command for the Markdown report.
fn run_info() -> RunInfo {
    RunInfo {
        date: "2001-02-03".into(),
        cpu: "Test CPU @ 1.00GHz".into(),
        cpus_online: 2,
        kernel: Some("9.9.9".into()),
        command: "cargo run --release -p bench -- --compare --markdown out.md".into(),
    }
}

/// The cells of the table row of `text` whose first cell is `first`.
fn row<'a>(text: &'a str, first: &str) -> Vec<&'a str> {
    let line = text
        .lines()
        .find(|l| l.split('|').nth(1).is_some_and(|c| c.trim() == first))
        .unwrap_or_else(|| panic!("no row {first} in\n{text}"));
    line.split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

#[test]
fn markdown_carries_the_run_and_its_figures() {
    let r = sample_results_with_extras();
    let md = markdown::render(&r, &run_info());
    // The head: date, machine, command.
    let head = md.lines().next().unwrap();
    assert!(head.starts_with("Measured on 2001-02-03 on Test CPU @ 1.00GHz, 2 logical CPUs,"));
    assert!(
        head.contains("Linux 9.9.9") && head.contains("3 rounds"),
        "{head}"
    );
    assert!(!head.contains("available to the run"), "{head}");
    assert!(md.contains("```sh\ncargo run --release -p bench -- --compare --markdown out.md\n```"));
    assert!(md.contains("`system`: std::alloc::System (glibc malloc)"));
    // Every table is well formed: as many cells in each line as in its header.
    for block in md.split("\n\n").filter(|b| b.starts_with('|')) {
        let cells: Vec<usize> = block.lines().map(|l| l.matches('|').count()).collect();
        assert!(cells.iter().all(|&n| n == cells[0]), "{block}");
        assert!(block.lines().nth(1).unwrap().contains("-:"), "{block}");
    }
    // The summary, the timed cases and the latency: medians of the made-up samples.
    assert_eq!(row(&md, "system")[1], "0.50x");
    assert_eq!(row(&md, "case"), ["case", "smalloc", "system"]);
    assert_eq!(row(&md, "pair-8"), ["pair-8", "2.00", "4.00"]);
    assert_eq!(
        row(&md, "multi-thread-32*"),
        ["multi-thread-32*", "2.00", "4.00"]
    );
    assert_eq!(row(&md, "alloc p99.9"), ["alloc p99.9", "40.0", "80.0"]);
    assert_eq!(row(&md, "free max"), ["free max", "270", "540"]);
    // The memory figures: footprint in MiB, the trim case's figure with a ratio.
    assert_eq!(
        row(&md, "`footprint`: peak RSS MiB"),
        ["`footprint`: peak RSS MiB", "2.00", "4.00"]
    );
    assert_eq!(
        row(&md, "`footprint`: RSS after free MiB"),
        ["`footprint`: RSS after free MiB", "2.00", "1.00"]
    );
    assert_eq!(
        row(&md, "`trim`: RSS after trim MiB"),
        ["`trim`: RSS after trim MiB", "1.00", "n/a"]
    );
    assert!(
        !md.contains("`trim`: peak RSS"),
        "figures without a ratio stay out"
    );
    // The second summary: no trim figure for system, then the p99.9 ratios.
    let side = md
        .split("\n\n")
        .find(|b| b.starts_with("| peer") && b.contains("after trim"))
        .unwrap();
    assert_eq!(
        row(side, "peer"),
        ["peer", "after trim", "alloc p99.9", "free p99.9"]
    );
    assert_eq!(row(side, "system"), ["system", "n/a", "0.50x", "0.50x"]);

    // Fewer CPUs available than online; smalloc alone: no summary, one column.
    let mut info = run_info();
    info.cpus_online = 8;
    let mut solo = sample_results();
    solo.allocators.truncate(1);
    solo.footprint.truncate(1);
    for s in &mut solo.samples {
        s.truncate(1);
    }
    let md = markdown::render(&solo, &info);
    assert!(
        md.contains("8 logical CPUs (2 available to the run)"),
        "{md}"
    );
    assert!(!md.contains("geometric mean"), "{md}");
    assert_eq!(row(&md, "pair-8"), ["pair-8", "2.00"]);
}

#[test]
fn markdown_names_the_day_and_the_command() {
    let day = std::time::Duration::from_secs(86_400);
    assert_eq!(
        markdown::date(std::time::UNIX_EPOCH + day * 365),
        "1971-01-01"
    );
    assert_eq!(
        markdown::date(std::time::UNIX_EPOCH + day * 11_016),
        "2000-02-29"
    );
    let args: Vec<String> = [
        "--compare",
        "--only",
        "pair-64",
        "--markdown",
        "my figures.md",
    ]
    .map(String::from)
    .to_vec();
    let cmd = markdown::command_line(&args);
    assert!(cmd.starts_with("cargo run "), "{cmd}");
    assert!(cmd.contains(" -p bench "), "{cmd}");
    // Tests build without optimizations: the command has no --release then.
    assert_eq!(cmd.contains("--release"), !cfg!(debug_assertions), "{cmd}");
    assert!(
        cmd.ends_with(" -- --compare --only pair-64 --markdown 'my figures.md'"),
        "{cmd}"
    );
    assert!(!markdown::command_line(&[]).contains(" --"));
}

#[test]
fn csv_quotes_nothing_and_has_its_header_without_rows() {
    let mut r = sample_results();
    let csv = report::csv(&r);
    assert!(!csv.contains('"'), "{csv}");
    r.cases.clear();
    r.samples.clear();
    r.footprint.clear();
    assert_eq!(
        report::csv(&r),
        "workload,case,threads,ops,unit,allocator,median,min,max,samples,smalloc_over_this\n"
    );
}
