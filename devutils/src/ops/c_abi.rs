//! The checker of the C allocation functions.

use core::ffi::{c_int, c_void};
use core::ptr;

use super::model::{Block, Shared, Worker};
use super::{Call, Expect, IMPOSSIBLE, LARGEST_SLOT, MUST_SUCCEED, Op, Stats, Then, expect};

/// The C allocation functions to check: smalloc's `smalloc_` ones, or the C library's own
/// ([`CAbi::libc`]), whose behaviour is the reference.
#[derive(Clone, Copy, Debug)]
pub struct CAbi {
    /// `malloc`.
    pub malloc: unsafe extern "C" fn(usize) -> *mut c_void,
    /// `calloc`.
    pub calloc: unsafe extern "C" fn(usize, usize) -> *mut c_void,
    /// `realloc`.
    pub realloc: unsafe extern "C" fn(*mut c_void, usize) -> *mut c_void,
    /// `reallocarray`.
    pub reallocarray: unsafe extern "C" fn(*mut c_void, usize, usize) -> *mut c_void,
    /// `posix_memalign`.
    pub posix_memalign: unsafe extern "C" fn(*mut *mut c_void, usize, usize) -> c_int,
    /// `aligned_alloc`.
    pub aligned_alloc: unsafe extern "C" fn(usize, usize) -> *mut c_void,
    /// `memalign`.
    pub memalign: unsafe extern "C" fn(usize, usize) -> *mut c_void,
    /// `free`.
    pub free: unsafe extern "C" fn(*mut c_void),
    /// `malloc_usable_size`.
    pub malloc_usable_size: unsafe extern "C" fn(*mut c_void) -> usize,
    /// Whether `aligned_alloc` refuses (`EINVAL`) alignments that are not powers of two, as
    /// glibc does from 2.38 on; glibc 2.36, which smalloc follows, rounds them up as
    /// `memalign` does.
    pub aligned_alloc_needs_power_of_two: bool,
}

impl CAbi {
    /// The C library's functions.
    pub fn libc() -> CAbi {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let version = unsafe { core::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        let mut parts = version.to_str().unwrap_or("").split('.');
        let major: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        CAbi {
            malloc: libc::malloc,
            calloc: libc::calloc,
            realloc: libc::realloc,
            reallocarray: libc::reallocarray,
            posix_memalign: libc::posix_memalign,
            aligned_alloc: libc::aligned_alloc,
            memalign: libc::memalign,
            free: libc::free,
            malloc_usable_size: libc::malloc_usable_size,
            aligned_alloc_needs_power_of_two: (major, minor) >= (2, 38),
        }
    }
}

/// How a block is resized.
#[derive(Clone, Copy, Debug)]
enum How {
    /// `realloc(p, size)`.
    Realloc(usize),
    /// `reallocarray(p, n, size)`.
    ReallocArray(usize, usize),
}

/// glibc's `MALLOC_ALIGNMENT` on 64-bit targets: every block is aligned to it.
const MIN_ALIGN: usize = 16;

/// What glibc does with a request.
#[derive(Clone, Copy, Debug)]
enum Want {
    /// A block of `size` bytes aligned to `align` (required if `must`, else allowed, with
    /// `ENOMEM` the other choice).
    Block {
        size: usize,
        align: usize,
        zeroed: bool,
        must: bool,
    },
    /// Failure with this error number.
    Error(c_int),
}

/// The want for `size` bytes aligned to `align`.
fn memory(size: usize, align: usize, zeroed: bool) -> Want {
    match expect(size, align) {
        Expect::Fail => Want::Error(libc::ENOMEM),
        e => Want::Block {
            size,
            align,
            zeroed,
            must: e == Expect::Succeed,
        },
    }
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno, always valid.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as in errno().
    unsafe { *libc::__errno_location() = e };
}

/// A value of errno no call sets, to see whether a call left errno alone.
const UNTOUCHED: c_int = 0x7e57;

/// Runs ops through C allocation functions and checks each result against glibc 2.36's
/// semantics (see the module docs and those of smalloc-ffi's `abi` module), on one thread.
///
/// Besides the checks of the module docs: `errno` after each failure, `free` (also of null)
/// leaving `errno` alone, `posix_memalign` leaving its output alone when it fails,
/// `realloc(p, 0)` freeing `p` and returning null. A block's pattern covers its whole usable
/// size, which a C program may use; `realloc` must keep it up to the new size.
pub struct CChecker<'a> {
    abi: &'a CAbi,
    budget: usize,
}

