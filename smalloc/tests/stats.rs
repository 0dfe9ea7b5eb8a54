//! `Smalloc::stats` against a known sequence of allocations on one thread: live figures exact,
//! resident figures within a page per class.

use std::alloc::{GlobalAlloc, Layout};

use smalloc_core::Smalloc;

const PAGE: usize = 4096;

/// Writes every byte of the block (so its pages are resident).
fn touch(p: *mut u8, len: usize) {
    // SAFETY: the caller's block holds len bytes.
    unsafe { p.write_bytes(0xa5, len) };
}

#[test]
fn stats_follow_a_known_sequence() {
    let s = Smalloc::new();
    let none = s.stats();
    assert_eq!(
        (none.live_bytes, none.live_blocks, none.resident_bytes),
        (0, 0, 0)
    );

    // (size, count, slot size expected)
    let plan = [
        (24usize, 100usize, 24usize),
        (1000, 10, 1024),
        (100 << 10, 3, 128 << 10),
    ];
    let mut blocks = Vec::new();
    let mut expect_live = 0;
    for &(size, count, slot) in &plan {
        for _ in 0..count {
            let l = Layout::from_size_align(size, 8).unwrap();
            // SAFETY: a valid non-zero layout.
            let p = unsafe { s.alloc(l) };
            assert!(!p.is_null());
            touch(p, size);
            // SAFETY: p is a live block of s.
            let usable = unsafe { s.usable_size(p) }.unwrap();
            assert_eq!(usable, slot);
            expect_live += usable;
            blocks.push((p, l));
        }
    }
    let big = Layout::from_size_align(200 << 20, 8).unwrap();
    // SAFETY: a valid non-zero layout.
    let bp = unsafe { s.alloc(big) };
    assert!(!bp.is_null());
    // SAFETY: bp is a live block of s.
    let big_usable = unsafe { s.usable_size(bp) }.unwrap();
    assert!(big_usable >= 200 << 20);
    expect_live += big_usable;

    let st = s.stats();
    assert_eq!(st.live_blocks, 114, "{st:?}");
    assert_eq!(st.live_bytes, expect_live, "{st:?}");
    assert_eq!((st.direct_blocks, st.direct_bytes), (1, big_usable + PAGE));
    assert_eq!((st.threads, st.slabs_in_use), (1, 1));
    for &(size, count, slot) in &plan {
        let c = st.class(slot).unwrap();
        assert_eq!(c.live_blocks, count, "class {slot}");
        // Touched: `count` blocks of `size` bytes. Small classes pack them side by side in one
        // run; classes of 64 KiB and more give each block a run of its own.
        let touched = if slot >= 64 << 10 {
            count * size.next_multiple_of(PAGE)
        } else {
            (count * slot).next_multiple_of(PAGE)
        };
        assert!(
            c.resident_bytes.abs_diff(touched) <= PAGE,
            "class {slot}: resident {} vs {touched} touched",
            c.resident_bytes
        );
    }
    let slots: usize = st.classes().iter().map(|c| c.resident_bytes).sum();
    assert!(st.resident_bytes >= slots + st.metadata_bytes - 1);
    assert!(
        st.metadata_bytes > 0 && st.metadata_bytes < 1 << 20,
        "{st:?}"
    );
    println!("{st}");

    for (p, l) in blocks {
        // SAFETY: live blocks of s with their layouts.
        unsafe { s.dealloc(p, l) };
    }
    // SAFETY: as above.
    unsafe { s.dealloc(bp, big) };
    let after = s.stats();
    assert_eq!((after.live_blocks, after.live_bytes), (0, 0), "{after:?}");
    assert_eq!((after.direct_blocks, after.direct_bytes), (0, 0));
    assert_eq!(
        after.free_resident_bytes(),
        after.resident_bytes - after.metadata_bytes
    );

    let given = s.trim();
    let trimmed = s.stats();
    assert!(given > 0);
    assert!(trimmed.given_back_bytes >= given as u64, "{trimmed:?}");
    // Every slot is free and trimmed: only metadata stays resident.
    let slots: usize = trimmed.classes().iter().map(|c| c.resident_bytes).sum();
    assert_eq!(slots, 0, "{trimmed:?}");
    assert!(trimmed.resident_bytes < after.resident_bytes);
}

#[test]
fn stats_count_blocks_freed_by_other_threads_once_collected() {
    static S: Smalloc = Smalloc::new();
    let l = Layout::from_size_align(48, 8).unwrap();
    // SAFETY: a valid layout.
    let ptrs: Vec<usize> = (0..1000).map(|_| unsafe { S.alloc(l) } as usize).collect();
    assert_eq!(S.stats().class(48).unwrap().live_blocks, 1000);
    std::thread::spawn(move || {
        for p in ptrs {
            // SAFETY: live blocks of S, handed over to this thread.
            unsafe { S.dealloc(p as *mut u8, l) };
        }
    })
    .join()
    .unwrap();
    // Collected by the owner when it next needs slots (or trims).
    S.trim();
    let st = S.stats();
    assert_eq!(st.class(48).unwrap().live_blocks, 0, "{st:?}");
    assert_eq!(st.live_blocks, 0);
}

#[test]
fn stats_are_exact_for_the_slabs_of_exited_threads() {
    static S: Smalloc = Smalloc::new();
    let l = Layout::from_size_align(96, 8).unwrap();
    // Another thread allocates, frees a few of its own, and exits with the rest still live.
    let ptrs: Vec<usize> = std::thread::spawn(move || {
        // SAFETY: valid layout; the blocks freed are live blocks of S.
        let mut v: Vec<usize> = (0..50).map(|_| unsafe { S.alloc(l) } as usize).collect();
        for p in v.drain(..13) {
            unsafe { S.dealloc(p as *mut u8, l) };
        }
        v
    })
    .join()
    .unwrap();
    // Its slab has no owner now: counted exactly, current run included.
    let st = S.stats();
    assert_eq!(st.class(96).unwrap().live_blocks, 37, "{st:?}");
    assert_eq!(st.live_blocks, 37);
    assert_eq!(st.slabs_in_use, 0, "the count gives the borrowed slab back");
    for p in ptrs {
        // SAFETY: live blocks of S.
        unsafe { S.dealloc(p as *mut u8, l) };
    }
    // Frees of another slab's blocks count once that slab collects them; trim does it for the
    // slabs nobody owns.
    assert_eq!(S.stats().live_blocks, 37);
    S.trim();
    assert_eq!(S.stats().live_blocks, 0);
}
