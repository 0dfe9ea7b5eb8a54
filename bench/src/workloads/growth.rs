//! `growth`: containers that grow through `realloc`, as `Vec` and `String` do.
//!
//! `Vec<T, A>` with a custom allocator is not stable Rust, so [`GrowBuf`] reproduces the growth
//! policy of the standard library's `RawVec` (double the capacity, at least the needed length,
//! first capacity 8 elements for bytes and 4 for other small elements) on top of
//! `GlobalAlloc::realloc`. The allocator then sees the same sequence of requests a `Vec` or
//! `String` would make.

use std::alloc::GlobalAlloc;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::common::{alloc, layout};
use crate::rng::Rng;

/// Elements pushed into each vector.
pub const VEC_LEN: usize = 1_000_000;
/// Strings built (and kept alive together) per batch.
pub const STRINGS_PER_BATCH: usize = 1000;

/// A growable buffer of `elem`-byte elements with `RawVec`'s growth policy.
pub struct GrowBuf<'a, A: GlobalAlloc> {
    a: &'a A,
    ptr: *mut u8,
    /// Capacity in bytes.
    cap: usize,
    /// Length in bytes.
    len: usize,
    /// Element size in bytes (1 for a `String`, 8 for a `Vec<u64>`).
    elem: usize,
}

impl<'a, A: GlobalAlloc> GrowBuf<'a, A> {
    /// An empty buffer; allocates nothing yet, like `Vec::new`.
    pub fn new(a: &'a A, elem: usize) -> Self {
        GrowBuf {
            a,
            ptr: std::ptr::null_mut(),
            cap: 0,
            len: 0,
            elem,
        }
    }

    /// Makes room for `extra` more bytes, growing the way `RawVec::grow_amortized` does.
    #[inline(always)]
    fn reserve(&mut self, extra: usize) {
        if self.len + extra > self.cap {
            self.grow(self.len + extra);
        }
    }

    #[inline(never)]
    fn grow(&mut self, needed: usize) {
        let min_elems = if self.elem == 1 {
            8
        } else if self.elem <= 1024 {
            4
        } else {
            1
        };
        let new_cap = (self.cap * 2).max(needed).max(min_elems * self.elem);
        // SAFETY: new_cap > 0; the old block (if any) was allocated with layout(self.cap) and is
        // live; on success the old pointer is no longer used.
        self.ptr = unsafe {
            if self.cap == 0 {
                alloc(self.a, layout(new_cap))
            } else {
                let p = self.a.realloc(self.ptr, layout(self.cap), new_cap);
                if p.is_null() {
                    panic!("realloc to {new_cap} B returned null");
                }
                p
            }
        };
        self.cap = new_cap;
    }

    /// Appends one `u64` (the buffer must hold 8-byte elements).
    #[inline(always)]
    pub fn push_u64(&mut self, v: u64) {
        self.reserve(8);
        // SAFETY: reserve made room for 8 more bytes; the buffer is 8-aligned and len is a
        // multiple of 8.
        unsafe { self.ptr.add(self.len).cast::<u64>().write(v) };
        self.len += 8;
    }

    /// Appends bytes (the buffer must hold 1-byte elements).
    #[inline(always)]
    pub fn push_bytes(&mut self, s: &[u8]) {
        self.reserve(s.len());
        // SAFETY: reserve made room; the source is a distinct, live slice.
        unsafe {
            std::ptr::copy_nonoverlapping(s.as_ptr(), self.ptr.add(self.len), s.len());
        }
        self.len += s.len();
    }

    /// The contents so far.
    pub fn as_bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            &[]
        } else {
            // SAFETY: the first len bytes of the block are initialized.
            unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
        }
    }
}

impl<A: GlobalAlloc> Drop for GrowBuf<'_, A> {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: the block was allocated with layout(self.cap) and is freed once.
            unsafe { self.a.dealloc(self.ptr, layout(self.cap)) };
        }
    }
}

/// Pushes [`VEC_LEN`] `u64`s into each of `vecs` vectors (one at a time), checks the sum and frees
/// it. Returns the time taken.
pub fn run_vec<A: GlobalAlloc>(a: &A, vecs: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..vecs {
        let mut v = GrowBuf::new(a, 8);
        for i in 0..VEC_LEN as u64 {
            v.push_u64(black_box(i));
        }
        let bytes = v.as_bytes();
        // Cheap check of the last and a middle element: the copies made while growing must
        // have carried every element along.
        let read = |i: usize| u64::from_ne_bytes(bytes[i * 8..i * 8 + 8].try_into().unwrap());
        assert_eq!(read(VEC_LEN - 1), VEC_LEN as u64 - 1);
        assert_eq!(read(VEC_LEN / 3), (VEC_LEN / 3) as u64);
    }
    start.elapsed()
}

/// Text the strings are built from.
const TEXT: &[u8] = b"the quick brown fox jumps over the lazy dog; key=value, 0123456789 ";

/// Builds `batches` batches of [`STRINGS_PER_BATCH`] strings. Each string grows by pieces of
/// 1-24 bytes up to a length drawn from 8-512 B (mostly short); a batch's strings stay alive
/// together (as in a `Vec<String>`), are checked, then freed. Returns the time taken.
pub fn run_strings<A: GlobalAlloc>(a: &A, batches: u64) -> Duration {
    let mut rng = Rng::new(0x57A1);
    let mut live: Vec<GrowBuf<'_, A>> = Vec::with_capacity(STRINGS_PER_BATCH);
    let mut targets = vec![0usize; STRINGS_PER_BATCH];
    let start = Instant::now();
    for _ in 0..batches {
        for target in targets.iter_mut() {
            // Squaring a uniform number skews lengths towards the short end.
            let u = rng.below(1 << 16);
            *target = 8 + ((((u * u) >> 16) * 505) >> 16) as usize;
            let mut s = GrowBuf::new(a, 1);
            while s.len < *target {
                let off = rng.below(TEXT.len() as u64 - 24) as usize;
                let n = rng.range(1, 24) as usize;
                s.push_bytes(&TEXT[off..off + n]);
            }
            live.push(s);
        }
        for (s, &target) in live.iter().zip(&targets) {
            let b = s.as_bytes();
            assert!(b.len() >= target && TEXT.contains(&b[0]));
        }
        live.clear();
    }
    start.elapsed()
}