impl<'a> CChecker<'a> {
    /// A checker of `abi`, with a budget of [`MUST_SUCCEED`] live bytes.
    pub fn new(abi: &'a CAbi) -> CChecker<'a> {
        CChecker {
            abi,
            budget: MUST_SUCCEED,
        }
    }

    /// Keeps at most `budget` bytes live: an op that would exceed it is skipped.
    pub fn with_budget(mut self, budget: usize) -> CChecker<'a> {
        self.budget = budget;
        self
    }

    /// Runs `ops`, then frees every block left. Step `i` picks, among the C functions that
    /// can do its op, number `i` modulo their number (see [`Op`]); `Op::Send` does its
    /// `then` at once.
    pub fn run(&self, ops: &[Op]) -> Result<Stats, String> {
        let sh = Shared::new(self.budget);
        let mut w = Worker::new(0);
        for (i, op) in ops.iter().enumerate() {
            self.exec(&mut w, &sh, i, op)
                .map_err(|e| format!("step {i}, {op:?}: {e}"))?;
        }
        while let Some(b) = w.blocks.pop() {
            self.release(&mut w, &sh, b)
                .map_err(|e| format!("freeing the blocks left after the last step: {e}"))?;
        }
        Ok(w.stats)
    }

    fn exec(&self, w: &mut Worker, sh: &Shared, i: usize, op: &Op) -> Result<(), String> {
        let a = self.abi;
        match *op {
            Op::Alloc { size, align } if align <= MIN_ALIGN => {
                self.call(w, sh, Call::Malloc { size })
            }
            Op::Alloc { size, align } => self.call(
                w,
                sh,
                match i % 3 {
                    0 => Call::PosixMemalign { align, size },
                    1 => Call::AlignedAlloc { align, size },
                    _ => Call::Memalign { align, size },
                },
            ),
            Op::AllocZeroed { size, .. } => {
                let (n, size) = match i % 3 {
                    0 => (1, size),
                    1 => (size, 1),
                    _ if size.is_multiple_of(16) => (size / 16, 16),
                    _ => (size, 1),
                };
                self.call(w, sh, Call::Calloc { n, size })
            }
            Op::Realloc { index, new_size } => self.resize(
                w,
                sh,
                index,
                match i % 3 {
                    0 => How::Realloc(new_size),
                    1 => How::ReallocArray(1, new_size),
                    _ => How::ReallocArray(new_size, 1),
                },
            ),
            Op::Free { index }
            | Op::Send {
                index,
                then: Then::Free,
                ..
            } => {
                let Some(i) = w.pick(index) else {
                    return Ok(());
                };
                let b = w.blocks.remove(i);
                self.release(w, sh, b)
            }
            Op::Send {
                index,
                then: Then::Realloc { new_size },
                ..
            } => self.call(
                w,
                sh,
                Call::Realloc {
                    index,
                    size: new_size,
                },
            ),
            Op::Call(Call::FreeNull) => {
                set_errno(UNTOUCHED);
                // SAFETY: free(NULL) does nothing.
                unsafe { (a.free)(ptr::null_mut()) };
                if errno() != UNTOUCHED {
                    return Err(format!("free(NULL) changed errno to {}", errno()));
                }
                Ok(())
            }
            Op::Call(call) => self.call(w, sh, call),
        }
    }

