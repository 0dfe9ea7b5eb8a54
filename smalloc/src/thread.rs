//! The calling thread's state: which allocator instance and slab it uses, and its pending remote
//! frees.
//!
//! # Where it lives
//!
//! One 192-byte block of thread-local storage, all zero in a new thread (which means "attached to
//! nothing"), with no destructor of its own, so that reading it never allocates and works at any
//! point of a thread's life, exit included.
//!
//! On x86_64 Linux the block is a TLS symbol defined in assembly and reached with the
//! *initial-exec* model: one `mov` of its offset from the thread pointer, then `%fs`-relative
//! loads. Rust's `thread_local!` would do as well in an executable, but inside a shared library
//! (`libsmalloc.so` under `LD_PRELOAD`) it compiles to a call to `__tls_get_addr` on every
//! `malloc` and `free`, and stable Rust offers no way to pick the TLS model. Initial-exec TLS in a
//! shared library draws on the static TLS space glibc sets aside at start-up, which a library
//! loaded at start-up (preloaded, or linked) always fits in, and 192 bytes fit even when it is
//! opened later with `dlopen`. Elsewhere the block is a `thread_local!` with a constant
//! initializer.
//!
//! # Life of a thread
//!
//! A thread *attaches* to an instance on its first allocation (or its first free of another
//! thread's block); then it claims a slab ([`crate::ownership`]); at exit a destructor registered
//! with `pthread_key_create` detaches it (see `Smalloc::detach`). That destructor runs after the
//! thread's Rust and C++ `thread_local` destructors, which may still free (into the slab the
//! thread still owns); anything the thread allocates or frees after it goes through the shared
//! paths, as for a thread that never attached.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::remote::Batch;

/// Flag: the thread's exit destructor has run; it must not attach again.
pub(crate) const EXITING: u32 = 1;

/// A thread's state. All zero is a thread that never attached.
#[repr(C, align(64))]
#[derive(Debug)]
pub(crate) struct ThreadState {
    /// Base of the reservation of the instance this thread is attached to; zero if none.
    pub(crate) base: usize,
    /// Address of the fast-path class table this thread allocates from: its slab's, or the
    /// always-empty [`crate::slab::EMPTY_HOT`] while it has none. Meaningful while attached.
    pub(crate) hot: usize,
    /// `hot` minus the address of `EMPTY_HOT`: zero, the always-empty table, until the thread owns
    /// a slab. The free path adds it to `EMPTY_HOT`'s address, which needs no check for a thread
    /// that never attached.
    pub(crate) hot_rel: usize,
    /// The slab this thread owns, plus one; zero if none.
    pub(crate) slab: u32,
    /// [`EXITING`].
    pub(crate) flags: u32,
    /// The shared slab this thread starts from on the shared path, plus one; zero until picked.
    pub(crate) shared_pref: u32,
    /// Remote frees not yet handed to their slab.
    pub(crate) batch: Batch,
}

/// Byte offsets of the fields the fast paths load, for the assembly that loads them.
const BASE_FIELD: usize = core::mem::offset_of!(ThreadState, base);
const HOT_FIELD: usize = core::mem::offset_of!(ThreadState, hot);
const HOT_REL_FIELD: usize = core::mem::offset_of!(ThreadState, hot_rel);
const _: () = assert!(core::mem::size_of::<ThreadState>() == STATE_LEN);
/// Bytes of the block (three cache lines; the fast paths read only the first).
const STATE_LEN: usize = 192;

#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
mod imp {
    use super::ThreadState;
    use core::arch::{asm, global_asm};

    // The block: zero bytes in `.tbss`, a TLS object visible to the whole link but not
    // exported from a shared library.
    global_asm!(
        ".pushsection .tbss,\"awT\",@nobits",
        ".p2align 6",
        ".globl __smalloc_thread_state_v2",
        ".hidden __smalloc_thread_state_v2",
        ".type __smalloc_thread_state_v2,@object",
        ".size __smalloc_thread_state_v2,{len}",
        "__smalloc_thread_state_v2:",
        ".zero {len}",
        ".popsection",
        len = const super::STATE_LEN,
    );

