//! glibc's malloc extras: `malloc_trim`, `mallinfo`, `mallinfo2`, `malloc_stats`, `mallopt` and
//! `malloc_info`, answered with smalloc's own figures (`Smalloc::stats`).
//!
//! The figures, in glibc's fields:
//!
//! | field | smalloc |
//! |---|---|
//! | `arena` | bytes of the slab region resident in memory (slots and metadata) |
//! | `uordblks` | bytes in live blocks, each counted as its `malloc_usable_size` (direct mappings included) |
//! | `fordblks` | bytes of resident slots not in live blocks: free memory held for reuse |
//! | `hblks`, `hblkhd` | direct mappings (blocks over 128 MiB): count and mapped bytes |
//! | `ordblks` | live blocks |
//! | others | 0 |
//!
//! glibc counts its mapped blocks apart from `uordblks`; here `uordblks` is every live byte, so
//! that it answers "how much does the program have allocated" in one number.
//!
//! When the reservation was refused, every block is glibc's (behind smalloc's header), and these
//! functions are glibc's own, whose figures then cover everything.
//!
//! `mallopt` honours no option (smalloc has no tunables; its purge policy adapts by itself) and
//! returns 0, glibc's answer for an option it does not take, except in fallback mode, where
//! glibc's `mallopt` answers.

use core::ffi::{c_int, c_void};
use core::fmt::Write;

use crate::ALLOC;
use crate::glibc::{self, Func};
use crate::origin::start;

/// The statistics, after making sure smalloc has started; `None` in fallback mode (the
/// reservation was refused).
fn stats<const I: bool>() -> Option<smalloc_core::Stats> {
    // SAFETY: errno is this thread's; starting may make system calls.
    let saved = unsafe { *libc::__errno_location() };
    start::<I>();
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    ALLOC.is_reserved().then(|| ALLOC.stats())
}

/// glibc's function `f`, as a function pointer of type `T`, if glibc has it.
///
/// # Safety
/// `T` must be the function's C signature.
unsafe fn glibc_fn<T: Copy>(f: Func) -> Option<T> {
    let a = glibc::func(f);
    // SAFETY: per the caller, a function pointer of the right type; a is non-null.
    (a != 0).then(|| unsafe { core::mem::transmute_copy::<usize, T>(&a) })
}

/// `mallinfo2`.
pub(crate) fn mallinfo2<const I: bool>() -> libc::mallinfo2 {
    let Some(st) = stats::<I>() else {
        // SAFETY: glibc's `struct mallinfo2 mallinfo2(void)`.
        return match unsafe { glibc_fn::<extern "C" fn() -> libc::mallinfo2>(Func::Mallinfo2) } {
            Some(f) => f(),
            None => zero_mallinfo2(),
        };
    };
    libc::mallinfo2 {
        arena: st.resident_bytes,
        ordblks: st.live_blocks,
        smblks: 0,
        hblks: st.direct_blocks,
        hblkhd: st.direct_bytes,
        usmblks: 0,
        fsmblks: 0,
        uordblks: st.live_bytes,
        fordblks: st.free_resident_bytes(),
        keepcost: 0,
    }
}

/// All fields zero.
fn zero_mallinfo2() -> libc::mallinfo2 {
    libc::mallinfo2 {
        arena: 0,
        ordblks: 0,
        smblks: 0,
        hblks: 0,
        hblkhd: 0,
        usmblks: 0,
        fsmblks: 0,
        uordblks: 0,
        fordblks: 0,
        keepcost: 0,
    }
}

/// `mallinfo`: [`mallinfo2`] in `int` fields (figures over `INT_MAX` are clamped, where glibc's
/// wrap).
pub(crate) fn mallinfo<const I: bool>() -> libc::mallinfo {
    let m = mallinfo2::<I>();
    let c = |v: usize| v.min(c_int::MAX as usize) as c_int;
    libc::mallinfo {
        arena: c(m.arena),
        ordblks: c(m.ordblks),
        smblks: c(m.smblks),
        hblks: c(m.hblks),
        hblkhd: c(m.hblkhd),
        usmblks: c(m.usmblks),
        fsmblks: c(m.fsmblks),
        uordblks: c(m.uordblks),
        fordblks: c(m.fordblks),
        keepcost: c(m.keepcost),
    }
}

/// `malloc_trim`: gives every free page smalloc can reach back to the OS now (see
/// `Smalloc::trim`); returns 1 if that released anything. `pad` is accepted and ignored: smalloc
/// keeps nothing at a heap top.
pub(crate) fn malloc_trim<const I: bool>(pad: usize) -> c_int {
    // SAFETY: errno is this thread's; trimming makes system calls.
    let saved = unsafe { *libc::__errno_location() };
    let r = if stats::<I>().is_some() {
        (ALLOC.trim() > 0) as c_int
    } else {
        // SAFETY: glibc's `int malloc_trim(size_t)`.
        match unsafe { glibc_fn::<extern "C" fn(usize) -> c_int>(Func::MallocTrim) } {
            Some(f) => f(pad),
            None => 0,
        }
    };
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
    r
}