    /// Makes `call` (anything but `free(NULL)`) and checks its result.
    fn call(&self, w: &mut Worker, sh: &Shared, call: Call) -> Result<(), String> {
        let a = self.abi;
        let (want, what): (Want, String) = match call {
            Call::Malloc { size } => (memory(size, MIN_ALIGN, false), format!("malloc({size})")),
            Call::ReallocNull { size } => (
                memory(size, MIN_ALIGN, false),
                format!("realloc(NULL, {size})"),
            ),
            Call::Calloc { n, size } => (
                match n.checked_mul(size) {
                    Some(total) => memory(total, MIN_ALIGN, true),
                    None => Want::Error(libc::ENOMEM),
                },
                format!("calloc({n}, {size})"),
            ),
            Call::PosixMemalign { align, size } => {
                let word = size_of::<*mut c_void>();
                let valid = align.is_multiple_of(word) && (align / word).is_power_of_two();
                (
                    if valid {
                        memory(size, align, false)
                    } else {
                        Want::Error(libc::EINVAL)
                    },
                    format!("posix_memalign(&p, {align}, {size})"),
                )
            }
            Call::AlignedAlloc { align, size } | Call::Memalign { align, size } => {
                let name = match call {
                    Call::AlignedAlloc { .. } => "aligned_alloc",
                    _ => "memalign",
                };
                let strict =
                    matches!(call, Call::AlignedAlloc { .. }) && a.aligned_alloc_needs_power_of_two;
                let want = if strict && !align.is_power_of_two() {
                    Want::Error(libc::EINVAL)
                } else if align <= MIN_ALIGN {
                    memory(size, MIN_ALIGN, false)
                } else {
                    match align.checked_next_power_of_two() {
                        Some(real) => memory(size, real, false),
                        None => Want::Error(libc::EINVAL),
                    }
                };
                (want, format!("{name}({align}, {size})"))
            }
            Call::Realloc { index, size } => {
                return self.resize(w, sh, index, How::Realloc(size));
            }
            Call::ReallocArray { index, n, size } => {
                return self.resize(w, sh, index, How::ReallocArray(n, size));
            }
            Call::FreeNull => unreachable!("handled by exec"),
        };
        let budgeted = matches!(want, Want::Block { must: true, .. });
        let size = match want {
            Want::Block { size, .. } => size,
            Want::Error(_) => 0,
        };
        if budgeted && !sh.reserve(size) {
            w.stats.skipped += 1;
            return Ok(());
        }
        set_errno(0);
        // SAFETY: the C functions take any arguments; posix_memalign writes to `out` only.
        let got: Result<*mut u8, c_int> = unsafe {
            let sentinel = ptr::dangling_mut::<c_void>();
            let (p, rc) = match call {
                Call::Malloc { size } => ((a.malloc)(size), 0),
                Call::ReallocNull { size } => ((a.realloc)(ptr::null_mut(), size), 0),
                Call::Calloc { n, size } => ((a.calloc)(n, size), 0),
                Call::AlignedAlloc { align, size } => ((a.aligned_alloc)(align, size), 0),
                Call::Memalign { align, size } => ((a.memalign)(align, size), 0),
                Call::PosixMemalign { align, size } => {
                    let mut out = sentinel;
                    let rc = (a.posix_memalign)(&mut out, align, size);
                    if rc != 0 && out != sentinel {
                        return Err(format!(
                            "{what} returned {rc} but changed its output to {out:?}"
                        ));
                    }
                    if rc == 0 && (out.is_null() || out == sentinel) {
                        return Err(format!("{what} returned 0 but gave {out:?}"));
                    }
                    (if rc == 0 { out } else { ptr::null_mut() }, rc)
                }
                _ => unreachable!("resizes are handled above"),
            };
            let posix = matches!(call, Call::PosixMemalign { .. });
            match (p.is_null(), posix) {
                (false, _) => Ok(p.cast()),
                (true, true) => Err(rc),
                (true, false) => Err(errno()),
            }
        };
        if budgeted && got.is_err() {
            sh.unreserve(size);
        }
        self.outcome(w, sh, &what, want, got)
    }

    /// Checks the outcome `got` of a call that allocates against what glibc does.
    fn outcome(
        &self,
        w: &mut Worker,
        sh: &Shared,
        what: &str,
        want: Want,
        got: Result<*mut u8, c_int>,
    ) -> Result<(), String> {
        match (want, got) {
            (Want::Error(e), Err(g)) if e == g => {
                w.stats.refused += 1;
                Ok(())
            }
            (Want::Error(e), Err(g)) => Err(format!(
                "{what} failed with error {g}, glibc's error is {e}"
            )),
            (Want::Error(e), Ok(p)) => {
                Err(format!("{what} returned {p:?}, glibc fails with error {e}"))
            }
            (Want::Block { must: true, .. }, Err(g)) => Err(format!("{what} failed (error {g})")),
            (Want::Block { must: false, .. }, Err(g)) if g == libc::ENOMEM => {
                w.stats.refused += 1;
                Ok(())
            }
            (Want::Block { .. }, Err(g)) => Err(format!(
                "{what} failed with error {g} rather than ENOMEM ({})",
                libc::ENOMEM
            )),
            (
                Want::Block {
                    size,
                    align,
                    zeroed,
                    must,
                },
                Ok(p),
            ) => {
                let mut b = self
                    .block(sh, p, size, align, must)
                    .map_err(|e| format!("{what} gave {e}"))?;
                if zeroed {
                    b.check_zeroed().map_err(|e| format!("{what} gave {e}"))?;
                    w.stats.zeroed += 1;
                }
                b.fill(w.seed());
                w.stats.allocs += 1;
                if size > LARGEST_SLOT {
                    w.stats.direct += 1;
                }
                if must {
                    w.blocks.push(b);
                    Ok(())
                } else {
                    self.release(w, sh, b)
                }
            }
        }
    }

