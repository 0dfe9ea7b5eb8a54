//! The standard names: with these exported, loading the library (`LD_PRELOAD`, or linking it
//! before glibc) makes smalloc the allocator of the whole process, glibc's own internal calls to
//! `malloc` included.
//!
//! glibc's internal names (`__libc_malloc` and friends) are deliberately *not* defined here:
//! they are how this library reaches glibc's allocator for the blocks that are glibc's.

use core::ffi::{c_int, c_void};

use crate::abi;

/// Declares exported functions under their standard names, each a thin wrapper over the shared
/// implementation with `INTERPOSED = true`.
macro_rules! standard {
    ($($(#[$doc:meta])* fn $name:ident => $imp:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// C's rules for this function: pointers passed in must be null or live blocks
            /// from the process's allocator.
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: forwarded from the caller.
                unsafe { abi::$imp::<true>($($arg),*) }
            }
        )*
    };
}

standard! {
    /// The C `malloc`, served by smalloc (see `smalloc_malloc`).
    fn malloc => malloc(size: usize) -> *mut c_void;
    /// The C `calloc`, served by smalloc (see `smalloc_calloc`).
    fn calloc => calloc(n: usize, size: usize) -> *mut c_void;
    /// The C `realloc`, served by smalloc (see `smalloc_realloc`).
    fn realloc => realloc(p: *mut c_void, size: usize) -> *mut c_void;
    /// The C `reallocarray`, served by smalloc (see `smalloc_reallocarray`).
    fn reallocarray => reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void;
    /// The C `free`, served by smalloc (see `smalloc_free`).
    fn free => free(p: *mut c_void);
    /// The POSIX `posix_memalign`, served by smalloc (see `smalloc_posix_memalign`).
    fn posix_memalign => posix_memalign(memptr: *mut *mut c_void, align: usize, size: usize) -> c_int;
    /// The C `aligned_alloc`, served by smalloc (see `smalloc_aligned_alloc`).
    fn aligned_alloc => memalign(align: usize, size: usize) -> *mut c_void;
    /// The obsolete `memalign`, served by smalloc (see `smalloc_memalign`).
    fn memalign => memalign(align: usize, size: usize) -> *mut c_void;
    /// The obsolete `valloc`, served by smalloc (see `smalloc_valloc`).
    fn valloc => valloc(size: usize) -> *mut c_void;
    /// The obsolete `pvalloc`, served by smalloc (see `smalloc_pvalloc`).
    fn pvalloc => pvalloc(size: usize) -> *mut c_void;
    /// glibc's `malloc_usable_size`, served by smalloc (see `smalloc_malloc_usable_size`).
    fn malloc_usable_size => malloc_usable_size(p: *mut c_void) -> usize;
}

/// C23's `free_sized`, served by smalloc (see `smalloc_free_sized`).
///
/// # Safety
/// As for `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_sized(p: *mut c_void, size: usize) {
    let _ = size;
    // SAFETY: forwarded from the caller.
    unsafe { abi::free::<true>(p) }
}

/// C23's `free_aligned_sized`, served by smalloc (see `smalloc_free_aligned_sized`).
///
/// # Safety
/// As for `free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn free_aligned_sized(p: *mut c_void, align: usize, size: usize) {
    let _ = (align, size);
    // SAFETY: forwarded from the caller.
    unsafe { abi::free::<true>(p) }
}

/// glibc's `malloc_trim`, served by smalloc (see `smalloc_malloc_trim`).
#[unsafe(no_mangle)]
pub extern "C" fn malloc_trim(pad: usize) -> c_int {
    crate::extras::malloc_trim::<true>(pad)
}

/// glibc's `mallinfo2`, served by smalloc (see `smalloc_mallinfo2`).
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo2() -> libc::mallinfo2 {
    crate::extras::mallinfo2::<true>()
}

/// glibc's `mallinfo`, served by smalloc (see `smalloc_mallinfo`).
#[unsafe(no_mangle)]
pub extern "C" fn mallinfo() -> libc::mallinfo {
    crate::extras::mallinfo::<true>()
}

/// glibc's `malloc_stats`, served by smalloc (see `smalloc_malloc_stats`).
#[unsafe(no_mangle)]
pub extern "C" fn malloc_stats() {
    crate::extras::malloc_stats::<true>()
}

/// glibc's `mallopt`, served by smalloc (see `smalloc_mallopt`).
#[unsafe(no_mangle)]
pub extern "C" fn mallopt(param: c_int, value: c_int) -> c_int {
    crate::extras::mallopt::<true>(param, value)
}

/// glibc's `malloc_info`, served by smalloc (see `smalloc_malloc_info`).
///
/// # Safety
/// `fp` must be an open `FILE *` stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn malloc_info(options: c_int, fp: *mut libc::FILE) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { crate::extras::malloc_info::<true>(options, fp) }
}
