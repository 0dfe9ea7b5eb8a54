//! The C allocation functions, as `smalloc_`-prefixed symbols, and their shared implementation.
//!
//! Semantics follow glibc's (2.36), so that programs see no difference but the addresses:
//!
//! * `malloc(0)` returns a unique, freeable pointer; `free(NULL)` does nothing.
//! * Failure is null with `errno = ENOMEM`; sizes are checked for overflow (`calloc`,
//!   `reallocarray`, `pvalloc`) and against `PTRDIFF_MAX`.
//! * `realloc(NULL, n)` is `malloc(n)`; `realloc(p, 0)` frees `p` and returns null; a failed
//!   `realloc` leaves the block as it was.
//! * `memalign` and `aligned_alloc` (which glibc 2.36 implements as the same function) round an
//!   alignment that is not a power of two up to one, take any size, and fail with `EINVAL` only
//!   for alignments above `SIZE_MAX / 2 + 1`.
//! * `posix_memalign` returns `EINVAL` unless the alignment is a power-of-two multiple of
//!   `sizeof(void *)`, and leaves `*memptr` alone on any failure.
//! * `valloc` aligns to a page; `pvalloc` also rounds the size up to whole pages (one page for 0).
//! * `malloc_usable_size` is the block's real capacity: the whole slot, every byte of which the
//!   program may use.
//!
//! Each implementation takes a const parameter `INTERPOSED`: whether it was reached through a
//! standard name (see the `origin` module for why that matters).

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_void};
use core::ptr;

use crate::ALLOC;
use crate::glibc;
use crate::origin::{Origin, origin, start};

/// Alignment of every block: glibc's `MALLOC_ALIGNMENT`, which programs rely on even for tiny
/// blocks (tagging low pointer bits, SSE copies). Slots are naturally aligned to their size, so
/// this only means that the smallest slot handed out is 16 bytes.
const MIN_ALIGN: usize = 16;

/// Sets `errno` to `ENOMEM` and returns null: the one way an allocation fails.
#[cold]
#[inline(never)]
fn enomem() -> *mut c_void {
    set_errno(libc::ENOMEM);
    ptr::null_mut()
}

/// Sets this thread's `errno`.
fn set_errno(e: c_int) {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() = e };
}

/// This thread's `errno`.
fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

/// Runs `f`, then puts `errno` back as it was, unless `f` failed (returned null) and so set it.
/// The slow paths make system calls (the reservation, mappings, purges, reading the memory map)
/// whose failures set `errno` even when the call as a whole succeeds.
#[inline(always)]
fn keeping_errno(f: impl FnOnce() -> *mut c_void) -> *mut c_void {
    let saved = errno();
    let p = f();
    if !p.is_null() {
        set_errno(saved);
    }
    p
}

/// A block of at least `size` bytes aligned to `align` (a power of two), zeroed if `ZERO`; null
/// with `ENOMEM` if that cannot be had. `size` 0 is served as 1, so every call gets its own
/// block.
#[inline(always)]
fn alloc<const ZERO: bool, const INTERPOSED: bool>(size: usize, align: usize) -> *mut c_void {
    if size <= FAST_MAX && align <= MIN_ALIGN {
        // SAFETY: a small size with the minimum alignment is a valid layout.
        let layout = unsafe { Layout::from_size_align_unchecked(size, MIN_ALIGN) };
        // SAFETY: a valid layout; a size of zero gets the smallest class, a unique block.
        let p = unsafe { ALLOC.alloc_fast::<ZERO>(layout) };
        if !p.is_null() {
            return p.cast();
        }
    }
    alloc_slow::<ZERO, INTERPOSED>(size, align)
}

/// Requests up to this size with the minimum alignment try the core's fast path first.
const FAST_MAX: usize = 1024;

/// Everything [`alloc`] does not do on its fast path: first use, argument checks, failure.
#[cold]
#[inline(never)]
extern "C" fn alloc_slow<const ZERO: bool, const INTERPOSED: bool>(
    size: usize,
    align: usize,
) -> *mut c_void {
    keeping_errno(|| {
        if !ALLOC.is_reserved() {
            start::<INTERPOSED>();
        }
        // Layout checks that size, rounded up to align, fits isize: glibc's PTRDIFF_MAX limit.
        let Ok(layout) = Layout::from_size_align(size.max(1), align.max(MIN_ALIGN)) else {
            return enomem();
        };
        // SAFETY: the layout has a non-zero size.
        let p = unsafe {
            if ZERO {
                ALLOC.alloc_zeroed(layout)
            } else {
                ALLOC.alloc(layout)
            }
        };
        if p.is_null() { enomem() } else { p.cast() }
    })
}

