//! [`BlockList`]: millions of live blocks held at no cost to the harness's own memory.

use std::alloc::GlobalAlloc;

use crate::workloads::common::layout;

/// Bytes at the start of each block that the list uses: the next block's address and this
/// block's size.
pub const HEADER: usize = 16;

/// A stack of blocks linked through their own first [`HEADER`] bytes, so that holding them costs
/// the harness (whose memory would count in the resident set too) nothing. Blocks come back
/// last-pushed first.
pub struct BlockList {
    head: *mut u8,
    len: u64,
}

impl Default for BlockList {
    fn default() -> Self {
        BlockList {
            head: std::ptr::null_mut(),
            len: 0,
        }
    }
}

impl BlockList {
    /// Blocks held.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the list holds no block.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Holds `p`, a block of `size` bytes, overwriting its first [`HEADER`] bytes.
    ///
    /// # Safety
    /// `p` must be a live, 8-aligned block of `size >= HEADER` bytes that nothing else uses
    /// until it is popped again.
    pub unsafe fn push(&mut self, p: *mut u8, size: usize) {
        debug_assert!(size >= HEADER);
        // SAFETY: the caller guarantees an aligned block of at least HEADER bytes.
        unsafe {
            p.cast::<usize>().write(self.head as usize);
            p.cast::<usize>().add(1).write(size);
        }
        self.head = p;
        self.len += 1;
    }

    /// Takes the last block pushed, with its size.
    pub fn pop(&mut self) -> Option<(*mut u8, usize)> {
        if self.head.is_null() {
            return None;
        }
        let p = self.head;
        // SAFETY: p was pushed (so its header was written) and is still held.
        let (next, size) = unsafe { (p.cast::<usize>().read(), p.cast::<usize>().add(1).read()) };
        self.head = next as *mut u8;
        self.len -= 1;
        Some((p, size))
    }

    /// Frees every block through `a` (which allocated them with [`layout`]`(size)`), checking
    /// first that the last byte of each block larger than the header still holds `tag`.
    ///
    /// # Panics
    /// If a block lost its last byte (another block overlapped it).
    pub fn free_all<A: GlobalAlloc>(&mut self, a: &A, tag: u8) {
        while let Some((p, size)) = self.pop() {
            // SAFETY: the block is live and `size` bytes long; it is freed once, with its layout.
            unsafe {
                if size > HEADER {
                    assert_eq!(
                        p.add(size - 1).read(),
                        tag,
                        "block {p:p} lost its last byte"
                    );
                }
                a.dealloc(p, layout(size));
            }
        }
    }
}
