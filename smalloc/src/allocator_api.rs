//! The `allocator-api2` crate's `Allocator` trait (the stable mirror of the standard library's
//! unstable one), behind the `allocator-api2` feature: one collection on smalloc without making
//! it the global allocator.
//!
//! ```
//! use allocator_api2::vec::Vec;
//! use smalloc_core::Smalloc;
//!
//! static HEAP: Smalloc = Smalloc::new();
//!
//! let mut v = Vec::new_in(&HEAP);
//! v.extend([1u32, 2, 3]);
//! assert_eq!(v.iter().sum::<u32>(), 6);
//! assert_eq!(HEAP.stats().live_blocks, 1);
//! ```
//!
//! Blocks come back as long as their whole slot (`usable_size`), so a growing collection uses
//! the room it already has before asking for more. Zero-sized requests get a dangling, aligned
//! pointer, as the trait requires, and touch no memory.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use allocator_api2::alloc::{AllocError, Allocator};

use crate::Smalloc;

/// A dangling pointer aligned to `layout`, for zero-sized blocks.
fn dangling(layout: Layout) -> NonNull<[u8]> {
    // SAFETY: an alignment is never zero.
    let p = unsafe { NonNull::new_unchecked(ptr::without_provenance_mut::<u8>(layout.align())) };
    NonNull::slice_from_raw_parts(p, 0)
}

impl<F: GlobalAlloc> Smalloc<F> {
    /// The block at `p` (non-null on success) for a request of `size` bytes, as a slice of its
    /// whole usable length.
    fn block(&self, p: *mut u8, size: usize) -> Result<NonNull<[u8]>, AllocError> {
        let p = NonNull::new(p).ok_or(AllocError)?;
        // SAFETY: p is a live block of this instance, just handed out.
        let len = unsafe { self.usable_size(p.as_ptr()) }.unwrap_or(size);
        Ok(NonNull::slice_from_raw_parts(p, len.max(size)))
    }
}

// SAFETY: blocks come from the `GlobalAlloc` implementation, whose contract (size, alignment,
// validity until freed, no sharing) is the one `Allocator` asks for; the lengths reported are
// the blocks' usable sizes, all of which may be used; zero-sized blocks are dangling and never
// passed on. A block may be freed or resized through any reference to the same instance.
unsafe impl<F: GlobalAlloc> Allocator for Smalloc<F> {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        // SAFETY: a non-zero size.
        self.block(unsafe { self.alloc(layout) }, layout.size())
    }

    fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<[u8]>, AllocError> {
        if layout.size() == 0 {
            return Ok(dangling(layout));
        }
        // SAFETY: a non-zero size. Only `layout.size()` bytes are zeroed, so only they are
        // reported: the rest of the slot may hold old data.
        let p = NonNull::new(unsafe { self.alloc_zeroed(layout) }).ok_or(AllocError)?;
        Ok(NonNull::slice_from_raw_parts(p, layout.size()))
    }

    unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        if layout.size() != 0 {
            // SAFETY: per the trait's contract, a live block of this instance with this layout.
            unsafe { self.dealloc(ptr.as_ptr(), layout) };
        }
    }

    unsafe fn grow(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if old.size() == 0 || old.align() != new.align() {
            let block = self.allocate(new)?;
            // SAFETY: both blocks are live and distinct; the old one holds old.size() bytes.
            unsafe {
                ptr::copy_nonoverlapping(ptr.as_ptr(), block.as_ptr().cast(), old.size());
                self.deallocate(ptr, old);
            }
            return Ok(block);
        }
        // SAFETY: per the trait's contract; new.size() >= old.size() > 0, and fits isize.
        self.block(
            unsafe { self.realloc(ptr.as_ptr(), old, new.size()) },
            new.size(),
        )
    }

    unsafe fn shrink(
        &self,
        ptr: NonNull<u8>,
        old: Layout,
        new: Layout,
    ) -> Result<NonNull<[u8]>, AllocError> {
        if new.size() == 0 || old.align() != new.align() {
            let block = self.allocate(new)?;
            // SAFETY: both blocks are live and distinct; new.size() <= old.size().
            unsafe {
                ptr::copy_nonoverlapping(ptr.as_ptr(), block.as_ptr().cast(), new.size());
                self.deallocate(ptr, old);
            }
            return Ok(block);
        }
        // SAFETY: per the trait's contract; 0 < new.size() <= old.size().
        self.block(
            unsafe { self.realloc(ptr.as_ptr(), old, new.size()) },
            new.size(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use allocator_api2::vec::Vec;

    #[test]
    fn vec_and_boxes_on_an_instance() {
        let heap: Smalloc = Smalloc::new();
        {
            let mut v: Vec<u64, &Smalloc> = Vec::new_in(&heap);
            for i in 0..100_000u64 {
                v.push(i);
            }
            assert!(v.iter().copied().eq(0..100_000));
            // Grown through `grow` into bigger classes: one live block.
            assert_eq!(heap.stats().live_blocks, 1);
            v.truncate(10);
            v.shrink_to_fit();
            assert_eq!(&v[..], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
            let zst: Vec<(), &Smalloc> = Vec::with_capacity_in(10, &heap);
            assert_eq!(zst.capacity(), usize::MAX);
            let b = allocator_api2::boxed::Box::new_in([7u8; 3000], &heap);
            assert_eq!(b[2999], 7);
            assert_eq!(heap.stats().live_blocks, 2);
        }
        assert_eq!(heap.stats().live_blocks, 0);
    }

    #[test]
    fn reported_length_is_the_usable_size() {
        let heap: Smalloc = Smalloc::new();
        let l = Layout::from_size_align(100, 8).unwrap();
        let b = heap.allocate(l).unwrap();
        assert_eq!(b.len(), 128);
        let z = heap.allocate_zeroed(l).unwrap();
        assert_eq!(z.len(), 100);
        // SAFETY: both blocks are live, allocated with l.
        unsafe {
            assert!(
                core::slice::from_raw_parts(z.as_ptr().cast::<u8>(), 100)
                    .iter()
                    .all(|&x| x == 0)
            );
            heap.deallocate(b.cast(), l);
            heap.deallocate(z.cast(), l);
        }
    }
}