/// The alignment `memalign` really uses for a requested one, as glibc does: a power of two at
/// least `align`. `None` (`EINVAL`) when no power of two is that big.
#[inline(always)]
fn memalign_align(align: usize) -> Option<usize> {
    if align <= MIN_ALIGN {
        Some(MIN_ALIGN)
    } else {
        align.checked_next_power_of_two()
    }
}

/// `malloc`.
///
/// # Safety
/// No precondition: it is `unsafe` like its siblings that take pointers, so that one wrapper
/// serves them all.
#[inline(always)]
pub(crate) unsafe fn malloc<const I: bool>(size: usize) -> *mut c_void {
    alloc::<false, I>(size, MIN_ALIGN)
}

/// `calloc`.
///
/// # Safety
/// No precondition: it is `unsafe` like its siblings that take pointers, so that one wrapper
/// serves them all.
#[inline(always)]
pub(crate) unsafe fn calloc<const I: bool>(n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        Some(total) => alloc::<true, I>(total, MIN_ALIGN),
        None => enomem(),
    }
}

/// `memalign` (and `aligned_alloc`, `valloc`).
///
/// # Safety
/// No precondition: it is `unsafe` like its siblings that take pointers, so that one wrapper
/// serves them all.
#[inline(always)]
pub(crate) unsafe fn memalign<const I: bool>(align: usize, size: usize) -> *mut c_void {
    match memalign_align(align) {
        Some(a) => alloc::<false, I>(size, a),
        None => {
            set_errno(libc::EINVAL);
            ptr::null_mut()
        }
    }
}

/// The page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// `valloc`.
///
/// # Safety
/// No precondition: it is `unsafe` like its siblings that take pointers, so that one wrapper
/// serves them all.
#[inline(always)]
pub(crate) unsafe fn valloc<const I: bool>(size: usize) -> *mut c_void {
    // SAFETY: forwarded.
    unsafe { memalign::<I>(page_size(), size) }
}

/// `pvalloc`.
///
/// # Safety
/// No precondition: it is `unsafe` like its siblings that take pointers, so that one wrapper
/// serves them all.
#[inline(always)]
pub(crate) unsafe fn pvalloc<const I: bool>(size: usize) -> *mut c_void {
    let page = page_size();
    match size.max(1).checked_next_multiple_of(page) {
        // SAFETY: forwarded.
        Some(rounded) => unsafe { memalign::<I>(page, rounded) },
        None => enomem(),
    }
}

/// `posix_memalign`.
///
/// # Safety
/// `memptr` must be valid for a pointer write.
#[inline(always)]
pub(crate) unsafe fn posix_memalign<const I: bool>(
    memptr: *mut *mut c_void,
    align: usize,
    size: usize,
) -> c_int {
    let word = size_of::<*mut c_void>();
    if !align.is_multiple_of(word) || !(align / word).is_power_of_two() {
        return libc::EINVAL;
    }
    // POSIX reports through the return value; errno is left as it was.
    // SAFETY: errno is this thread's.
    let saved = unsafe { *libc::__errno_location() };
    let p = alloc::<false, I>(size, align);
    set_errno(saved);
    if p.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: the caller guarantees memptr can be written.
    unsafe { memptr.write(p) };
    0
}

/// `free`.
///
/// # Safety
/// `p` must be null or a live block from this allocator (or glibc's, or the loader's).
#[inline(always)]
pub(crate) unsafe fn free<const I: bool>(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // A block of the calling thread's current run goes back with two stores, no system call,
    // so errno cannot change.
    // SAFETY: a non-null pointer handed back by the program; if it lies in smalloc's slabs it is
    // a live slot of smalloc's.
    if unsafe { ALLOC.free_fast(p.cast()) } {
        return;
    }
    // SAFETY: forwarded.
    unsafe { free_slow::<I>(p) }
}

