//! glibc's own allocator, reached without going through `malloc` (which is this library).
//!
//! glibc exports its allocator under internal names as well (`__libc_malloc`, `__libc_free`, ...),
//! and those are never interposed, so calling them cannot come back here. The one function with
//! no such name, `malloc_usable_size`, is looked up with `dlsym(RTLD_NEXT, ...)`: the definition
//! after this library in the search order, which is glibc's.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::ptr;
use core::sync::atomic::{AtomicUsize, Ordering};

// SAFETY: these are glibc's exported allocation functions (GLIBC_2.2.5), with their C
// signatures.
unsafe extern "C" {
    fn __libc_malloc(size: usize) -> *mut c_void;
    fn __libc_calloc(n: usize, size: usize) -> *mut c_void;
    fn __libc_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn __libc_memalign(align: usize, size: usize) -> *mut c_void;
    fn __libc_free(p: *mut c_void);
}

/// Alignment glibc's malloc guarantees on x86_64 (`MALLOC_ALIGNMENT`).
const GLIBC_ALIGN: usize = 16;

/// glibc's malloc as smalloc's fallback allocator: it serves everything when the OS refuses
/// smalloc's reservation.
pub(crate) struct Glibc;

// SAFETY: each method forwards to the glibc function with the matching contract: blocks are at
// least `layout.size()` bytes, aligned as asked (memalign for alignments above malloc's), and
// failure is null.
unsafe impl GlobalAlloc for Glibc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: plain calls into glibc's allocator.
        unsafe {
            if layout.align() <= GLIBC_ALIGN {
                __libc_malloc(layout.size()).cast()
            } else {
                __libc_memalign(layout.align(), layout.size()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= GLIBC_ALIGN {
            // SAFETY: a plain call into glibc's allocator.
            unsafe { __libc_calloc(1, layout.size()).cast() }
        } else {
            // SAFETY: forwarded; the block holds layout.size() bytes when not null.
            unsafe {
                let p = self.alloc(layout);
                if !p.is_null() {
                    p.write_bytes(0, layout.size());
                }
                p
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller hands back a live block from this allocator, i.e. from glibc.
        unsafe { free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= GLIBC_ALIGN {
            // SAFETY: the caller hands over a live glibc block.
            return unsafe { realloc(ptr.cast(), new_size).cast() };
        }
        // glibc's realloc keeps only malloc's alignment, so move over-aligned blocks by hand.
        // SAFETY: new_size rounded up to the alignment fits isize, per the caller.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: forwarded; both blocks are live and distinct, and the copy fits both.
        unsafe {
            let q = self.alloc(new_layout);
            if !q.is_null() {
                ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                free(ptr.cast());
            }
            q
        }
    }
}

/// Frees a block of glibc's malloc.
///
/// # Safety
/// `p` must be null or a live block from glibc's malloc.
#[inline]
pub(crate) unsafe fn free(p: *mut c_void) {
    // SAFETY: forwarded from the caller.
    unsafe { __libc_free(p) }
}

/// Resizes a block of glibc's malloc (glibc semantics: null on failure, old block intact).
///
/// # Safety
/// `p` must be null or a live block from glibc's malloc.
#[inline]
pub(crate) unsafe fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded from the caller.
    unsafe { __libc_realloc(p, size) }
}

/// Address of glibc's `malloc_usable_size`, once looked up; 0 before.
static USABLE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// Looks up glibc's `malloc_usable_size`. `dlsym` takes the loader's lock, so this runs from the
/// library's constructor, when nothing else is going on; [`usable_size`] repeats it only if
/// asked before that.
fn resolve_usable_size() -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no other preconditions; it
    // returns null if there is no such symbol.
    let f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"malloc_usable_size".as_ptr()) } as usize;
    USABLE_SIZE.store(f, Ordering::Release);
    f
}

/// glibc's `malloc_usable_size` of one of its blocks; 0 if glibc's function cannot be found.
///
/// # Safety
/// `p` must be a live block from glibc's malloc.
pub(crate) unsafe fn usable_size(p: *mut c_void) -> usize {
    let mut f = USABLE_SIZE.load(Ordering::Acquire);
    if f == 0 {
        f = resolve_usable_size();
        if f == 0 {
            return 0;
        }
    }
    // SAFETY: f is the address of glibc's `size_t malloc_usable_size(void *)`.
    let f: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { core::mem::transmute(f) };
    // SAFETY: forwarded from the caller.
    unsafe { f(p) }
}

/// Runs when the library is loaded (or, linked statically, at program start): looks up what
/// must not be looked up later from inside an allocation call.
extern "C" fn constructor() {
    resolve_usable_size();
}

/// Registers [`constructor`] with the loader (and with the C runtime for static links).
#[used]
// SAFETY: `.init_array` holds pointers to functions taking no arguments, run once at load time;
// `constructor` is such a function and needs nothing to have run before it.
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
