//! Unit tests of the harness: statistics, case list, reports, plot, and a smoke run of every
//! workload through smalloc and the system allocator at a tiny scale (the workloads check the
//! memory they are given, so this also catches a broken allocator path).

use crate::allocators::{self, AllocatorId};
use crate::footprint::{Footprint, proc_status_kib};
use crate::results::{Results, Stats, geomean};
use crate::rng::Rng;
use crate::workloads::{self, Workload};
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