/// Everything [`free`] does not do on its fast path: blocks of other runs, threads and
/// allocators.
///
/// # Safety
/// As for [`free`]; `p` is not null.
#[cold]
#[inline(never)]
unsafe extern "C" fn free_slow<const I: bool>(p: *mut c_void) {
    // Freeing makes system calls (unmapping, purging) and sorting the pointer may read the memory
    // map: errno must come out as it went in.
    let saved = errno();
    match origin::<I>(p) {
        // SAFETY: a live block of smalloc's. smalloc finds the block's slot from its address;
        // the layout's size only tells it how much of a big block the program may have written,
        // and C's `free` knows no better than the whole block.
        Origin::Smalloc => unsafe {
            let size = ALLOC.usable_size(p.cast()).unwrap_or(1);
            ALLOC.dealloc(p.cast(), Layout::from_size_align_unchecked(size, 1));
        },
        // SAFETY: glibc's live block holding a fallback block.
        Origin::Fallback(raw) => unsafe { glibc::free(raw) },
        // The loader's startup blocks are never given back (the loader does not either).
        Origin::Loader => {}
        // SAFETY: a live glibc block.
        Origin::Libc => unsafe { glibc::free(p) },
    }
    set_errno(saved);
}

/// `realloc`.
///
/// # Safety
/// `p` must be null or a live block from this allocator (or glibc's, or the loader's).
#[inline(always)]
pub(crate) unsafe fn realloc<const I: bool>(p: *mut c_void, size: usize) -> *mut c_void {
    if p.is_null() {
        // SAFETY: forwarded.
        return unsafe { malloc::<I>(size) };
    }
    if size == 0 {
        // glibc's choice (REALLOC_ZERO_BYTES_FREES): free, and return null.
        // SAFETY: forwarded.
        unsafe { free::<I>(p) };
        return ptr::null_mut();
    }
    keeping_errno(|| {
        let old = match origin::<I>(p) {
            // SAFETY: a live smalloc block.
            Origin::Smalloc => unsafe { ALLOC.usable_size(p.cast()) },
            // SAFETY: glibc's live block holding a fallback block.
            Origin::Fallback(raw) => Some(unsafe { glibc::fallback_usable_size(p, raw) }),
            // The size of a loader block is unknown, so it cannot be moved; it stays valid.
            Origin::Loader => return enomem(),
            // SAFETY: a live glibc block; glibc sets errno itself.
            Origin::Libc => return unsafe { glibc::realloc(p, size) },
        };
        let Some(old) = old else {
            return enomem();
        };
        // The core copies `layout.size()` bytes when it moves a block: the whole old block, as
        // the program may have used all of it.
        let (Ok(layout), Ok(_)) = (
            Layout::from_size_align(old, MIN_ALIGN),
            Layout::from_size_align(size, MIN_ALIGN),
        ) else {
            return enomem();
        };
        // SAFETY: a live block of smalloc's (or of its fallback) of `old` usable bytes; size is
        // non-zero and, rounded up to the alignment, fits isize.
        let q = unsafe { ALLOC.realloc(p.cast(), layout, size) };
        if q.is_null() { enomem() } else { q.cast() }
    })
}

/// `reallocarray`.
///
/// # Safety
/// As for [`realloc`].
#[inline(always)]
pub(crate) unsafe fn reallocarray<const I: bool>(
    p: *mut c_void,
    n: usize,
    size: usize,
) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded.
        Some(total) => unsafe { realloc::<I>(p, total) },
        None => enomem(),
    }
}

/// `malloc_usable_size`.
///
/// # Safety
/// `p` must be null or a live block from this allocator (or glibc's, or the loader's).
#[inline(always)]
pub(crate) unsafe fn malloc_usable_size<const I: bool>(p: *mut c_void) -> usize {
    if p.is_null() {
        return 0;
    }
    let saved = errno();
    let n = match origin::<I>(p) {
        // SAFETY: a live smalloc block.
        Origin::Smalloc => unsafe { ALLOC.usable_size(p.cast()) }.unwrap_or(0),
        // SAFETY: glibc's live block holding a fallback block.
        Origin::Fallback(raw) => unsafe { glibc::fallback_usable_size(p, raw) },
        Origin::Loader => 0,
        // SAFETY: a live glibc block.
        Origin::Libc => unsafe { glibc::usable_size(p) },
    };
    set_errno(saved);
    n
}

/// Declares the exported `smalloc_` functions, each a thin wrapper over the implementation above
/// with `INTERPOSED = false`.
macro_rules! prefixed {
    ($($(#[$doc:meta])* fn $name:ident => $imp:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {
        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// C's rules for this function: pointers passed in must be null or live blocks
            /// from this allocator (blocks from glibc's malloc are accepted too).
            #[unsafe(no_mangle)]
            pub unsafe extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
                // SAFETY: forwarded from the caller.
                unsafe { $imp::<false>($($arg),*) }
            }
        )*
    };
}

