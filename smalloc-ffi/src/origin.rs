//! Which allocator a pointer came from (see the crate docs for the order of the tests).
//!
//! smalloc's own blocks are recognized by facts that stay true for the block's whole life: its
//! address range (slots), its registry (direct mappings), a header it wrote (fallback blocks).
//! Only what is none of those is foreign, and of the foreign blocks, the dynamic loader's are
//! told apart from glibc's by the regions where the loader's start-up allocator puts them.
//!
//! Those regions are read from `/proc/self/maps`, once, with raw system calls into a stack
//! buffer (no allocation, no lock, nothing that could call back into `malloc`), at the earlier of
//! the library's constructor and its first call through a standard name, and only when this
//! library is the process's allocator (only then can the loader's blocks reach it). At that time
//! no code of the program has run yet, so the anonymous mappings of the time are the loader's
//! arenas, the libraries' zero-filled data and the initial thread's TLS, all of which stay mapped
//! to the end of the process: a region recorded then never holds anybody else's blocks later.

use core::ffi::c_void;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::ALLOC;
use crate::glibc;

/// Where a block came from, and so who must free, resize or measure it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// smalloc: a slot, or one of its direct mappings.
    Smalloc,
    /// smalloc's fallback (the reservation was refused): a block inside glibc's block `raw`,
    /// after smalloc's header.
    Fallback(*mut c_void),
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
    outside_slabs::<INTERPOSED>(p)
}

/// [`origin`] for pointers outside the slabs: rare, so kept out of line.
#[cold]
#[inline(never)]
fn outside_slabs<const INTERPOSED: bool>(p: *mut c_void) -> Origin {
    start::<INTERPOSED>();
    if ALLOC.owns(p.cast()) {
        return Origin::Smalloc;
    }
    let foreign = |addr: usize| {
        if in_startup_region(addr) {
            Origin::Loader
        } else {
            Origin::Libc
        }
    };
    if ALLOC.is_reserved() {
        // No fallback block exists: the reservation was made.
        return foreign(p as usize);
    }
    // The fallback serves everything: look for smalloc's header in the 16 bytes before the
    // block. They are readable when they lie in the block's own page (blocks are 16-aligned, so
    // that is when the block does not start a page); a page-aligned block may follow a guard
    // page, as the loader's can, so those are sorted out by region first, after which the
    // page before is glibc's or smalloc's block header.
    let page_aligned = (p as usize).is_multiple_of(page_size());
    if page_aligned && in_startup_region(p as usize) {
        return Origin::Loader;
    }
    // SAFETY: see above: the 16 bytes before p are readable.
    match unsafe { glibc::fallback_block(p) } {
        Some(raw) => Origin::Fallback(raw),
        None => foreign(p as usize),
    }
}

/// The page size, as the kernel reports it.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// Called from the library's constructor: records the startup regions now, before the program
/// runs, if this library is the process's allocator (its `malloc` is the one every module's
/// calls bind to).
pub(crate) fn on_load() {
    #[cfg(feature = "interpose")]
    {
        // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name; the loader's lock is
        // free to take in a constructor.
        let bound = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr()) } as usize;
        let ours = crate::interpose::malloc as *const () as usize;
        if bound == ours {
            record_once();
        }
    }
}

/// Records the startup regions unless that was done (or is being done) already.
fn record_once() {
    if STATE.load(Ordering::Acquire) == FRESH
        && STATE
            .compare_exchange(FRESH, BUSY, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    {
        record_startup_regions();
        STATE.store(DONE, Ordering::Release);
    }
}

/// Starts smalloc: records the startup regions (when `INTERPOSED` and not done yet), then makes
/// the reservation. Cheap after the first call. Called before the first allocation and whenever
/// a pointer outside the slabs turns up, so the regions are read before smalloc maps anything of
/// its own.
#[cold]
#[inline(never)]
pub(crate) fn start<const INTERPOSED: bool>() {
    if INTERPOSED {
        record_once();
    }
    ALLOC.init();
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
