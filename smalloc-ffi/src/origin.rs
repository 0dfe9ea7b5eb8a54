//! Which allocator a pointer came from (see the crate docs for the order of the tests).
//!
//! The regions mapped before smalloc's first use are read once, from `/proc/self/maps`, with raw
//! system calls into a stack buffer: no allocation, no lock, nothing that could call back into
//! `malloc`. They are recorded only when that first use comes through the standard names
//! (`malloc`, `free`, ...), that is when this library is the process's allocator: only then can
//! the loader's blocks reach it, and only then is first use early enough that those regions hold
//! nothing but the loader's data (a library opened late would see glibc's own mappings among
//! them).

use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::ALLOC;

/// Where a block came from, and so who must free, resize or measure it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// smalloc: a slot, or a direct mapping with smalloc's header before it.
    Smalloc,
    /// The dynamic loader's startup allocator: never freed, never resized.
    Loader,
    /// glibc's malloc.
    Libc,
}

/// Sorts a non-null pointer that the program hands back.
///
/// `INTERPOSED` tells whether the call came through a standard name, and so whether the startup
/// regions may be recorded now if this is smalloc's first use.
#[inline(always)]
pub(crate) fn origin<const INTERPOSED: bool>(p: *mut c_void) -> Origin {
    if ALLOC
        .slab_range()
        .is_some_and(|r| r.contains(&(p as usize)))
    {
        return Origin::Smalloc;
    }
    outside_slabs::<INTERPOSED>(p as usize)
}

/// [`origin`] for pointers outside the slabs: rare, so kept out of line.
#[cold]
#[inline(never)]
fn outside_slabs<const INTERPOSED: bool>(addr: usize) -> Origin {
    start::<INTERPOSED>();
    if in_startup_region(addr) {
        return Origin::Loader;
    }
    if is_direct(addr) {
        Origin::Smalloc
    } else {
        Origin::Libc
    }
}

/// Whether `addr` is one of smalloc's direct mappings: page-aligned, with smalloc's header in a
/// mapped page before it. Must not be asked about the loader's blocks (see the crate docs).
fn is_direct(addr: usize) -> bool {
    let page = page_size();
    if !addr.is_multiple_of(page) || addr < page {
        return false;
    }
    let header = (addr - page) as *mut c_void;
    let mut resident = 0u8;
    // mincore fails (ENOMEM) for unmapped memory, which is what must not be read. It writes one
    // byte per page, and may set errno, which the caller must not see.
    // SAFETY: errno is this thread's; the vector has room for the one page asked about.
    let mapped = unsafe {
        let errno = libc::__errno_location();
        let saved = *errno;
        let ok = libc::mincore(header, page, &mut resident) == 0;
        *errno = saved;
        ok
    };
    // SAFETY: the header page is mapped; per the caller it is not a loader block's neighbour,
    // whose page could be mapped but inaccessible, so it is readable.
    mapped && unsafe { smalloc_core::large::is_direct(addr as *mut u8) }
}

/// The page size, as the kernel reports it.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Starts smalloc: records the startup regions (when `INTERPOSED`), then makes the reservation.
/// Cheap after the first call. Called before the first allocation and whenever a pointer outside
/// the slabs turns up, so the regions are read before smalloc maps anything of its own.
#[cold]
#[inline(never)]
pub(crate) fn start<const INTERPOSED: bool>() {
    if STATE.load(Ordering::Acquire) == FRESH
        && STATE
            .compare_exchange(FRESH, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        if INTERPOSED {
            record_startup_regions();
        }
        STATE.store(DONE, Ordering::Release);
    }
    // SAFETY: always sound; it only reserves address space, once.
    unsafe { ALLOC.init() };
}

/// No region recorded yet, and nobody recording.
const FRESH: u8 = 0;
/// One thread is recording; the others go on without the regions (they are only needed for
/// the loader's blocks, which reach `free` only after start-up, single-threaded).
const BUSY: u8 = 1;
/// Recording finished: [`REGIONS`] and [`COUNT`] are final.
const DONE: u8 = 2;

/// Progress of recording the startup regions.
static STATE: AtomicU8 = AtomicU8::new(FRESH);

/// How many startup regions can be recorded. A freshly started process has a few dozen
/// mappings; regions beyond this many are not recognized.
const MAX_REGIONS: usize = 128;

/// The startup regions, `[start, end)` pairs, sorted and with neighbours merged.
static REGIONS: [[AtomicUsize; 2]; MAX_REGIONS] =
    [const { [AtomicUsize::new(0), AtomicUsize::new(0)] }; MAX_REGIONS];