/// `mallopt`: see the module docs.
pub(crate) fn mallopt<const I: bool>(param: c_int, value: c_int) -> c_int {
    if stats::<I>().is_some() {
        return 0;
    }
    // SAFETY: glibc's `int mallopt(int, int)`.
    match unsafe { glibc_fn::<extern "C" fn(c_int, c_int) -> c_int>(Func::Mallopt) } {
        Some(f) => f(param, value),
        None => 0,
    }
}

/// `malloc_stats`: glibc's summary lines on standard error, then smalloc's own statistics.
pub(crate) fn malloc_stats<const I: bool>() {
    let Some(st) = stats::<I>() else {
        // SAFETY: glibc's `void malloc_stats(void)`.
        if let Some(f) = unsafe { glibc_fn::<extern "C" fn()>(Func::MallocStats) } {
            f();
        }
        return;
    };
    let system = st.resident_bytes + st.direct_bytes;
    let mut out = smalloc_plat::StackWriter::new(smalloc_plat::write_stderr);
    let _ = write!(
        out,
        "Arena 0:\nsystem bytes     = {:>10}\nin use bytes     = {:>10}\n\
         Total (incl. mmap):\nsystem bytes     = {:>10}\nin use bytes     = {:>10}\n\
         max mmap regions = {:>10}\nmax mmap bytes   = {:>10}\n{st}",
        st.resident_bytes,
        st.live_bytes.saturating_sub(st.direct_bytes),
        system,
        st.live_bytes,
        st.direct_blocks,
        st.direct_bytes,
    );
    out.flush();
}

/// `malloc_info`: the statistics as XML in glibc's shape (`<malloc version="1">` with one heap),
/// plus a `<total type="live">` element and the live figures of each size class. `options` must
/// be 0 (else `EINVAL` and -1, as glibc).
///
/// # Safety
/// `fp` must be an open `FILE *` stream.
pub(crate) unsafe fn malloc_info<const I: bool>(options: c_int, fp: *mut libc::FILE) -> c_int {
    if options != 0 {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::EINVAL };
        return -1;
    }
    let Some(st) = stats::<I>() else {
        // SAFETY: glibc's `int malloc_info(int, FILE *)`; fp per the caller.
        return match unsafe {
            glibc_fn::<unsafe extern "C" fn(c_int, *mut libc::FILE) -> c_int>(Func::MallocInfo)
        } {
            Some(f) => unsafe { f(options, fp) },
            None => 0,
        };
    };
    let mut ok = true;
    let mut out = smalloc_plat::StackWriter::new(|b: &[u8]| {
        // SAFETY: fp is an open stream per the caller; fwrite reads from a live slice.
        ok &= unsafe { libc::fwrite(b.as_ptr().cast::<c_void>(), 1, b.len(), fp) } == b.len();
    });
    let _ = writeln!(out, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>");
    for c in st.classes().iter().filter(|c| c.live_blocks != 0) {
        let _ = writeln!(
            out,
            "  <size from=\"{0}\" to=\"{0}\" total=\"{1}\" count=\"{2}\"/>",
            c.slot_size,
            c.live_blocks * c.slot_size,
            c.live_blocks
        );
    }
    let free = st.free_resident_bytes();
    let _ = write!(
        out,
        "</sizes>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n\
         <total type=\"rest\" count=\"0\" size=\"{free}\"/>\n\
         <system type=\"current\" size=\"{res}\"/>\n<system type=\"max\" size=\"{res}\"/>\n\
         <aspace type=\"total\" size=\"{res}\"/>\n<aspace type=\"mprotect\" size=\"{res}\"/>\n\
         </heap>\n<total type=\"fast\" count=\"0\" size=\"0\"/>\n\
         <total type=\"rest\" count=\"0\" size=\"{free}\"/>\n\
         <total type=\"mmap\" count=\"{mb}\" size=\"{mbytes}\"/>\n\
         <total type=\"live\" count=\"{lb}\" size=\"{lbytes}\"/>\n\
         <system type=\"current\" size=\"{sys}\"/>\n<system type=\"max\" size=\"{sys}\"/>\n\
         <aspace type=\"total\" size=\"{sys}\"/>\n<aspace type=\"mprotect\" size=\"{sys}\"/>\n\
         </malloc>\n",
        res = st.resident_bytes,
        mb = st.direct_blocks,
        mbytes = st.direct_bytes,
        lb = st.live_blocks,
        lbytes = st.live_bytes,
        sys = st.resident_bytes + st.direct_bytes,
    );
    drop(out);
    if ok { 0 } else { -1 }
}
