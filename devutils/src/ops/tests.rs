//! Tests of the checkers themselves: trusted allocators pass, broken ones fail.

use super::model::{EDGE, SAMPLES, Shared, Worker, windows};
use super::*;
use core::alloc::Layout;
use std::alloc::System;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use rand::{Rng, SeedableRng, rngs::StdRng};

/// Random ops, as the fuzzers and property tests make them.
fn random_ops(seed: u64, n: usize) -> Vec<u8> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n * OP_BYTES).map(|_| rng.r#gen::<u8>()).collect()
}

#[test]
fn decoding_covers_the_domain() {
    let mut sizes = BTreeSet::new();
    for category in 0..16 {
        for param in 0..=u16::MAX {
            sizes.insert(size_from(category, param));
        }
    }
    for s in 0..=8 {
        assert!(sizes.contains(&s), "size {s}");
    }
    for &slot in &SLOT_SIZES {
        for s in [slot - 1, slot, slot + 1] {
            assert!(sizes.contains(&s), "size {s}");
        }
    }
    for s in DIRECT_SIZES {
        assert!(sizes.contains(&s), "size {s}");
    }
    assert_eq!(SLOT_SIZES[..8], [8, 16, 24, 32, 48, 64, 96, 128]);
    assert_eq!(SLOT_SIZES[47], LARGEST_SLOT);
    // Every kind of op and call comes out of some first two bytes.
    let mut kinds = BTreeSet::new();
    for b0 in 0..=255u8 {
        for b1 in 0..=255u8 {
            let op = Op::decode(&[b0, b1, 0, 0, 0, 0, 0, b1]);
            let kind = match op {
                Op::Call(c) => format!("{c:?}"),
                Op::Send { then, .. } => format!("Send {then:?}"),
                op => format!("{op:?}"),
            };
            kinds.insert(kind.split([' ', '{']).next().unwrap().to_string());
        }
    }
    let want = [
        "Alloc",
        "AllocZeroed",
        "Realloc",
        "Free",
        "Send",
        "Malloc",
        "Calloc",
        "ReallocArray",
        "ReallocNull",
        "PosixMemalign",
        "AlignedAlloc",
        "Memalign",
        "FreeNull",
    ];
    for k in want {
        assert!(kinds.contains(k), "{k} never decoded: {kinds:?}");
    }
    assert_eq!(decode_ops(&[0; 17]).len(), 2);
    assert!(
        decode_steps(&random_ops(1, 100), 3)
            .iter()
            .all(|s| s.thread < 3)
    );
}

#[test]
fn windows_cover_small_blocks_and_sample_big_ones() {
    assert_eq!(windows(100).collect::<Vec<_>>(), [(0, 100)]);
    assert_eq!(windows(0).collect::<Vec<_>>(), [(0, 0)]);
    let len = 256 << 20;
    let w: Vec<_> = windows(len).collect();
    assert_eq!(w.len(), SAMPLES + 2);
    assert_eq!(w[0], (0, EDGE));
    assert_eq!(*w.last().unwrap(), (len - EDGE, len));
    assert!(w.windows(2).all(|p| p[0].1 <= p[1].0), "in order, disjoint");
    let touched: usize = w.iter().map(|(s, e)| e - s).sum();
    assert!(touched < 32 << 10);
}

#[test]
fn system_passes() {
    let checker = Checker::new(&System);
    let mut total = Stats::default();
    // The system allocator zeroes and copies big blocks whole: some runs take a second.
    for seed in 0..30 {
        let ops = decode_ops(&random_ops(seed, 60));
        total.add(
            &checker
                .run(&ops)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}")),
        );
    }
    assert!(total.allocs > 300 && total.reallocs > 150 && total.frees > 300);
    assert!(total.direct > 0 && total.refused > 0 && total.zeroed > 0);
}

#[test]
fn system_passes_on_threads() {
    let checker = Checker::new(&System);
    let mut total = Stats::default();
    for seed in 0..12 {
        let steps = decode_steps(&random_ops(seed, 60), 3);
        for schedule in [Schedule::Lockstep, Schedule::Concurrent] {
            let stats = checker.run_threads(3, &steps, schedule);
            total.add(&stats.unwrap_or_else(|e| panic!("seed {seed}, {schedule:?}: {e}")));
        }
    }
    assert!(total.handoffs > 20, "{total}");
}

/// An allocator with one bug, to show that the checker catches it.
struct Broken(Bug);

#[derive(Clone, Copy, PartialEq)]
enum Bug {
    /// realloc moves without copying.
    ReallocForgets,
    /// alloc_zeroed hands out dirty memory.
    DirtyZeroed,
    /// Every other alloc returns the previous block again.
    HandsOutTwice,
    /// A huge request succeeds with a small block.
    GrantsTheImpossible,
}

