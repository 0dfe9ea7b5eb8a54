//! The operating-system interface of smalloc.
//!
//! smalloc needs only a handful of things from the OS, all of them about address space:
//!
//! * [`reserve`]: a huge, lazily backed region (`MAP_NORESERVE`) that costs nothing until touched;
//! * [`map`], [`commit`]: ordinary, committed anonymous memory for blocks too big for any slab;
//! * [`unmap`], [`remap`]: give a mapping back, or resize it without copying its pages;
//! * [`purge`]: drop the physical pages behind a range so they read back as zero;
//! * [`exclude_from_core_dumps`]: keep the sparse reservation out of core files;
//! * [`no_huge_pages`]: keep transparent huge pages from inflating sparsely touched ranges;
//! * [`thread_exit_key`], [`arm_thread_exit`]: run a function when a thread exits;
//! * [`now_ms`]: a cheap monotonic clock for decay decisions;
//! * [`resident`]: how much of a range is in memory, for statistics;
//! * [`env_flag`], [`write_stderr`], [`StackWriter`]: what printing statistics at exit takes;
//! * [`page_size`].
//!
//! Every function here is a thin wrapper over one system call. None of them allocates, locks,
//! prints or panics, so all of them may be called from inside a global allocator. Failures are
//! reported as `None` / `false`; the caller decides what to do.
//!
//! Linux is the tested platform. The macOS branches are written against the documented
//! `mmap`/`madvise` behaviour of Darwin but have not been run (see the workspace README).

#![no_std]
#![deny(missing_docs)]

use core::ptr::{self, NonNull};

/// Flags shared by every anonymous private mapping this crate makes.
const ANON_PRIVATE: libc::c_int = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;

/// Reserves `len` bytes of address space, readable and writable, without committing memory.
///
/// The pages are backed by the kernel only when first touched, and read as zero until written.
/// `MAP_NORESERVE` keeps the kernel from charging the whole length against the commit limit, which
/// is what lets a process hold tens of TiB of addresses it will only ever use sparsely.
///
/// Returns `None` if the OS refuses (address-space limit, `ulimit -v`, strict overcommit).
pub fn reserve(len: usize) -> Option<NonNull<u8>> {
    mmap_anon(len, ANON_PRIVATE | libc::MAP_NORESERVE)
}

/// Maps `len` bytes of fresh, zero-filled, committed memory.
///
/// Unlike [`reserve`], the mapping is charged against the commit limit, so under strict overcommit
/// an impossible request fails here, cleanly, instead of later with a fault.
pub fn map(len: usize) -> Option<NonNull<u8>> {
    mmap_anon(len, ANON_PRIVATE)
}

/// Replaces `[ptr, ptr + len)` with fresh, zero-filled, committed pages (as [`map`] would make),
/// in place. Used to commit one part of a [`reserve`]d range. Returns whether the OS agreed; on
/// failure the range may be unmapped.
///
/// # Safety
/// The range must be page-aligned and lie inside a reservation this process owns whose contents
/// nobody needs.
pub unsafe fn commit(ptr: NonNull<u8>, len: usize) -> bool {
    // SAFETY: the caller guarantees the range is ours and dead; MAP_FIXED replaces exactly it.
    let p = unsafe {
        libc::mmap(
            ptr.as_ptr().cast(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            ANON_PRIVATE | libc::MAP_FIXED,
            -1,
            0,
        )
    };
    p == ptr.as_ptr().cast()
}

fn mmap_anon(len: usize, flags: libc::c_int) -> Option<NonNull<u8>> {
    if len == 0 {
        return None;
    }
    // SAFETY: an anonymous mapping with a null hint creates new pages and cannot alias or clobber
    // any existing mapping; the kernel validates `len` and reports failure as MAP_FAILED.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        NonNull::new(p.cast())
    }
}

/// Unmaps `[ptr, ptr + len)`. Returns whether the OS accepted the request.
///
/// # Safety
/// The range must be page-aligned, must lie within mappings this process owns, and nothing may
/// access it afterwards.
pub unsafe fn unmap(ptr: NonNull<u8>, len: usize) -> bool {
    // SAFETY: the caller guarantees the range is ours and dead.
    unsafe { libc::munmap(ptr.as_ptr().cast(), len) == 0 }
}

