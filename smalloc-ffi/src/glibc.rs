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

/// Bytes of the header before every fallback block: [distance to glibc's block, check word].
const HEADER: usize = 16;

/// Check word of a fallback block's header, xored with the block's address, so that a header
/// copied elsewhere, or data that happens to precede a foreign block, does not pass.
const MAGIC: usize = 0x5a11_0cfa_11ba_c4b1;

/// glibc's malloc as smalloc's fallback allocator: it serves everything when the OS refuses
/// smalloc's reservation.
///
/// Each block carries a 16-byte header right before it, written here: how far before the block
/// glibc's own block starts, and a check word derived from the block's address. That makes the
/// fallback's blocks recognizably smalloc's for their whole life (see [`fallback_block`]),
/// whatever addresses glibc gives them.
pub(crate) struct Glibc;

/// Writes the header of the fallback block at `user`, which lies `lead` bytes into glibc's block.
///
/// # Safety
/// `user - 16 .. user` must be inside glibc's block, which is the caller's.
unsafe fn write_header(user: *mut u8, lead: usize) {
    // SAFETY: per the caller.
    unsafe {
        user.cast::<usize>().sub(2).write(lead);
        user.cast::<usize>().sub(1).write(MAGIC ^ user as usize);
    }
}

/// glibc's block of the fallback block at `user`, and the block's usable bytes; `None` if `user`
/// carries no fallback header.
///
/// # Safety
/// The 16 bytes before `user` must be readable (see [`fallback_block`] for when they are).
pub(crate) unsafe fn fallback_block(user: *mut c_void) -> Option<*mut c_void> {
    let user = user.cast::<usize>();
    // SAFETY: per the caller.
    let (lead, check) = unsafe { (user.sub(2).read(), user.sub(1).read()) };
    (check == MAGIC ^ user as usize && (HEADER..=1 << 40).contains(&lead))
        .then(|| user.cast::<u8>().wrapping_sub(lead).cast())
}

/// A fallback block of `size` bytes aligned to `align` (zeroed if `zero`), or null.
fn fallback_alloc(size: usize, align: usize, zero: bool) -> *mut u8 {
    // The header takes `align` bytes before the block (at least 16), so the block stays aligned.
    let lead = align.max(HEADER);
    let Some(total) = size.checked_add(lead) else {
        return ptr::null_mut();
    };
    // SAFETY: plain calls into glibc's allocator.
    let raw: *mut u8 = unsafe {
        match (align <= GLIBC_ALIGN, zero) {
            (true, true) => __libc_calloc(1, total).cast(),
            (true, false) => __libc_malloc(total).cast(),
            (false, _) => __libc_memalign(align, total).cast(),
        }
    };
    if raw.is_null() {
        return raw;
    }
    // SAFETY: the block holds lead + size bytes; the header fits in the lead.
    unsafe {
        let user = raw.add(lead);
        if zero && align > GLIBC_ALIGN {
            user.write_bytes(0, size);
        }
        write_header(user, lead);
        user
    }
}

