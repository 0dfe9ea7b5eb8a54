//! Property test: random sequences of allocations, zeroed allocations, reallocations (within and
//! across size classes, into and out of direct mappings) and frees on one smalloc instance, each
//! result checked against a model (see `devutils::ops`): no overlap, alignment, usable size,
//! contents kept, zeroed memory zero, impossible requests refused.
//!
//! The instance is not the global allocator, so proptest's own allocations stay off it. A
//! failure prints the shrunk sequence of ops. More cases: `PROPTEST_CASES=5000 cargo nextest run
//! -p smalloc --test model_single_thread`.

use devutils::ops::{Checker, ops_strategy, proptest_config};
use proptest::prelude::*;
use smalloc::Smalloc;

static A: Smalloc = Smalloc::new();

fn usable_size(p: *const u8) -> Option<usize> {
    // SAFETY: the checker asks only about live blocks, all of them A's.
    unsafe { A.usable_size(p) }
}

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn ops_match_the_model(ops in ops_strategy(64)) {
        let checker = Checker::new(&A).with_usable_size(&usable_size);
        checker.run(&ops).map_err(TestCaseError::fail)?;
    }
}
