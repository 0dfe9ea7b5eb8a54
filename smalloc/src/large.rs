//! Direct mappings: blocks the slabs cannot serve.
//!
//! A request bigger than the largest slot (128 MiB), aligned more than a slot can be, or arriving
//! when every slab that could serve it is exhausted gets a mapping of its own:
//!
//! ```text
//!   ptr - page          ptr                               ptr + data_len
//!   [ header page      ][ data, rounded up to whole pages ]
//! ```
//!
//! The header page records the mapping's length, so freeing, resizing and `usable_size` need
//! nothing but the pointer (the C ABI's `free` gets no size). A check word derived from the
//! pointer guards against acting on memory that is not such a header. When the alignment exceeds
//! a page, the mapping is over-sized and the unaligned lead and tail are unmapped again.
//!
//! # The registry
//!
//! Every live direct mapping's address is also entered in a registry: an open-addressing hash
//! set of words in slab 0's metadata area (zero: never used; [`GONE`]: a removed entry). It lets
//! [`is_registered`] tell, without reading a byte next to the pointer, whether any address is one
//! of this instance's direct mappings, which the C ABI needs to sort out the pointers a process
//! hands to `free`: a header check alone would have to read the page before a pointer that may
//! be anybody's. An address is entered after its mapping exists and removed before the mapping
//! goes, so a lookup never finds an address that is not a live block of ours. The registry also
//! feeds the statistics (count and bytes of the direct mappings).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::layout::{REGISTRY_LEN, REGISTRY_OFF, round_up};
use crate::reservation::Reservation;

/// A registry entry whose mapping is gone; reusable by an insertion, skipped by lookups.
const GONE: u64 = 1;

/// The registry entry number where the search for `ptr` starts.
fn home(ptr: usize) -> usize {
    // Fibonacci hashing of the page number: addresses are page-aligned and often regular.
    ((ptr as u64 >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - REGISTRY_LEN.trailing_zeros()))
        as usize
}

/// Entry `i` (taken modulo the registry's length) of the registry of reservation `r`.
fn entry(r: Reservation, i: usize) -> &'static AtomicU64 {
    // SAFETY: the registry lies in slab 0's metadata area (see `layout`), mapped for the
    // reservation's life, and its words are only accessed atomically.
    unsafe { crate::sync::word(r.base + REGISTRY_OFF + (i % REGISTRY_LEN) * 8) }
}