/// Resizes the mapping `[ptr, ptr + old_len)` to `new_len` bytes, moving it if it cannot grow in
/// place. The contents (up to the smaller length) travel with it, without being copied.
///
/// Returns the new start, or `None` if the OS refuses, in which case the old mapping is intact.
/// Always `None` where the OS has no `mremap` (macOS): callers then allocate, copy and free.
///
/// # Safety
/// `[ptr, ptr + old_len)` must be exactly one page-aligned anonymous mapping this process owns;
/// on success, the old range must not be accessed again.
pub unsafe fn remap(ptr: NonNull<u8>, old_len: usize, new_len: usize) -> Option<NonNull<u8>> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: the caller guarantees the range is one mapping of ours; MREMAP_MAYMOVE lets the
        // kernel pick a new place, and on failure the old mapping is left untouched.
        let p =
            unsafe { libc::mremap(ptr.as_ptr().cast(), old_len, new_len, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            None
        } else {
            NonNull::new(p.cast())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, old_len, new_len);
        None
    }
}

/// Releases the physical pages behind `[ptr, ptr + len)` while keeping the addresses reserved.
///
/// Returns `true` when the range is now guaranteed to read as zero (and to cost no memory until
/// touched again); `false` if the OS refused, in which case the contents are unchanged.
///
/// # Safety
/// The range must be page-aligned, inside a private anonymous mapping this process owns, and hold
/// nothing anyone still needs.
pub unsafe fn purge(ptr: NonNull<u8>, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: caller guarantees the range is ours and dead. For private anonymous memory,
        // MADV_DONTNEED frees the pages and later reads see zero-filled pages.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTNEED) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        // Darwin's MADV_DONTNEED does not promise zeroes, so map fresh pages over the range.
        // SAFETY: caller guarantees the range is ours and dead; MAP_FIXED replaces exactly it.
        let p = unsafe {
            libc::mmap(
                ptr.as_ptr().cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                ANON_PRIVATE | libc::MAP_NORESERVE | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        p == ptr.as_ptr().cast()
    }
}

/// Asks the OS to leave `[ptr, ptr + len)` out of core dumps. Best effort: returns whether the
/// hint was accepted (always `false` where the OS has no such hint).
///
/// # Safety
/// The range must be page-aligned and inside a mapping this process owns.
pub unsafe fn exclude_from_core_dumps(ptr: NonNull<u8>, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: caller guarantees the range is ours; MADV_DONTDUMP only sets a flag on the VMA.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_DONTDUMP) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, len);
        false
    }
}

/// Asks the OS not to back `[ptr, ptr + len)` with transparent huge pages (nor to collapse it into
/// them later). A sparse region in which a few scattered 4 KiB pages are touched would otherwise
/// cost a whole 2 MiB page for each touched one wherever THP is enabled. Best effort: returns
/// whether the hint was accepted (always `false` where the OS has no such hint).
///
/// # Safety
/// The range must be page-aligned and inside a mapping this process owns.
pub unsafe fn no_huge_pages(ptr: NonNull<u8>, len: usize) -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: caller guarantees the range is ours; MADV_NOHUGEPAGE only sets a flag on the
        // VMA.
        unsafe { libc::madvise(ptr.as_ptr().cast(), len, libc::MADV_NOHUGEPAGE) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (ptr, len);
        false
    }
}

/// Creates a thread-specific key whose `destructor` runs when a thread that armed it (see
/// [`arm_thread_exit`]) exits, after the thread's own thread-local destructors (Rust's and C++'s
/// `thread_local`), with the value it armed the key with. Returns the key, or `None` if the OS has
/// no key left. Allocates nothing.
pub fn thread_exit_key(destructor: unsafe extern "C" fn(*mut core::ffi::c_void)) -> Option<u32> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer and the destructor has the signature pthread expects.
    let rc = unsafe { libc::pthread_key_create(&mut key, Some(destructor)) };
    (rc == 0).then_some(key as u32)
}

/// Frees a key made by [`thread_exit_key`] that nothing armed.
pub fn drop_thread_exit_key(key: u32) {
    // SAFETY: deleting a key has no other effect than making it unusable.
    unsafe { libc::pthread_key_delete(key as libc::pthread_key_t) };
}

/// Arms `key` for the calling thread: its destructor will run with `value` (non-zero, passed as
/// a pointer) when the thread exits. Returns whether it worked. For the first 32 keys of a process
/// glibc stores the value in the thread descriptor; later keys may make it allocate (`calloc`).
pub fn arm_thread_exit(key: u32, value: usize) -> bool {
    // SAFETY: pthread_setspecific only stores the value for this thread; it is never dereferenced
    // by pthread, only handed to the destructor.
    unsafe {
        libc::pthread_setspecific(
            key as libc::pthread_key_t,
            core::ptr::without_provenance(value),
        ) == 0
    }
}

