//! The C ABI fuzz target (`fuzz/fuzz_targets/c_abi.rs`) without the fuzzer, which needs a
//! nightly toolchain: the same decoding and checking (`devutils::ops::fuzz_c_abi`) of a fixed set
//! of pseudo-random inputs, and of every input in `fuzz/corpus/c_abi/` if there is one, through
//! the `smalloc_` functions of the built libsmalloc.so, opened with `dlopen(RTLD_LOCAL)` (which
//! binds nobody's `malloc` to it). Also every hostile call (sizes near `usize::MAX` and
//! `PTRDIFF_MAX`, overflowing products, alignments that are not powers of two) once.

// Like the library, the tests are for Linux with glibc.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

mod common;

use std::ffi::{CStr, CString, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::OnceLock;

use devutils::ops::{CAbi, CChecker, Stats, fuzz_c_abi, hostile_calls, replay};

/// The `smalloc_` functions of libsmalloc.so.
fn smalloc_abi() -> &'static CAbi {
    static ABI: OnceLock<CAbi> = OnceLock::new();
    ABI.get_or_init(|| {
        let path = CString::new(common::libsmalloc_so().as_os_str().as_bytes()).unwrap();
        // SAFETY: a path to a shared library; its constructor only records glibc's functions.
        let lib = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if lib.is_null() {
            // SAFETY: dlerror returns a message after a failed dlopen.
            panic!("dlopen: {:?}", unsafe { CStr::from_ptr(libc::dlerror()) });
        }
        let sym = |name: &CStr| {
            // SAFETY: lib is an open library; name is NUL-terminated.
            let f = unsafe { libc::dlsym(lib, name.as_ptr()) };
            assert!(!f.is_null(), "libsmalloc.so lacks {name:?}");
            f
        };
        /// The function `$name` of the library, with C signature `$sig`.
        macro_rules! function {
            ($name:literal: $sig:ty) => {
                // SAFETY: the symbol is the function of smalloc's C ABI (include/smalloc.h) with
                // this signature; the library stays open for the whole process.
                unsafe { std::mem::transmute::<*mut c_void, $sig>(sym($name)) }
            };
        }
        type Alloc = unsafe extern "C" fn(usize) -> *mut c_void;
        type Alloc2 = unsafe extern "C" fn(usize, usize) -> *mut c_void;
        type Realloc = unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void;
        type ReallocArray = unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void;
        type PosixMemalign = unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int;
        type Free = unsafe extern "C" fn(*mut c_void);
        type UsableSize = unsafe extern "C" fn(*mut c_void) -> usize;
        CAbi {
            malloc: function!(c"smalloc_malloc": Alloc),
            calloc: function!(c"smalloc_calloc": Alloc2),
            realloc: function!(c"smalloc_realloc": Realloc),
            reallocarray: function!(c"smalloc_reallocarray": ReallocArray),
            posix_memalign: function!(c"smalloc_posix_memalign": PosixMemalign),
            aligned_alloc: function!(c"smalloc_aligned_alloc": Alloc2),
            memalign: function!(c"smalloc_memalign": Alloc2),
            free: function!(c"smalloc_free": Free),
            malloc_usable_size: function!(c"smalloc_malloc_usable_size": UsableSize),
            // smalloc follows glibc 2.36, which rounds the alignment up.
            aligned_alloc_needs_power_of_two: false,
        }
    })
}

#[test]
fn c_abi_fuzz_inputs_pass() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/c_abi");
    let checker = CChecker::new(smalloc_abi());
    let total = replay(&corpus, 600, 0x5eed_0002, |input| {
        fuzz_c_abi(&checker, input)
    });
    eprintln!("{total}");
    assert!(
        total.allocs > 5000 && total.zeroed > 500 && total.reallocs > 3000,
        "{total}"
    );
    assert!(total.direct > 100 && total.refused > 200, "{total}");
}

#[test]
fn every_hostile_call_matches_glibc() {
    let checker = CChecker::new(smalloc_abi());
    let mut total = Stats::default();
    for ops in hostile_calls() {
        total.add(&checker.run(&ops).unwrap_or_else(|e| panic!("{e}")));
    }
    eprintln!("{total}");
    assert!(total.refused > 1000, "{total}");
}
