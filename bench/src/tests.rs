//! Unit tests of the harness: statistics, case list, reports, plot, and a smoke run of every
//! workload through smalloc and the system allocator at a tiny scale (the workloads check the
//! memory they are given, so this also catches a broken allocator path).

use crate::allocators::{self, AllocatorId, SMALLOC, SYSTEM};
use crate::footprint::{Footprint, proc_status_kib};
use crate::latency::{self, Latency, percentile};
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

#[test]
fn proc_status_has_the_resident_set() {
    assert!(proc_status_kib("VmRSS").unwrap() > 0);
    assert!(proc_status_kib("VmHWM").unwrap() > 0);
    assert!(proc_status_kib("NoSuchField").is_none());
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

    let json = report::json(&r);
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

    let json = report::json(&r);
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
