//! The Rust API fuzz target (`fuzz/fuzz_targets/rust_api.rs`) without the fuzzer, which needs a
//! nightly toolchain: the same decoding and checking (`devutils::ops::fuzz_rust_api`) of a fixed
//! set of pseudo-random inputs, and of every input in `fuzz/corpus/rust_api/` if there is one
//! (what a fuzzing session found). A failure names the input and prints it in hex; `xxd -r -p`
//! turns that back into a file for `cargo +nightly fuzz run rust_api <file>`.

use std::path::Path;

use devutils::ops::{Checker, Stats, fuzz_rust_api, replay};
use smalloc_core::Smalloc;

/// The fuzz target's body: a fresh instance for every input, so that an input fails or passes on
/// its own, whatever the inputs before it left behind.
fn run(input: &[u8]) -> Result<Stats, String> {
    let a = Smalloc::new();
    // SAFETY: the checker asks only about live blocks, all of them a's.
    let usable_size = |p: *const u8| unsafe { a.usable_size(p) };
    let result = fuzz_rust_api(&Checker::new(&a).with_usable_size(&usable_size), input);
    drop(a);
    result
}

#[test]
fn rust_api_fuzz_inputs_pass() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/rust_api");
    let total = replay(&corpus, 600, 0x5eed_0001, run);
    eprintln!("{total}");
    // The inputs reach every kind of operation.
    assert!(
        total.allocs > 5000 && total.zeroed > 500 && total.reallocs > 3000,
        "{total}"
    );
    assert!(
        total.handoffs > 300 && total.direct > 100 && total.refused > 50,
        "{total}"
    );
}
