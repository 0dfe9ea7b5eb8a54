//! Fuzzes smalloc's C ABI: the input is decoded into operations that `devutils::ops` runs
//! through the `smalloc_`-prefixed functions (malloc, calloc, realloc, reallocarray,
//! posix_memalign, aligned_alloc, memalign, free, malloc_usable_size), hostile arguments
//! included, checking every result against glibc's semantics and its model of the live blocks.
//!
//! The same inputs run without the fuzzer in smalloc-ffi/tests/fuzz_replay.rs, through the
//! built libsmalloc.so.

#![no_main]

use devutils::ops::{CAbi, CChecker, fuzz_c_abi};
use libfuzzer_sys::fuzz_target;
use smalloc_ffi::{
    smalloc_aligned_alloc, smalloc_calloc, smalloc_free, smalloc_malloc,
    smalloc_malloc_usable_size, smalloc_memalign, smalloc_posix_memalign, smalloc_realloc,
    smalloc_reallocarray,
};

static ABI: CAbi = CAbi {
    malloc: smalloc_malloc,
    calloc: smalloc_calloc,
    realloc: smalloc_realloc,
    reallocarray: smalloc_reallocarray,
    posix_memalign: smalloc_posix_memalign,
    aligned_alloc: smalloc_aligned_alloc,
    memalign: smalloc_memalign,
    free: smalloc_free,
    malloc_usable_size: smalloc_malloc_usable_size,
    // smalloc follows glibc 2.36, which rounds the alignment up.
    aligned_alloc_needs_power_of_two: false,
};

fuzz_target!(|data: &[u8]| {
    if let Err(e) = fuzz_c_abi(&CChecker::new(&ABI), data) {
        panic!("{e}");
    }
});
