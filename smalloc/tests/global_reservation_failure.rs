//! If the OS refuses the 32 TiB reservation, the process keeps working on the fallback (system)
//! allocator: no hang, no panic, no abort. The real work runs in a child process started under
//! `ulimit -v 8000000` (8 GB of address space), which makes the reservation impossible.

use std::alloc::{self, Layout};

use devutils::{Churn, assert_child_passed, is_child, run_test_in_child};
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

const LIMIT: &str = "ulimit -v 8000000";

#[test]
fn keeps_working_when_the_reservation_is_refused() {
    if !is_child() {
        let name = "keeps_working_when_the_reservation_is_refused";
        assert_child_passed(&run_test_in_child(name, LIMIT), name);
        return;
    }
    // Child: the test harness has already allocated through ALLOC, which tried to reserve.
    assert!(
        !ALLOC.is_reserved(),
        "under {LIMIT} the reservation should have been refused"
    );
    assert_eq!(ALLOC.slab_range(), None);
    // Calling it again must not change the outcome or hang.
    ALLOC.init();
    assert!(!ALLOC.is_reserved());

    let mut c = Churn::new(5, 18);
    c.run(50_000, 500);
    c.finish();
    let v: Vec<u64> = (0..1_000_000).collect();
    assert_eq!(v.iter().sum::<u64>(), 999_999 * 1_000_000 / 2);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Churn::new(100 + t, 14);
                c.run(10_000, 200);
                c.finish();
            })
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
    // Beyond the limit: null, not an abort.
    // SAFETY: nothing is dereferenced.
    unsafe {
        let l = Layout::from_size_align(16 << 30, 8).unwrap();
        assert!(std::hint::black_box(alloc::alloc(l)).is_null());
    }
}

#[test]
fn the_same_binary_reserves_without_the_limit() {
    // Guards the test above against passing for the wrong reason.
    let warm = std::hint::black_box(Box::new(1u64));
    assert!(ALLOC.is_reserved());
    assert!(
        ALLOC
            .slab_range()
            .unwrap()
            .contains(&(&*warm as *const u64 as usize))
    );
}
