//! smalloc as this process's global allocator, one thread: everyday collections, zeroed memory,
//! shrinking, huge and impossible requests. Opaque-box: only the public API.

use std::alloc::{self, Layout};
use std::collections::{BTreeMap, HashMap};

use devutils::{Block, Churn, rss_kib};
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

fn in_slabs(p: *const u8) -> bool {
    ALLOC.slab_range().unwrap().contains(&(p as usize))
}

#[test]
fn collections_work_and_live_in_the_slabs() {
    let mut v: Vec<u64> = (0..100_000).collect();
    let mut s = String::new();
    for i in 0..10_000 {
        s.push_str(&i.to_string());
    }
    let mut m: HashMap<String, Vec<u8>> = HashMap::new();
    let mut t = BTreeMap::new();
    for i in 0..20_000u32 {
        m.insert(format!("key{i}"), vec![i as u8; (i % 300) as usize]);
        t.insert(i, Box::new(i));
    }
    assert!(ALLOC.is_reserved());
    assert!(in_slabs(v.as_ptr().cast()) && in_slabs(s.as_ptr()));
    v.retain(|x| x % 3 == 0);
    assert_eq!(
        v.iter().sum::<u64>(),
        (0..100_000u64).filter(|x| x % 3 == 0).sum()
    );
    assert!(s.starts_with("0123456789101112"));
    for i in 0..20_000u32 {
        let e = &m[&format!("key{i}")];
        assert_eq!(e.len(), (i % 300) as usize);
        assert!(e.iter().all(|&b| b == i as u8));
        assert_eq!(*t[&i], i);
    }
}

#[test]
fn every_size_and_alignment_holds_its_bytes() {
    let mut blocks = vec![];
    let mut seed = 0;
    for log in 0..=22 {
        for size in [
            (1usize << log) - 1,
            1 << log,
            (1 << log) + 1,
            3 << log.max(1) >> 1,
        ] {
            for align_log in [0, 3, 4, 6, 12, 16] {
                let Ok(layout) = Layout::from_size_align(size.max(1), 1 << align_log) else {
                    continue;
                };
                seed += 1;
                let b = Block::new(layout, seed, seed % 3 == 0);
                assert!(in_slabs(b.ptr));
                blocks.push(b);
            }
        }
    }
    for b in blocks {
        b.free();
    }
}

#[test]
fn random_churn_single_thread() {
    let mut c = Churn::new(42, 20);
    c.run(100_000, 1_000);
    c.finish();
}

#[test]
fn a_reused_slot_comes_back_zeroed() {
    for size in [8usize, 100, 4096, 50_000, 3 << 20] {
        let mut v = vec![0u8; size];
        v.fill(0xFF);
        let p = v.as_ptr();
        drop(v);
        // Same size class, so the slot just freed is reused (free lists are LIFO per slab).
        let z = vec![0u8; size];
        assert_eq!(
            z.as_ptr(),
            p,
            "expected the freed slot back for size {size}"
        );
        assert!(
            z.iter().all(|&b| b == 0),
            "reused slot of {size} bytes not zeroed"
        );
    }
}

#[test]
fn a_big_alloc_zeroed_does_not_touch_its_pages() {
    // 96 MiB is served from a slab, 1 GiB by a mapping of its own: neither is written.
    for (len, slab) in [(96 << 20, true), (1 << 30, false)] {
        let before = rss_kib();
        let v = vec![0u8; len];
        let after = rss_kib();
        // Reading the values back would fault pages in; check the RSS before anything reads them.
        assert_eq!(in_slabs(v.as_ptr()), slab);
        assert!(
            after < before + 1024,
            "{len} bytes of zeroed memory cost {} KiB of RSS",
            after - before
        );
        assert_eq!(v[0], 0);
        assert_eq!(v[len - 1], 0);
    }
}

#[test]
fn shrink_to_fit_moves_to_a_small_slot_and_gives_memory_back() {
    let big = 64 << 20;
    let mut v: Vec<u8> = Vec::with_capacity(big);
    v.resize(big, 0x5A);
    let old = v.as_ptr();
    let rss_full = rss_kib();
    v.truncate(100);
    v.shrink_to_fit();
    let rss_after = rss_kib();
    assert_ne!(
        v.as_ptr(),
        old,
        "the data should have moved to a smaller slot"
    );
    assert!(v.capacity() < 4096);
    assert!(v.iter().all(|&b| b == 0x5A));
    assert!(
        rss_after + 60 * 1024 < rss_full,
        "RSS went {rss_full} -> {rss_after} KiB; the 64 MiB slot was not given back"
    );
}

#[test]
fn vec_growth_to_a_million_and_string_building() {
    let mut v = Vec::new();
    for i in 0..1_000_000u64 {
        v.push(i * 7);
    }
    assert!(v.iter().enumerate().all(|(i, &x)| x == i as u64 * 7));
    let mut s = String::new();
    for i in 0..200_000 {
        s.push(char::from(b'a' + (i % 26) as u8));
    }
    assert!(
        s.bytes()
            .enumerate()
            .all(|(i, b)| b == b'a' + (i % 26) as u8)
    );
}

#[test]
fn a_three_gib_block_is_mapped_directly() {
    let size = 3usize << 30;
    let layout = Layout::from_size_align(size, 8).unwrap();
    // SAFETY: the block is used within its size and freed with its layout.
    unsafe {
        let p = alloc::alloc(layout);
        assert!(!p.is_null());
        assert!(!in_slabs(p), "3 GiB cannot come from a 128 MiB slot");
        for off in (0..size).step_by(256 << 20) {
            *p.add(off) = (off >> 20) as u8;
        }
        *p.add(size - 1) = 0xEE;
        for off in (0..size).step_by(256 << 20) {
            assert_eq!(*p.add(off), (off >> 20) as u8);
        }
        assert_eq!(*p.add(size - 1), 0xEE);
        let q = alloc::realloc(p, layout, size + 4096);
        assert_eq!(*q.add(size - 1), 0xEE);
        alloc::dealloc(q, Layout::from_size_align(size + 4096, 8).unwrap());
    }
}

#[test]
fn impossible_requests_fail_cleanly() {
    // `black_box`: the compiler may delete an allocation whose pointer is only compared with
    // null, and fold the comparison to "not null"; the allocator must really be asked.
    use std::hint::black_box;
    // SAFETY: nothing is dereferenced; the small block is freed with its layout.
    unsafe {
        let huge = Layout::from_size_align(1 << 62, 8).unwrap();
        assert!(black_box(alloc::alloc(huge)).is_null());
        assert!(black_box(alloc::alloc_zeroed(huge)).is_null());
        let over_aligned = Layout::from_size_align(8, 1 << 62).unwrap();
        assert!(black_box(alloc::alloc(over_aligned)).is_null());
        let l = Layout::from_size_align(32, 8).unwrap();
        let p = alloc::alloc(l);
        p.write_bytes(9, 32);
        assert!(black_box(alloc::realloc(p, l, 1 << 62)).is_null());
        assert!(std::slice::from_raw_parts(p, 32).iter().all(|&b| b == 9));
        alloc::dealloc(p, l);
    }
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(1 << 62).is_err());
    assert!(v.try_reserve(1000).is_ok());
}
