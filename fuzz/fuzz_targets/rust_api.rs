//! Fuzzes smalloc through `GlobalAlloc`: the input is decoded into operations (on one thread, or
//! on several taking turns or all at once) that `devutils::ops` runs on a smalloc instance,
//! checking every result against its model. The instance is not the global allocator, so the
//! fuzzer's and the model's own allocations stay off it.
//!
//! The same inputs run without the fuzzer in smalloc/tests/fuzz_replay.rs.

#![no_main]

use devutils::ops::{Checker, fuzz_rust_api};
use libfuzzer_sys::fuzz_target;
use smalloc::Smalloc;

static A: Smalloc = Smalloc::new();

fn usable_size(p: *const u8) -> Option<usize> {
    // SAFETY: the checker asks only about live blocks, all of them A's.
    unsafe { A.usable_size(p) }
}

fuzz_target!(|data: &[u8]| {
    let checker = Checker::new(&A).with_usable_size(&usable_size);
    if let Err(e) = fuzz_rust_api(&checker, data) {
        panic!("{e}");
    }
});
