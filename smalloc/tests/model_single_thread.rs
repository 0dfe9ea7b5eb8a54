//! Property test: random sequences of allocations, zeroed allocations, reallocations (within and
//! across size classes, into and out of direct mappings) and frees on a smalloc instance, each
//! result checked against a model (see `devutils::ops`): no overlap, alignment, usable size,
//! contents kept, zeroed memory zero, impossible requests refused.
//!
//! Every case gets a fresh instance, not the global allocator: proptest's own allocations stay
//! off it, and a failing sequence fails on its own, whatever earlier cases left behind, so that
//! it shrinks to a minimal one (printed as the failure's input). The global-allocator tests and
//! the fuzz replay test cover a long-lived instance. More cases: `PROPTEST_CASES=5000 cargo
//! nextest run -p smalloc --test model_single_thread`.

use devutils::ops::{Checker, ops_strategy, proptest_config};
use proptest::prelude::*;
use smalloc_core::Smalloc;

proptest! {
    #![proptest_config(proptest_config(512))]

    #[test]
    fn ops_match_the_model(ops in ops_strategy(64)) {
        let a = Smalloc::new();
        // SAFETY: the checker asks only about live blocks, all of them a's.
        let usable_size = |p: *const u8| unsafe { a.usable_size(p) };
        let result = Checker::new(&a).with_usable_size(&usable_size).run(&ops);
        // Dropping the instance returns its reservation; after a failure the blocks the checker
        // left allocated go with it, untouched.
        drop(a);
        result.map_err(TestCaseError::fail)?;
    }
}