/// Enters `ptr`; false only if every entry holds a live mapping. The table has four times as many
/// entries as Linux lets a process have mappings by default (`vm.max_map_count`), so probe
/// sequences stay short and the table is never full unless that limit was raised a lot.
fn register(r: Reservation, ptr: usize) -> bool {
    let h = home(ptr);
    for i in h..h + REGISTRY_LEN {
        let e = entry(r, i);
        let v = e.load(Ordering::Relaxed);
        if (v == 0 || v == GONE)
            && e.compare_exchange(v, ptr as u64, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        {
            return true;
        }
    }
    false
}

/// Removes `ptr`, if registered.
fn unregister(r: Reservation, ptr: usize) {
    let h = home(ptr);
    for i in h..h + REGISTRY_LEN {
        let e = entry(r, i);
        match e.load(Ordering::Relaxed) {
            0 => return,
            v if v == ptr as u64 => {
                e.store(GONE, Ordering::Release);
                return;
            }
            _ => {}
        }
    }
}

/// Whether `ptr` is a live direct mapping of reservation `r`. Reads only the registry, so any
/// address may be asked about.
pub(crate) fn is_registered(r: Reservation, ptr: usize) -> bool {
    if ptr <= GONE as usize {
        return false;
    }
    let h = home(ptr);
    for i in h..h + REGISTRY_LEN {
        match entry(r, i).load(Ordering::Acquire) {
            // Entries are never emptied again, and an insertion takes the first free entry of
            // its sequence: the address cannot be further on.
            0 => return false,
            v if v == ptr as u64 => return true,
            _ => {}
        }
    }
    false
}

/// Adds `blocks` and `bytes` (wrapping: negative amounts as two's complement) to the statistics
/// of the direct mappings.
fn count(r: Reservation, blocks: u64, bytes: u64) {
    let g = r.global();
    g.direct_blocks.fetch_add(blocks, Ordering::Relaxed);
    g.direct_bytes.fetch_add(bytes, Ordering::Relaxed);
}

/// Check word of a header, xored with the block's address so a stale or foreign header copied
/// elsewhere does not pass.
const MAGIC: usize = 0x5a11_0c0d_1bec_7b10;

/// Bookkeeping stored at the start of the page before a directly mapped block.
#[repr(C)]
struct Header {
    check: usize,
    /// Length of the whole mapping, header page included.
    map_len: usize,
}

/// The header of the block at `ptr`.
///
/// # Safety
/// `ptr` must have been returned by [`alloc`] and not freed.
unsafe fn header(ptr: *mut u8, page: usize) -> *mut Header {
    // SAFETY: the caller guarantees ptr is a direct block, so ptr - page is its header page.
    unsafe { ptr.sub(page).cast() }
}

/// Maps a block of at least `size` bytes aligned to `align`; null if the OS refuses.
///
/// The block is committed memory (not `MAP_NORESERVE`), so a request the machine cannot back
/// fails here with null rather than later with the OOM killer. For alignments above a page, the
/// search for an aligned spot uses an uncommitted reservation, of which only the block itself is
/// then committed.
pub(crate) fn alloc(r: Reservation, size: usize, align: usize) -> *mut u8 {
    let page = smalloc_plat::page_size();
    let Some(data_len) = round_up(size.max(1), page) else {
        return core::ptr::null_mut();
    };
    let Some(block_len) = data_len.checked_add(page) else {
        return core::ptr::null_mut();
    };
    let ptr = if align <= page {
        match smalloc_plat::map(block_len) {
            Some(start) => start.as_ptr() as usize + page,
            None => return core::ptr::null_mut(),
        }
    } else {
        match aligned_block(data_len, block_len, align, page) {
            Some(ptr) => ptr,
            None => return core::ptr::null_mut(),
        }
    };
    // SAFETY: the header page is mapped, writable and ours.
    unsafe { write_header(ptr as *mut u8, page, block_len) };
    if !register(r, ptr) {
        // SAFETY: the mapping was made above and nobody else knows it.
        unsafe { smalloc_plat::unmap(NonNull::new_unchecked((ptr - page) as *mut u8), block_len) };
        return core::ptr::null_mut();
    }
    count(r, 1, block_len as u64);
    ptr as *mut u8
}

/// Commits `block_len` bytes whose last `data_len` start at a multiple of `align` (> `page`),
/// returning that address.
fn aligned_block(data_len: usize, block_len: usize, align: usize, page: usize) -> Option<usize> {
    // Room for an aligned address with a header page before it: at most align - page of lead.
    let span = data_len.checked_add(align)?;
    let start = smalloc_plat::reserve(span)?.as_ptr() as usize;
    let ptr = (start + page).next_multiple_of(align);
    let lead = ptr - page - start;
    let tail = span - lead - block_len;
    // SAFETY: every range below is a page-aligned part of the reservation just made, and nothing
    // else uses it.
    unsafe {
        let at = |a: usize| NonNull::new_unchecked(a as *mut u8);
        if !smalloc_plat::commit(at(ptr - page), block_len) {
            smalloc_plat::unmap(at(start), span);
            return None;
        }
        if lead > 0 {
            smalloc_plat::unmap(at(start), lead);
        }
        if tail > 0 {
            smalloc_plat::unmap(at(ptr + data_len), tail);
        }
    }
    Some(ptr)
}

/// # Safety
/// The page before `ptr` must be the mapped header page of the block at `ptr`.
unsafe fn write_header(ptr: *mut u8, page: usize, map_len: usize) {
    // SAFETY: per the caller, the header page is mapped and belongs to this block.
    unsafe {
        header(ptr, page).write(Header {
            check: MAGIC ^ ptr as usize,
            map_len,
        })
    };
}

/// The mapping length recorded for `ptr`, if its header checks out.
///
/// # Safety
/// The page before `ptr` must be readable.
unsafe fn map_len(ptr: *mut u8, page: usize) -> Option<usize> {
    // SAFETY: per the caller, the header page can be read.
    let h = unsafe { header(ptr, page).read() };
    (h.check == MAGIC ^ ptr as usize).then_some(h.map_len)
}

/// Usable bytes of the block at `ptr` (its data pages); 0 if the header does not check out.
///
/// # Safety
/// `ptr` must have been returned by [`alloc`] (or [`grow`]) and not freed.
pub(crate) unsafe fn usable_size(ptr: *mut u8) -> usize {
    let page = smalloc_plat::page_size();
    // SAFETY: forwarded from the caller.
    unsafe { map_len(ptr, page) }.map_or(0, |len| len - page)
}

/// Unmaps the block at `ptr`. A pointer whose header does not check out is left alone.
///
/// # Safety
/// `ptr` must have been returned by [`alloc`] (or [`grow`]) on `r` and not freed; it is dead
/// afterwards.
pub(crate) unsafe fn dealloc(r: Reservation, ptr: *mut u8) {
    let page = smalloc_plat::page_size();
    // SAFETY: forwarded from the caller; the whole mapping is the header page plus data.
    unsafe {
        if let Some(len) = map_len(ptr, page) {
            unregister(r, ptr as usize);
            count(r, u64::MAX, (len as u64).wrapping_neg());
            smalloc_plat::unmap(NonNull::new_unchecked(ptr.sub(page)), len);
        }
    }
}

/// Gives back the pages past `new_size` without moving the block. Never fails.
///
/// # Safety
/// `ptr` must be a live block from [`alloc`] on `r` and `new_size` no larger than its usable
/// size.
pub(crate) unsafe fn shrink_in_place(r: Reservation, ptr: *mut u8, new_size: usize) {
    let page = smalloc_plat::page_size();
    // SAFETY: forwarded from the caller.
    let Some(len) = (unsafe { map_len(ptr, page) }) else {
        return;
    };
    let keep = page + round_up(new_size.max(1), page).unwrap_or(len - page);
    if keep < len {
        // SAFETY: the tail pages belong to this block and lie beyond what the caller keeps.
        unsafe {
            smalloc_plat::unmap(NonNull::new_unchecked(ptr.sub(page).add(keep)), len - keep);
            write_header(ptr, page, keep);
        }
        count(r, 0, ((len - keep) as u64).wrapping_neg());
    }
}

/// Grows the block at `ptr` to at least `new_size` bytes with the OS's remap, moving it if need be
/// (only page alignment survives a move). Returns the block's new address, or null if the OS
/// refused or cannot remap, in which case the block is untouched.
///
/// # Safety
/// `ptr` must be a live block from [`alloc`] on `r`. On success the old address is dead.
pub(crate) unsafe fn grow(r: Reservation, ptr: *mut u8, new_size: usize) -> *mut u8 {
    let page = smalloc_plat::page_size();
    // SAFETY: forwarded from the caller.
    let Some(old_len) = (unsafe { map_len(ptr, page) }) else {
        return core::ptr::null_mut();
    };
    let Some(new_len) = round_up(new_size, page).and_then(|n| n.checked_add(page)) else {
        return core::ptr::null_mut();
    };
    // SAFETY: [ptr - page, ptr - page + old_len) is exactly the block's mapping.
    let moved =
        unsafe { smalloc_plat::remap(NonNull::new_unchecked(ptr.sub(page)), old_len, new_len) };
    let Some(start) = moved else {
        return core::ptr::null_mut();
    };
    // SAFETY: the new mapping starts with the (moved) header page.
    let new_ptr = unsafe { start.as_ptr().add(page) };
    // SAFETY: as above.
    unsafe { write_header(new_ptr, page, new_len) };
    if new_ptr != ptr {
        // The old entry goes first, so the new one always finds room (see `register`).
        unregister(r, ptr as usize);
        register(r, new_ptr as usize);
    }
    count(r, 0, (new_len - old_len) as u64);
    new_ptr
}