prefixed! {
    /// `malloc`: a block of at least `size` bytes (a unique one for 0), or null and `ENOMEM`.
    fn smalloc_malloc => malloc(size: usize) -> *mut c_void;
    /// `calloc`: `n * size` zeroed bytes; null and `ENOMEM` if the product overflows.
    fn smalloc_calloc => calloc(n: usize, size: usize) -> *mut c_void;
    /// `realloc`: resizes, keeping the contents; `realloc(NULL, n)` is `malloc(n)`,
    /// `realloc(p, 0)` frees `p` and returns null; on failure `p` is untouched.
    fn smalloc_realloc => realloc(p: *mut c_void, size: usize) -> *mut c_void;
    /// `reallocarray`: `realloc(p, n * size)`, or null and `ENOMEM` if the product overflows.
    fn smalloc_reallocarray => reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void;
    /// `free`: gives the block back; null is ignored.
    fn smalloc_free => free(p: *mut c_void);
    /// `posix_memalign`: stores a block aligned to `align` in `*memptr` and returns 0; returns
    /// `EINVAL` (bad alignment) or `ENOMEM` and leaves `*memptr` alone otherwise.
    fn smalloc_posix_memalign => posix_memalign(memptr: *mut *mut c_void, align: usize, size: usize) -> c_int;
    /// `memalign`: a block aligned to `align` rounded up to a power of two.
    fn smalloc_memalign => memalign(align: usize, size: usize) -> *mut c_void;
    /// `aligned_alloc` (C11): as `memalign`; `size` need not be a multiple of `align`.
    fn smalloc_aligned_alloc => memalign(align: usize, size: usize) -> *mut c_void;
    /// `valloc`: a page-aligned block.
    fn smalloc_valloc => valloc(size: usize) -> *mut c_void;
    /// `pvalloc`: a page-aligned block of whole pages (one page for 0).
    fn smalloc_pvalloc => pvalloc(size: usize) -> *mut c_void;
    /// `malloc_usable_size`: how many bytes the block really holds (0 for null).
    fn smalloc_malloc_usable_size => malloc_usable_size(p: *mut c_void) -> usize;
}

/// `free_sized` (C23): as `free`; the size is not needed, as smalloc reads it from the address.
///
/// # Safety
/// As for `free`; `size` should be the size the block was asked for.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smalloc_free_sized(p: *mut c_void, size: usize) {
    let _ = size;
    // SAFETY: forwarded from the caller.
    unsafe { free::<false>(p) }
}

/// `free_aligned_sized` (C23): as `free`.
///
/// # Safety
/// As for `free`; `align` and `size` should be what the block was asked with.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smalloc_free_aligned_sized(p: *mut c_void, align: usize, size: usize) {
    let _ = (align, size);
    // SAFETY: forwarded from the caller.
    unsafe { free::<false>(p) }
}

/// `malloc_trim`: gives free memory back to the OS now; 1 if anything was released, else 0.
#[unsafe(no_mangle)]
pub extern "C" fn smalloc_malloc_trim(pad: usize) -> c_int {
    crate::extras::malloc_trim::<false>(pad)
}

/// `mallinfo2`: smalloc's figures in glibc's structure (see the crate docs for the fields).
#[unsafe(no_mangle)]
pub extern "C" fn smalloc_mallinfo2() -> libc::mallinfo2 {
    crate::extras::mallinfo2::<false>()
}

/// `mallinfo`: as `smalloc_mallinfo2`, in `int` fields (clamped to `INT_MAX`).
#[unsafe(no_mangle)]
pub extern "C" fn smalloc_mallinfo() -> libc::mallinfo {
    crate::extras::mallinfo::<false>()
}

/// `malloc_stats`: a summary of smalloc's figures on standard error.
#[unsafe(no_mangle)]
pub extern "C" fn smalloc_malloc_stats() {
    crate::extras::malloc_stats::<false>()
}

/// `mallopt`: smalloc honours no option and returns 0 (glibc's answer in fallback mode).
#[unsafe(no_mangle)]
pub extern "C" fn smalloc_mallopt(param: c_int, value: c_int) -> c_int {
    crate::extras::mallopt::<false>(param, value)
}

/// `malloc_info`: smalloc's figures as XML on `fp`; `options` must be 0.
///
/// # Safety
/// `fp` must be an open `FILE *` stream.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn smalloc_malloc_info(options: c_int, fp: *mut libc::FILE) -> c_int {
    // SAFETY: forwarded from the caller.
    unsafe { crate::extras::malloc_info::<false>(options, fp) }
}
