//! Property test: random sequences of operations on three threads sharing a smalloc instance,
//! with blocks handed from thread to thread to be freed or resized there (the remote-free and
//! cross-thread realloc paths), each result checked against a model (see `devutils::ops`).
//!
//! Each sequence runs twice, each time on a fresh instance (see `model_single_thread.rs`): in
//! lockstep (one step at a time, the same run every time, so a failure shrinks to a minimal
//! sequence), then with all threads running at once (which can find races, but whose failures
//! may not reproduce exactly, and then do not shrink well).

use devutils::ops::{Checker, Schedule, proptest_config, steps_strategy};
use proptest::prelude::*;
use smalloc_core::Smalloc;

const THREADS: usize = 3;

proptest! {
    #![proptest_config(proptest_config(192))]

    #[test]
    fn threads_match_the_model(steps in steps_strategy(THREADS, 64)) {
        for schedule in [Schedule::Lockstep, Schedule::Concurrent] {
            let a = Smalloc::new();
            // SAFETY: the checker asks only about live blocks, all of them a's.
            let usable_size = |p: *const u8| unsafe { a.usable_size(p) };
            let result = Checker::new(&a)
                .with_usable_size(&usable_size)
                .run_threads(THREADS, &steps, schedule);
            // The threads have exited, and so let go of the instance: its reservation goes back.
            drop(a);
            result.map_err(|e| TestCaseError::fail(format!("{schedule:?}: {e}")))?;
        }
    }
}