// SAFETY: not upheld on purpose (each Bug breaks a rule), and used only in the tests below on
// blocks the checker never touches beyond their real size.
unsafe impl GlobalAlloc for Broken {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        static LAST: AtomicUsize = AtomicUsize::new(0);
        // SAFETY: forwarded.
        unsafe {
            if self.0 == Bug::GrantsTheImpossible && layout.size() >= IMPOSSIBLE {
                return System.alloc(Layout::from_size_align_unchecked(8, layout.align()));
            }
            if self.0 != Bug::HandsOutTwice {
                return System.alloc(layout);
            }
            let last = LAST.swap(0, Ordering::Relaxed);
            if last != 0 {
                return last as *mut u8;
            }
            let p = System.alloc(layout);
            LAST.store(p as usize, Ordering::Relaxed);
            p
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            if self.0 == Bug::DirtyZeroed {
                let p = System.alloc(layout);
                p.write_bytes(0xAA, layout.size());
                return p;
            }
            System.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.0 != Bug::HandsOutTwice {
            // SAFETY: forwarded.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe {
            if self.0 == Bug::ReallocForgets {
                let l = Layout::from_size_align_unchecked(new_size, layout.align());
                let q = System.alloc(l);
                System.dealloc(ptr, layout);
                return q;
            }
            System.realloc(ptr, layout, new_size)
        }
    }
}

fn fails(bug: Bug, ops: &[Op], message: &str) {
    let broken = Broken(bug);
    let e = Checker::new(&broken)
        .run(ops)
        .expect_err("the bug goes unnoticed");
    assert!(e.contains(message), "{e}");
}

#[test]
fn bugs_are_caught() {
    let alloc = |size| Op::Alloc { size, align: 8 };
    fails(
        Bug::ReallocForgets,
        &[
            alloc(100),
            Op::Realloc {
                index: 0,
                new_size: 5000,
            },
        ],
        "was lost",
    );
    fails(
        Bug::DirtyZeroed,
        &[Op::AllocZeroed { size: 24, align: 8 }],
        "to be zeroed",
    );
    fails(Bug::HandsOutTwice, &[alloc(16), alloc(16)], "overlaps");
    fails(
        Bug::GrantsTheImpossible,
        &[Op::Call(Call::Malloc { size: 1 << 62 })],
        "impossible",
    );
    // A usable size smaller than the request.
    let short = |_: *const u8| Some(4);
    let e = Checker::new(&System)
        .with_usable_size(&short)
        .run(&[alloc(8)])
        .unwrap_err();
    assert!(e.contains("usable size"), "{e}");
    // A block corrupted behind the allocator's back, between two ops.
    let checker = Checker::new(&System);
    let sh = Shared::new(MUST_SUCCEED);
    let mut w = Worker::new(0);
    checker.exec(&mut w, &sh, None, &alloc(200_000)).unwrap();
    // SAFETY: the block is live and 200000 bytes long.
    unsafe { *w.blocks[0].ptr.add(200_000 - 1) ^= 1 };
    let e = checker
        .exec(&mut w, &sh, None, &Op::Free { index: 0 })
        .unwrap_err();
    assert!(e.contains("byte 199999 changed"), "{e}");
}