/// Number of entries of [`REGIONS`] in use.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether `addr` lies in a region that was mapped before smalloc started.
fn in_startup_region(addr: usize) -> bool {
    if STATE.load(Ordering::Acquire) != DONE {
        return false;
    }
    let n = COUNT.load(Ordering::Relaxed).min(MAX_REGIONS);
    REGIONS[..n]
        .iter()
        .any(|[s, e]| (s.load(Ordering::Relaxed)..e.load(Ordering::Relaxed)).contains(&addr))
}

/// Reads `/proc/self/maps` and records, in [`REGIONS`], the mappings where the dynamic loader's
/// startup allocator may have put blocks: the loader's own image (its data segment's tail is the
/// allocator's first arena) and every anonymous mapping (it `mmap`s the rest).
fn record_startup_regions() {
    // SAFETY: getauxval has no preconditions; AT_BASE is the loader's load address (0 if none).
    let loader = unsafe { libc::getauxval(libc::AT_BASE) } as usize;
    let mut recorder = Recorder {
        loader,
        loader_file: None,
        count: 0,
    };
    // Raw system calls: a wrapper like open() could be interposed by another preloaded library
    // and allocate.
    // SAFETY: openat with a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return;
    }
    let mut parser = MapsParser::default();
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads at most buf.len() bytes into buf.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len()) as isize };
        if n < 0 {
            // SAFETY: errno is this thread's.
            if unsafe { *libc::__errno_location() } == libc::EINTR {
                continue;
            }
            break;
        }
        if n == 0 {
            break;
        }
        for &b in buf.iter().take(n as usize) {
            if let Some(line) = parser.feed(b) {
                recorder.add(line);
            }
        }
    }
    // SAFETY: fd is ours and nothing else uses it.
    unsafe { libc::syscall(libc::SYS_close, fd) };
    COUNT.store(recorder.count, Ordering::Relaxed);
}

/// Collects the regions worth recording, merging neighbours.
struct Recorder {
    /// The loader's load address.
    loader: usize,
    /// Device and inode of the loader's file, once its first mapping has been seen.
    loader_file: Option<(u64, u64)>,
    /// Entries of [`REGIONS`] filled so far.
    count: usize,
}

impl Recorder {
    fn add(&mut self, m: Mapping) {
        if self.loader != 0 && m.start == self.loader && m.inode != 0 {
            self.loader_file = Some((m.dev, m.inode));
        }
        let anonymous = m.inode == 0 && !m.has_path;
        let loader = m.inode != 0 && self.loader_file == Some((m.dev, m.inode));
        if !(anonymous || loader) || m.start >= m.end {
            return;
        }
        if let Some([_, end]) = self.count.checked_sub(1).and_then(|i| REGIONS.get(i))
            && end.load(Ordering::Relaxed) == m.start
        {
            end.store(m.end, Ordering::Relaxed);
            return;
        }
        if let Some([start, end]) = REGIONS.get(self.count) {
            start.store(m.start, Ordering::Relaxed);
            end.store(m.end, Ordering::Relaxed);
            self.count += 1;
        }
    }
}

/// One line of `/proc/self/maps`, as far as it matters here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    /// The device field, its hex digits read as one number.
    dev: u64,
    inode: u64,
    /// Whether the line names a file or a special region (`[heap]`, `[stack]`, ...).
    has_path: bool,
}

/// A byte-at-a-time parser of `/proc/self/maps` lines:
/// `start-end perms offset dev inode   path`. Arithmetic wraps, so no input can make it panic.
#[derive(Default)]
struct MapsParser {
    /// Index of the field being read (0 = start, ..., 6 = path).
    field: u8,
    line: Mapping,
}

impl MapsParser {
    /// Takes the next byte; returns the line it completes, if any.
    fn feed(&mut self, b: u8) -> Option<Mapping> {
        if b == b'\n' {
            let line = self.line;
            *self = MapsParser::default();
            return Some(line);
        }
        let hex = match b {
            b'0'..=b'9' => Some((b - b'0') as u64),
            b'a'..=b'f' => Some((b - b'a' + 10) as u64),
            _ => None,
        };
        let shift = |v: u64, d: u64, base: u64| v.wrapping_mul(base).wrapping_add(d);
        match (self.field, b) {
            (0, b'-') => self.field = 1,
            (1..=5, b' ') => self.field += 1,
            (0, _) => self.line.start = shift(self.line.start as u64, hex?, 16) as usize,
            (1, _) => self.line.end = shift(self.line.end as u64, hex?, 16) as usize,
            (4, _) => self.line.dev = shift(self.line.dev, hex?, 16),
            (5, b'0'..=b'9') => self.line.inode = shift(self.line.inode, (b - b'0') as u64, 10),
            (6, b' ') => {}
            (6, _) => self.line.has_path = true,
            _ => {}
        }
        None
    }
}
