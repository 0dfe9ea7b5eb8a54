//! Property test with smalloc as this process's global allocator: the ops of `devutils::ops` go
//! through `std::alloc::{alloc, alloc_zeroed, realloc, dealloc}`, interleaved with every
//! allocation of the test itself (proptest's, the model's, the threads'), on one thread and in
//! lockstep on three.

use devutils::ops::{Checker, RustGlobal, Schedule, ops_strategy, proptest_config, steps_strategy};
use proptest::prelude::*;
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

fn usable_size(p: *const u8) -> Option<usize> {
    // SAFETY: the checker asks only about live blocks, all of them the global allocator's.
    unsafe { ALLOC.usable_size(p) }
}

proptest! {
    #![proptest_config(proptest_config(256))]

    #[test]
    fn ops_through_std_alloc_match_the_model(ops in ops_strategy(64)) {
        let checker = Checker::new(&RustGlobal).with_usable_size(&usable_size);
        checker.run(&ops).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn threads_through_std_alloc_match_the_model(steps in steps_strategy(3, 64)) {
        let checker = Checker::new(&RustGlobal).with_usable_size(&usable_size);
        checker
            .run_threads(3, &steps, Schedule::Lockstep)
            .map_err(TestCaseError::fail)?;
    }
}