#[test]
fn lockstep_reports_a_bug_on_another_thread() {
    let broken = Broken(Bug::ReallocForgets);
    let steps = [
        Step {
            thread: 0,
            op: Op::Alloc { size: 64, align: 8 },
        },
        Step {
            thread: 0,
            op: Op::Send {
                index: 0,
                to: 1,
                then: Then::Realloc { new_size: 1000 },
            },
        },
    ];
    let e = Checker::new(&broken)
        .run_threads(2, &steps, Schedule::Lockstep)
        .unwrap_err();
    assert!(e.contains("handed over") && e.contains("was lost"), "{e}");
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod c {
    use super::*;
    use core::ffi::c_void;

    #[test]
    fn glibc_passes() {
        let abi = CAbi::libc();
        let checker = CChecker::new(&abi);
        let mut total = Stats::default();
        for seed in 0..100 {
            let ops = decode_ops(&random_ops(seed, 60));
            total.add(
                &checker
                    .run(&ops)
                    .unwrap_or_else(|e| panic!("seed {seed}: {e}")),
            );
        }
        assert!(total.allocs > 1000 && total.reallocs > 500 && total.refused > 20);
    }

    #[test]
    fn glibc_passes_every_hostile_call() {
        let abi = CAbi::libc();
        let checker = CChecker::new(&abi);
        let mut stats = Stats::default();
        for ops in hostile_calls() {
            stats.add(&checker.run(&ops).unwrap_or_else(|e| panic!("{e}")));
        }
        assert!(stats.refused > 1000, "{stats}");
    }

    unsafe extern "C" fn dirty_calloc(n: usize, size: usize) -> *mut c_void {
        // SAFETY: a plain malloc, filled within its size.
        unsafe {
            let p = libc::malloc(n * size);
            p.cast::<u8>().write_bytes(0xAA, n * size);
            p
        }
    }

    unsafe extern "C" fn wrong_errno_malloc(size: usize) -> *mut c_void {
        // SAFETY: forwarded.
        let p = unsafe { libc::malloc(size) };
        if p.is_null() {
            // SAFETY: errno is this thread's.
            unsafe { *libc::__errno_location() = libc::EINVAL };
        }
        p
    }

    unsafe extern "C" fn lax_posix_memalign(
        out: *mut *mut c_void,
        align: usize,
        size: usize,
    ) -> core::ffi::c_int {
        // Accepts any alignment, rounding it up.
        let align = align.max(8).checked_next_power_of_two().unwrap_or(1 << 63);
        // SAFETY: forwarded.
        unsafe { libc::posix_memalign(out, align, size) }
    }

    #[test]
    fn c_bugs_are_caught() {
        let glibc = CAbi::libc();
        let run = |abi: CAbi, ops: &[Op]| CChecker::new(&abi).run(ops).unwrap_err();
        let e = run(
            CAbi {
                calloc: dirty_calloc,
                ..glibc
            },
            &[Op::AllocZeroed {
                size: 100,
                align: 1,
            }],
        );
        assert!(e.contains("zeroed"), "{e}");
        let e = run(
            CAbi {
                malloc: wrong_errno_malloc,
                ..glibc
            },
            &[Op::Call(Call::Malloc { size: usize::MAX })],
        );
        assert!(e.contains("glibc's error is 12"), "{e}");
        let e = run(
            CAbi {
                posix_memalign: lax_posix_memalign,
                ..glibc
            },
            &[Op::Call(Call::PosixMemalign { align: 24, size: 8 })],
        );
        assert!(e.contains("glibc fails with error 22"), "{e}");
    }
}

#[cfg(feature = "proptest")]
mod shrinking {
    use super::*;
    use proptest::test_runner::{RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

    /// A stand-in for an allocator whose realloc loses the contents of blocks of 1000 bytes and
    /// more: fails when such a block is resized, with blocks picked by index as the checkers do.
    fn buggy(ops: &[Op]) -> Result<(), TestCaseError> {
        let mut blocks: Vec<usize> = Vec::new();
        for op in ops {
            match *op {
                Op::Alloc { size, .. } | Op::AllocZeroed { size, .. } => blocks.push(size),
                Op::Free { index } if !blocks.is_empty() => {
                    blocks.remove(index % blocks.len());
                }
                Op::Realloc { index, new_size } if !blocks.is_empty() => {
                    let i = index % blocks.len();
                    if blocks[i] >= 1000 && new_size > blocks[i] {
                        return Err(TestCaseError::fail("lost"));
                    }
                    blocks[i] = new_size;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether `ops` still fails without element `i` (and `j`).
    fn fails_without(ops: &[Op], i: usize, j: Option<usize>) -> bool {
        let rest: Vec<Op> = (0..ops.len())
            .filter(|&k| k != i && Some(k) != j)
            .map(|k| ops[k])
            .collect();
        buggy(&rest).is_err()
    }

    #[test]
    fn failures_shrink_to_minimal_sequences() {
        let mut two = 0;
        for seed in 0..64u8 {
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]);
            let mut runner = TestRunner::new_with_rng(proptest_config(1000), rng);
            let Err(TestError::Fail(_, ops)) = runner.run(&ops_strategy(64), |ops| buggy(&ops))
            else {
                panic!("seed {seed}: the bug went unnoticed");
            };
            // The shortest sequences are an allocation (or a small one and a realloc) and the
            // realloc that loses its contents; whichever the search found, no op and no two can
            // go.
            assert!(
                buggy(&ops).is_err() && ops.len() <= 3,
                "seed {seed}: {ops:?}"
            );
            for i in 0..ops.len() {
                assert!(!fails_without(&ops, i, None), "seed {seed}: {ops:?}");
                for j in i + 1..ops.len() {
                    assert!(!fails_without(&ops, i, Some(j)), "seed {seed}: {ops:?}");
                }
            }
            if let [Op::Alloc { .. }, Op::Realloc { index: 0, .. }] = ops[..] {
                two += 1;
            }
        }
        assert!(two > 40, "{two} of 64 shrank to two ops");
    }
}
