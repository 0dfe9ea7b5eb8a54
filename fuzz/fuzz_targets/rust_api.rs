//! Fuzzes smalloc through `GlobalAlloc`: the input is decoded into operations (on one thread, or
//! on several taking turns or all at once) that `devutils::ops` runs on a smalloc instance,
//! checking every result against its model. The instance is not the global allocator, so the
//! fuzzer's and the model's own allocations stay off it.
//!
//! The same inputs run without the fuzzer in smalloc/tests/fuzz_replay.rs.

#![no_main]

use devutils::ops::{Checker, fuzz_rust_api};
use libfuzzer_sys::fuzz_target;
use smalloc_core::Smalloc;

fuzz_target!(|data: &[u8]| {
    // A fresh instance for every input, so that an input that fails fails on its own (and
    // minimizes), whatever the inputs before it left behind.
    let a = Smalloc::new();
    // SAFETY: the checker asks only about live blocks, all of them a's.
    let usable_size = |p: *const u8| unsafe { a.usable_size(p) };
    let result = fuzz_rust_api(&Checker::new(&a).with_usable_size(&usable_size), data);
    drop(a);
    if let Err(e) = result {
        panic!("{e}");
    }
});