    /// The block's offset from the thread pointer: the same in every thread, read from the GOT
    /// (or, in an executable, an immediate the linker writes in).
    #[inline(always)]
    fn offset() -> usize {
        let off: usize;
        // SAFETY: reads the GOT entry the linker made for the symbol's initial-exec offset.
        unsafe {
            asm!(
                "mov {}, qword ptr [rip + __smalloc_thread_state_v2@GOTTPOFF]",
                out(reg) off,
                options(pure, nomem, nostack, preserves_flags)
            )
        };
        off
    }

    /// Loads the word at byte `FIELD` of the calling thread's block.
    #[inline(always)]
    pub(super) fn load<const FIELD: usize>() -> usize {
        let v: usize;
        // SAFETY: %fs holds the thread pointer; offset() + FIELD lies inside this thread's block.
        unsafe {
            asm!(
                "mov {v}, qword ptr fs:[{o} + {f}]",
                o = in(reg) offset(),
                f = const FIELD,
                v = lateout(reg) v,
                options(pure, readonly, nostack, preserves_flags)
            )
        };
        v
    }

    /// The calling thread's block.
    #[inline(always)]
    pub(super) fn state() -> *mut ThreadState {
        let tp: usize;
        // SAFETY: on x86_64 Linux, %fs:0 holds the thread pointer itself (the TCB's self link).
        unsafe {
            asm!(
                "mov {}, qword ptr fs:[0]",
                out(reg) tp,
                options(pure, readonly, nostack, preserves_flags)
            )
        };
        core::ptr::with_exposed_provenance_mut(tp.wrapping_add(offset()))
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
mod imp {
    use super::ThreadState;
    use core::cell::UnsafeCell;

    std::thread_local! {
        /// Constant-initialized and without a destructor: reading it never allocates and never
        /// fails, even during thread exit.
        static STATE: UnsafeCell<ThreadState> = const { UnsafeCell::new(ThreadState::ZERO) };
    }

    #[inline(always)]
    pub(super) fn load<const FIELD: usize>() -> usize {
        // SAFETY: FIELD is the offset of a usize field of the block.
        unsafe { state().byte_add(FIELD).cast::<usize>().read() }
    }

    #[inline(always)]
    pub(super) fn state() -> *mut ThreadState {
        STATE.with(|s| s.get())
    }
}

impl ThreadState {
    /// A thread that never attached.
    #[allow(dead_code)]
    pub(crate) const ZERO: ThreadState = ThreadState {
        base: 0,
        hot: 0,
        hot_rel: 0,
        slab: 0,
        flags: 0,
        shared_pref: 0,
        batch: Batch::EMPTY,
    };
}

/// The calling thread's state, for the slow paths. Only the calling thread ever touches it.
#[inline(always)]
pub(crate) fn state() -> *mut ThreadState {
    imp::state()
}

/// [`ThreadState::base`] of the calling thread.
#[inline(always)]
pub(crate) fn base() -> usize {
    imp::load::<BASE_FIELD>()
}

/// [`ThreadState::hot`] of the calling thread.
#[inline(always)]
pub(crate) fn hot() -> usize {
    imp::load::<HOT_FIELD>()
}

/// [`ThreadState::hot_rel`] of the calling thread.
#[inline(always)]
pub(crate) fn hot_rel() -> usize {
    imp::load::<HOT_REL_FIELD>()
}

/// The process's thread-exit key plus one (zero: not made yet), shared by every instance: a
/// thread attaches to one instance at a time.
static EXIT_KEY: AtomicU32 = AtomicU32::new(0);

/// Makes sure the thread-exit key exists; `destructor` detaches the exiting thread. Returns
/// whether it does. Lock-free: racing threads each make a key, the first to publish wins, the
/// others delete theirs.
pub(crate) fn ensure_exit_key(destructor: unsafe extern "C" fn(*mut core::ffi::c_void)) -> bool {
    if EXIT_KEY.load(Ordering::Acquire) != 0 {
        return true;
    }
    let Some(key) = smalloc_plat::thread_exit_key(destructor) else {
        return false;
    };
    if let Err(_winner) = EXIT_KEY.compare_exchange(0, key + 1, Ordering::AcqRel, Ordering::Acquire)
    {
        smalloc_plat::drop_thread_exit_key(key);
    }
    true
}

/// Arms the exit destructor for the calling thread. Returns whether it is armed.
pub(crate) fn arm_exit() -> bool {
    match EXIT_KEY.load(Ordering::Acquire) {
        0 => false,
        k => smalloc_plat::arm_thread_exit(k - 1, 1),
    }
}
