//! Property test: random sequences of operations on three threads sharing one smalloc instance,
//! with blocks handed from thread to thread to be freed or resized there (the remote-free and
//! cross-thread realloc paths), each result checked against a model (see `devutils::ops`).
//!
//! Each sequence runs twice: in lockstep (one step at a time, the same run every time, so a
//! failure shrinks to a minimal sequence), then with all threads running at once (which can find
//! races, but whose failures may not reproduce exactly). The instance is not the global
//! allocator, so proptest's and the threads' own allocations stay off it.

use devutils::ops::{Checker, Schedule, proptest_config, steps_strategy};
use proptest::prelude::*;
use smalloc::Smalloc;

static A: Smalloc = Smalloc::new();

const THREADS: usize = 3;

fn usable_size(p: *const u8) -> Option<usize> {
    // SAFETY: the checker asks only about live blocks, all of them A's.
    unsafe { A.usable_size(p) }
}

proptest! {
    #![proptest_config(proptest_config(192))]

    #[test]
    fn threads_match_the_model(steps in steps_strategy(THREADS, 64)) {
        let checker = Checker::new(&A).with_usable_size(&usable_size);
        for schedule in [Schedule::Lockstep, Schedule::Concurrent] {
            checker
                .run_threads(THREADS, &steps, schedule)
                .map_err(|e| TestCaseError::fail(format!("{schedule:?}: {e}")))?;
        }
    }
}