/// Milliseconds on a monotonic clock that may be a few milliseconds coarse
/// (`CLOCK_MONOTONIC_COARSE` on Linux: read from the vDSO without a system call), wrapping
/// around every 49 days. Only differences between two readings mean anything.
pub fn now_ms() -> u32 {
    #[cfg(target_os = "linux")]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC_COARSE;
    #[cfg(not(target_os = "linux"))]
    const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; the clock id exists on the platform.
    unsafe { libc::clock_gettime(CLOCK, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1000)
        .wrapping_add(ts.tv_nsec as u64 / 1_000_000) as u32
}

/// Bytes of `[ptr, ptr + len)` resident in memory, counted page by page with `mincore`; pages
/// outside any mapping count as not resident. Costs one system call per 16 MiB (of 4 KiB pages)
/// and allocates nothing.
///
/// # Safety
/// `ptr` must be page-aligned. Nothing in the range is read.
pub unsafe fn resident(ptr: NonNull<u8>, len: usize) -> usize {
    let page = page_size();
    let mut vec = [0u8; 4096];
    let mut total = 0;
    let mut at = ptr.as_ptr();
    let end = (at as usize).saturating_add(len);
    while (at as usize) < end {
        let pages = ((end - at as usize).div_ceil(page)).min(vec.len());
        // SAFETY: mincore writes one byte per page of the range into vec, which has room for
        // `pages`; it reads no memory of the range. It may set errno, which is kept.
        let ok = unsafe {
            let errno = errno_location();
            let saved = *errno;
            let rc = libc::mincore(at.cast(), pages * page, vec.as_mut_ptr().cast());
            *errno = saved;
            rc == 0
        };
        if ok {
            total += vec[..pages].iter().filter(|&&b| b & 1 != 0).count() * page;
        }
        at = at.wrapping_add(pages * page);
    }
    total
}

/// Whether environment variable `name` is set to something other than empty or `0`. Reads the
/// environment in place (`getenv`): allocates nothing.
pub fn env_flag(name: &core::ffi::CStr) -> bool {
    // SAFETY: name is NUL-terminated; getenv returns null or a NUL-terminated string that stays
    // valid until the environment changes, and it is read at once.
    unsafe {
        let v = libc::getenv(name.as_ptr());
        !v.is_null() && *v != 0 && !(*v == b'0' as libc::c_char && *v.add(1) == 0)
    }
}

/// Writes `bytes` to standard error, unbuffered, retrying short writes; errors are ignored.
/// Allocates nothing and keeps `errno`.
pub fn write_stderr(mut bytes: &[u8]) {
    // SAFETY: errno is this thread's.
    let saved = unsafe { *errno_location() };
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            // SAFETY: errno is this thread's.
            if n < 0 && unsafe { *errno_location() } == libc::EINTR {
                continue;
            }
            break;
        }
        bytes = &bytes[n as usize..];
    }
    // SAFETY: as above.
    unsafe { *errno_location() = saved };
}

/// Formatted text on its way out without allocating: `write!` into it fills a buffer on the
/// stack, and every full buffer (and the rest, at [`StackWriter::flush`] or when dropped) goes to
/// `sink`. For reports written from places that must not allocate (inside an allocator, at exit).
pub struct StackWriter<F: FnMut(&[u8])> {
    buf: [u8; 1024],
    len: usize,
    sink: F,
}

impl<F: FnMut(&[u8])> StackWriter<F> {
    /// An empty buffer in front of `sink`.
    pub const fn new(sink: F) -> Self {
        StackWriter {
            buf: [0; 1024],
            len: 0,
            sink,
        }
    }