// SAFETY: each method hands out blocks of at least `layout.size()` bytes, aligned as asked (the
// header's room is a multiple of the alignment), and failure is null; blocks are glibc's, found
// again through their header.
unsafe impl GlobalAlloc for Glibc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        fallback_alloc(layout.size(), layout.align(), false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        fallback_alloc(layout.size(), layout.align(), true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: the caller hands back a live block from this allocator, which has a header.
        unsafe {
            if let Some(raw) = fallback_block(ptr.cast()) {
                free(raw);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller hands over a live block of ours, which has a header.
        let Some(raw) = (unsafe { fallback_block(ptr.cast()) }) else {
            return ptr::null_mut();
        };
        let lead = ptr as usize - raw as usize;
        if layout.align() <= GLIBC_ALIGN
            && lead == HEADER
            && let Some(total) = new_size.checked_add(HEADER)
        {
            // SAFETY: raw is glibc's live block; on success the contents moved with it.
            unsafe {
                let q = realloc(raw, total).cast::<u8>();
                if q.is_null() {
                    return q;
                }
                let user = q.add(HEADER);
                write_header(user, HEADER);
                return user;
            }
        }
        // glibc's realloc keeps only malloc's alignment: move over-aligned blocks by hand.
        let q = fallback_alloc(new_size, layout.align(), false);
        if !q.is_null() {
            // SAFETY: both blocks are live and distinct, and the copy fits both.
            unsafe {
                ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                free(raw);
            }
        }
        q
    }
}

/// Usable bytes of the fallback block at `user` (glibc's block `raw`).
///
/// # Safety
/// `raw` must be glibc's live block holding the fallback block `user`.
pub(crate) unsafe fn fallback_usable_size(user: *mut c_void, raw: *mut c_void) -> usize {
    // SAFETY: per the caller.
    unsafe { usable_size(raw) }.saturating_sub(user as usize - raw as usize)
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

/// glibc's functions that have no internal (`__libc_`) name, looked up with `dlsym`.
#[derive(Clone, Copy)]
#[repr(usize)]
pub(crate) enum Func {
    /// `size_t malloc_usable_size(void *)`.
    UsableSize,
    /// `struct mallinfo2 mallinfo2(void)`.
    Mallinfo2,
    /// `int malloc_trim(size_t)`.
    MallocTrim,
    /// `void malloc_stats(void)`.
    MallocStats,
    /// `int malloc_info(int, FILE *)`.
    MallocInfo,
    /// `int mallopt(int, int)`.
    Mallopt,
}

/// Names of the [`Func`]s, in order.
const NAMES: [&core::ffi::CStr; 6] = [
    c"malloc_usable_size",
    c"mallinfo2",
    c"malloc_trim",
    c"malloc_stats",
    c"malloc_info",
    c"mallopt",
];

/// Addresses of the [`Func`]s, once looked up; 0 before.
static FUNCS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

/// Looks glibc's function `f` up. `dlsym` takes the loader's lock, so this runs from the
/// library's constructor, when nothing else is going on; [`func`] repeats it only if asked
/// before that. `RTLD_NEXT` finds the definition after this library's: glibc's.
fn resolve(f: Func) -> usize {
    // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name has no other preconditions; it
    // returns null if there is no such symbol.
    let a = unsafe { libc::dlsym(libc::RTLD_NEXT, NAMES[f as usize].as_ptr()) } as usize;
    FUNCS[f as usize].store(a, Ordering::Release);
    a
}

/// The address of glibc's function `f`, or 0 if glibc has none.
pub(crate) fn func(f: Func) -> usize {
    match FUNCS[f as usize].load(Ordering::Acquire) {
        0 => resolve(f),
        a => a,
    }
}

/// glibc's `malloc_usable_size` of one of its blocks; 0 if glibc's function cannot be found.
///
/// # Safety
/// `p` must be a live block from glibc's malloc.
pub(crate) unsafe fn usable_size(p: *mut c_void) -> usize {
    let f = func(Func::UsableSize);
    if f == 0 {
        return 0;
    }
    // SAFETY: f is the address of glibc's `size_t malloc_usable_size(void *)`.
    let f: unsafe extern "C" fn(*mut c_void) -> usize = unsafe { core::mem::transmute(f) };
    // SAFETY: forwarded from the caller.
    unsafe { f(p) }
}

/// Runs when the library is loaded (or, linked statically, at program start): looks up what
/// must not be looked up later from inside an allocation call, and records the loader's
/// regions (see `origin`) before the program runs.
extern "C" fn constructor() {
    for f in [
        Func::UsableSize,
        Func::Mallinfo2,
        Func::MallocTrim,
        Func::MallocStats,
        Func::MallocInfo,
        Func::Mallopt,
    ] {
        resolve(f);
    }
    crate::origin::on_load();
}

/// Registers [`constructor`] with the loader (and with the C runtime for static links).
#[used]
// SAFETY: `.init_array` holds pointers to functions taking no arguments, run once at load time;
// `constructor` is such a function and needs nothing to have run before it.
#[unsafe(link_section = ".init_array")]
static CONSTRUCTOR: extern "C" fn() = constructor;