    /// The model of a new block at `p` asked with `size` and `align`: checks its alignment
    /// and usable size and records its range.
    fn block(
        &self,
        sh: &Shared,
        p: *mut u8,
        size: usize,
        align: usize,
        budgeted: bool,
    ) -> Result<Block, String> {
        // SAFETY: p is a live block of these functions.
        let usable = unsafe { (self.abi.malloc_usable_size)(p.cast()) };
        let b = Block {
            ptr: p,
            size,
            len: usable,
            align,
            span: usable.max(1),
            seed: 0,
            budgeted,
        };
        if !(p as usize).is_multiple_of(align.max(MIN_ALIGN)) {
            return Err(format!("{b}, misaligned"));
        }
        if usable < size {
            return Err(format!("{b}, with a usable size of only {usable}"));
        }
        if usable >= IMPOSSIBLE {
            return Err(format!("{b}, with a usable size of {usable}"));
        }
        sh.insert(&b)?;
        Ok(b)
    }

    /// `realloc` or `reallocarray` of block `index`.
    fn resize(&self, w: &mut Worker, sh: &Shared, index: usize, how: How) -> Result<(), String> {
        let Some(i) = w.pick(index) else {
            return Ok(());
        };
        let a = self.abi;
        let b = w.blocks.remove(i);
        b.verify("before realloc")?;
        let (what, total) = match how {
            How::Realloc(size) => (format!("realloc({b}, {size})"), Some(size)),
            How::ReallocArray(n, size) => (
                format!("reallocarray({b}, {n}, {size})"),
                n.checked_mul(size),
            ),
        };
        // None: a size of 0, which frees the block.
        let want = match total {
            Some(0) => None,
            Some(size) => Some(memory(size, MIN_ALIGN, false)),
            None => Some(Want::Error(libc::ENOMEM)),
        };
        let new_size = total.unwrap_or(0);
        let budgeted = matches!(want, Some(Want::Block { must: true, .. }));
        if budgeted && !sh.reserve(new_size) {
            w.stats.skipped += 1;
            w.blocks.insert(i, b);
            return Ok(());
        }
        sh.remove(&b);
        set_errno(0);
        // SAFETY: b is a live block of these functions; the sizes may be anything.
        let q: *mut u8 = unsafe {
            match how {
                How::Realloc(size) => (a.realloc)(b.ptr.cast(), size),
                How::ReallocArray(n, size) => (a.reallocarray)(b.ptr.cast(), n, size),
            }
        }
        .cast();
        let e = errno();
        let Some(want) = want else {
            // glibc frees the block and returns NULL.
            if !q.is_null() {
                return Err(format!(
                    "{what} returned {q:?}, glibc frees and returns NULL"
                ));
            }
            if b.budgeted {
                sh.unreserve(b.size);
            }
            w.stats.frees += 1;
            return Ok(());
        };
        if q.is_null() {
            if budgeted {
                sh.unreserve(new_size);
            }
            match want {
                Want::Block { must: true, .. } => {
                    return Err(format!("{what} failed (error {e})"));
                }
                _ if e != libc::ENOMEM => {
                    return Err(format!(
                        "{what} failed with error {e} rather than ENOMEM ({})",
                        libc::ENOMEM
                    ));
                }
                _ => {}
            }
            w.stats.refused += 1;
            sh.insert(&b)?;
            b.verify("after a realloc that failed")?;
            w.blocks.insert(i, b);
            return Ok(());
        }
        let Want::Block { must, .. } = want else {
            return Err(format!("{what} returned {q:?}, glibc fails with ENOMEM"));
        };
        if b.budgeted {
            sh.unreserve(b.size);
        }
        let mut nb = self
            .block(sh, q, new_size, MIN_ALIGN, must)
            .map_err(|e| format!("{what} gave {e}"))?;
        b.check_kept(q, b.len.min(new_size))?;
        nb.fill(w.seed());
        w.stats.reallocs += 1;
        if new_size > LARGEST_SLOT {
            w.stats.direct += 1;
        }
        if must {
            w.blocks.insert(i, nb);
            Ok(())
        } else {
            self.release(w, sh, nb)
        }
    }

    /// Checks and frees `b`; `free` must leave `errno` alone.
    fn release(&self, w: &mut Worker, sh: &Shared, b: Block) -> Result<(), String> {
        b.verify("before it was freed")?;
        sh.remove(&b);
        if b.budgeted {
            sh.unreserve(b.size);
        }
        set_errno(UNTOUCHED);
        // SAFETY: b is a live block of these functions, not used again.
        unsafe { (self.abi.free)(b.ptr.cast()) };
        if errno() != UNTOUCHED {
            return Err(format!("free({b}) changed errno to {}", errno()));
        }
        w.stats.frees += 1;
        Ok(())
    }
}