    /// Hands what is buffered to the sink.
    pub fn flush(&mut self) {
        if self.len > 0 {
            (self.sink)(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl<F: FnMut(&[u8])> core::fmt::Write for StackWriter<F> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

impl<F: FnMut(&[u8])> Drop for StackWriter<F> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// This thread's `errno`.
fn errno_location() -> *mut libc::c_int {
    #[cfg(target_vendor = "apple")]
    // SAFETY: returns this thread's errno, always valid.
    return unsafe { libc::__error() };
    #[cfg(not(target_vendor = "apple"))]
    // SAFETY: returns this thread's errno, always valid.
    return unsafe { libc::__errno_location() };
}

/// The size of a virtual-memory page, in bytes (4096 on x86_64 Linux, 16384 on Apple Silicon).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_writer_passes_everything_on_in_order() {
        use core::fmt::Write;
        let mut out = [0u8; 5000];
        let mut len = 0;
        {
            let mut w = StackWriter::new(|b: &[u8]| {
                out[len..len + b.len()].copy_from_slice(b);
                len += b.len();
            });
            for i in 0..1000 {
                write!(w, "{}", i % 10).unwrap();
            }
            write!(w, "{:>3000}", "x").unwrap();
        }
        assert_eq!(len, 4000);
        assert!(
            out[..1000]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == b'0' + (i % 10) as u8)
        );
        assert!(out[1000..3999].iter().all(|&b| b == b' ') && out[3999] == b'x');
    }

    #[test]
    fn resident_counts_touched_pages_only() {
        let page = page_size();
        let p = reserve(64 * page).unwrap();
        // SAFETY: the reservation is ours; pages 3, 4 and 40 are written.
        unsafe {
            assert_eq!(resident(p, 64 * page), 0);
            for i in [3, 4, 40] {
                p.as_ptr().add(i * page).write(1);
            }
            assert_eq!(resident(p, 64 * page), 3 * page);
            assert_eq!(resident(p, 4 * page), page);
            assert!(purge(p, 64 * page));
            assert_eq!(resident(p, 64 * page), 0);
            assert!(unmap(p, 64 * page));
            // Unmapped now: counts as nothing.
            assert_eq!(resident(p, 64 * page), 0);
        }
    }

    #[test]
    fn reserve_touch_purge_unmap() {
        let page = page_size();
        let len = 1usize << 36; // 64 GiB of addresses: far more than this machine's memory
        let p = reserve(len).expect("a MAP_NORESERVE reservation of 64 GiB should succeed");
        // SAFETY: p is a fresh writable reservation of `len` bytes; we touch 3 scattered pages.
        unsafe {
            assert_eq!(*p.as_ptr(), 0);
            *p.as_ptr() = 7;
            *p.as_ptr().add(len / 2) = 8;
            *p.as_ptr().add(len - 1) = 9;
            assert!(exclude_from_core_dumps(p, len));
            assert!(purge(p, page));
            assert_eq!(*p.as_ptr(), 0, "a purged page must read back as zero");
            assert_eq!(
                *p.as_ptr().add(len / 2),
                8,
                "pages outside the purge must be kept"
            );
            assert!(unmap(p, len));
        }
    }

    #[test]
    fn map_remap_keeps_contents() {
        let page = page_size();
        let p = map(page).unwrap();
        // SAFETY: p is a fresh mapping of one page; after remap we only use the returned range.
        unsafe {
            p.as_ptr().write_bytes(0xAB, page);
            let q = remap(p, page, 64 * page).expect("mremap should grow an anonymous mapping");
            assert_eq!(*q.as_ptr().add(page - 1), 0xAB);
            assert_eq!(*q.as_ptr().add(63 * page), 0, "grown part is zero-filled");
            assert!(unmap(q, 64 * page));
        }
    }

    #[test]
    fn impossible_requests_fail_cleanly() {
        assert!(map(0).is_none());
        assert!(reserve(0).is_none());
        assert!(map(1usize << 62).is_none());
        assert!(reserve(usize::MAX & !(page_size() - 1)).is_none());
    }

    #[test]
    fn huge_pages_off_and_thread_exit_key() {
        let len = 1usize << 30;
        let p = reserve(len).unwrap();
        // SAFETY: p is a fresh reservation of len bytes.
        unsafe {
            assert!(no_huge_pages(p, len));
            assert!(unmap(p, len));
        }
        static RAN: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
        unsafe extern "C" fn on_exit(v: *mut core::ffi::c_void) {
            RAN.fetch_add(v as usize, core::sync::atomic::Ordering::SeqCst);
        }
        let key = thread_exit_key(on_exit).unwrap();
        extern crate std;
        std::thread::spawn(move || assert!(arm_thread_exit(key, 5)))
            .join()
            .unwrap();
        std::thread::spawn(|| {}).join().unwrap();
        assert_eq!(RAN.load(core::sync::atomic::Ordering::SeqCst), 5);
        drop_thread_exit_key(key);
        let t0 = now_ms();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let dt = now_ms().wrapping_sub(t0);
        assert!((20..5000).contains(&dt), "{dt} ms");
    }

    #[test]
    fn page_size_is_a_power_of_two() {
        assert!(page_size().is_power_of_two());
        assert!(page_size() >= 4096);
    }
}
