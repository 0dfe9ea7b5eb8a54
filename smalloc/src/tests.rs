//! Transparent-box tests: the pure arithmetic, then the allocator's internals driven through a
//! private instance (not the global allocator), with failover paths forced by editing head words.
//!
//! Each test makes its own instance, which reserves its own 32 TiB; run them with cargo-nextest
//! (one process per test) so that no two instances compete for address space.

use super::*;
use crate::freelist::*;
use crate::layout::*;
use rand::{Rng, SeedableRng, rngs::StdRng};

fn lay(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn instance() -> Smalloc {
    let s = Smalloc::new();
    // SAFETY: init is always sound.
    unsafe { s.init() };
    assert!(
        s.is_reserved(),
        "the 32 TiB reservation must succeed on this machine"
    );
    s
}

fn base_of(s: &Smalloc) -> usize {
    s.slab_range().unwrap().start
}

fn locate(s: &Smalloc, p: *mut u8) -> Decoded {
    let off = p as usize - base_of(s);
    assert!(off < SLABS_LEN, "{p:?} is not in the slabs");
    decode(off)
}

fn sentinel_all(s: &Smalloc, sc: u32) {
    for slab in 0..NUM_SLABS {
        s.head(slab, sc)
            .store(slot_mask(sc) as u64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- pure arithmetic

#[test]
fn size_class_of_sizes_and_alignments() {
    let cases = [
        ((1, 1), 3),
        ((0, 1), 3),
        ((8, 8), 3),
        ((9, 1), 4),
        ((16, 16), 4),
        ((17, 8), 5),
        ((1, 16), 4),
        ((24, 8), 5),
        ((64, 64), 6),
        ((65, 1), 7),
        ((1, 4096), 12),
        ((4096, 1), 12),
        ((4097, 4096), 13),
        ((1 << 31, 1), 31),
        ((1 << 31, 1 << 31), 31),
        (((1 << 31) + 1, 1), 32),
        ((1, 1 << 40), 40),
        ((3 << 30, 8), 32),
        ((1 << 62, 1), 62),
        (((1 << 63) + 1, 1), 64),
    ];
    for ((size, align), sc) in cases {
        assert_eq!(size_class(size, align), sc, "size {size} align {align}");
    }
    // Exhaustive against the definition for every size up to 1 MiB and every alignment.
    for size in 1..=(1usize << 20) {
        for a in 0..=12 {
            let align = 1usize << a;
            let sc = size_class(size, align);
            let slot = 1usize << sc;
            assert!(slot >= size && slot >= align && sc >= MIN_SC);
            assert!(sc == MIN_SC || (slot / 2 < size || slot / 2 < align));
        }
    }
}

#[test]
fn geometry_adds_up() {
    assert_eq!(SLABS_LEN, 1 << 45);
    for sc in MIN_SC..=MAX_SC {
        // A slab's slots fill its area exactly.
        assert_eq!(slots_per_slab(sc) << sc, 1u64 << AREA_BITS);
        assert_eq!(slot_mask(sc) as u64, slots_per_slab(sc) - 1);
    }
    assert_eq!(slots_per_slab(MIN_SC), 1 << 32);
    assert_eq!(slots_per_slab(MAX_SC), 16);
    // The upstream limits: 15 usable 2 GiB slots per slab, 480 in all.
    assert_eq!((slots_per_slab(MAX_SC) - 1) * NUM_SLABS as u64, 480);
    assert_eq!(BASE_ALIGN, 1 << MAX_SC);
}

#[test]
fn encode_decode_roundtrip() {
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..200_000 {
        let slab = rng.gen_range(0..NUM_SLABS);
        let sc = rng.gen_range(MIN_SC..=MAX_SC);
        let slot = (rng.r#gen::<u64>() & slot_mask(sc) as u64) as u32;
        let byte = rng.r#gen::<usize>() & ((1 << sc) - 1);
        let off = slot_offset(slab, sc, slot) + byte;
        assert!(off < SLABS_LEN);
        assert_eq!(
            decode(off),
            Decoded {
                slab,
                sc,
                slot,
                byte
            }
        );
        assert_eq!(sc_of(off), sc);
        assert_eq!(head_index_of(off), head_index(slab, sc));
        // Slots are naturally aligned (relative to a base aligned to BASE_ALIGN).
        assert_eq!(slot_offset(slab, sc, slot) % (1 << sc), 0);
    }
    // Extremes.
    assert_eq!(slot_offset(0, MIN_SC, 0), 3 << AREA_BITS);
    let last = slot_offset(NUM_SLABS - 1, MAX_SC, slot_mask(MAX_SC)) + (1 << MAX_SC) - 1;
    assert_eq!(last, SLABS_LEN - 1);
    assert_eq!(
        decode(last),
        Decoded {
            slab: 31,
            sc: 31,
            slot: 15,
            byte: (1 << 31) - 1
        }
    );
}

#[test]
fn zero_links_chain_every_slot_and_end_at_the_sentinel() {
    for sc in MIN_SC..=MAX_SC {
        let n = slots_per_slab(sc);
        // An all-zero slot links to the next slot...
        for slot in [0u64, 1, 2, n / 2, n - 3] {
            assert_eq!(decode_next(slot as u32, 0, sc) as u64, slot + 1);
        }
        // ...and the last slot handed out (n - 2) links to the sentinel (n - 1).
        assert_eq!(decode_next((n - 2) as u32, 0, sc), slot_mask(sc));
        // A zero head word names slot 0, with counter 0.
        assert_eq!(head_first(0), 0);
        assert_eq!(head_counter(0), 0);
        // A zero link word means a fresh slot.
        assert_eq!(link_state(0), SlotState::Fresh);
    }
    // Walk a whole small slab: zero links visit every slot once, then the sentinel.
    let sc = MAX_SC;
    let mut seen = vec![];
    let mut s = head_first(0);
    while s != slot_mask(sc) {
        seen.push(s);
        s = decode_next(s, 0, sc);
    }
    assert_eq!(seen, (0..15).collect::<Vec<u32>>());
}

#[test]
fn links_roundtrip_any_next() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..200_000 {
        let sc = rng.gen_range(MIN_SC..=MAX_SC);
        let m = slot_mask(sc) as u64;
        let slot = (rng.r#gen::<u64>() % m) as u32; // a real slot, never the sentinel
        let next = (rng.r#gen::<u64>() & m) as u32; // any slot, or the sentinel
        for state in [SlotState::Dirty, SlotState::Purged] {
            let link = encode_link(slot, next, state);
            assert_eq!(decode_next(slot, link, sc), next);
            assert_eq!(link_state(link), state);
        }
    }
    // The sentinel itself roundtrips at the extremes of the 8-byte class (2^32 slots).
    let link = encode_link(0, u32::MAX, SlotState::Dirty);
    assert_eq!(decode_next(0, link, MIN_SC), u32::MAX);
    let link = encode_link(u32::MAX - 1, 0, SlotState::Dirty);
    assert_eq!(decode_next(u32::MAX - 1, link, MIN_SC), 0);
}

#[test]
fn head_word_counter_counts_pushes_only() {
    let h = 0u64;
    let h = head_after_push(h, 41);
    assert_eq!((head_first(h), head_counter(h)), (41, 1));
    let h = head_after_pop(h, 7);
    assert_eq!((head_first(h), head_counter(h)), (7, 1));
    let h = head_after_push(h, 41);
    assert_eq!((head_first(h), head_counter(h)), (41, 2));
    // Same first slot as two steps ago, but a different word: the CAS of a stale pop fails.
    assert_ne!(h, head_after_push(0, 41));
    // The counter wraps without touching the slot half.
    let h = (u32::MAX as u64) << 32 | 5;
    let h = head_after_push(h, u32::MAX - 1);
    assert_eq!((head_first(h), head_counter(h)), (u32::MAX - 1, 0));
}

#[test]
fn grower_and_shrink_classes() {
    let expect = [
        (3, 6),
        (6, 6),
        (7, 7),
        (8, 12),
        (12, 12),
        (13, 14),
        (15, 16),
        (17, 18),
        (19, 21),
        (21, 21),
        (22, 22),
        (31, 31),
        (40, 40),
    ];
    for (needed, class) in expect {
        assert_eq!(grower_class(needed), class, "needed {needed}");
    }
    for needed in 0..=64 {
        assert!(grower_class(needed) >= needed);
    }
    assert_eq!(shrink_class(26, 7), Some(7));
    assert_eq!(shrink_class(8, 6), Some(6));
    assert_eq!(shrink_class(8, 7), None);
    assert_eq!(shrink_class(8, 8), None);
}

#[test]
fn round_up_overflows_to_none() {
    assert_eq!(round_up(0, 4096), Some(0));
    assert_eq!(round_up(1, 4096), Some(4096));
    assert_eq!(round_up(4096, 4096), Some(4096));
    assert_eq!(round_up(usize::MAX, 4096), None);
}

// ---------------------------------------------------------------- the allocator's internals

#[test]
fn base_is_aligned_and_fresh_slabs_hand_out_slots_in_order() {
    let s = instance();
    assert_eq!(base_of(&s) % BASE_ALIGN, 0);
    // SAFETY: all blocks are used within their size and freed with their layout.
    unsafe {
        let a = s.alloc(lay(64, 8));
        let b = s.alloc(lay(64, 8));
        let c = s.alloc(lay(50, 8)); // same class
        let (da, db, dc) = (locate(&s, a), locate(&s, b), locate(&s, c));
        assert_eq!(da.sc, 6);
        assert_eq!((da.slot, db.slot, dc.slot), (0, 1, 2));
        assert_eq!((da.slab, da.byte), (home_slab(), 0));
        // Freed slots come back last-in first-out.
        s.dealloc(b, lay(64, 8));
        s.dealloc(a, lay(64, 8));
        assert_eq!(s.alloc(lay(64, 8)), a);
        assert_eq!(s.alloc(lay(64, 8)), b);
        assert_eq!(s.alloc(lay(64, 8)), c.add(64));
    }
}

#[test]
fn head_words_of_different_slabs_never_share_a_cache_line() {
    let s = instance();
    for slab in 0..NUM_SLABS - 1 {
        let last_of_this = s.head(slab, MAX_SC) as *const _ as usize;
        let first_of_next = s.head(slab + 1, 0) as *const _ as usize;
        assert!(last_of_this / 128 < first_of_next / 128);
    }
    let base_word = &s.base.0 as *const _ as usize;
    assert_ne!(base_word / 128, s.head(0, 0) as *const _ as usize / 128);
}

#[test]
fn every_request_is_aligned_and_in_its_class() {
    let s = instance();
    let mut rng = StdRng::seed_from_u64(3);
    let mut live = vec![];
    for _ in 0..20_000 {
        let align = 1usize << rng.gen_range(0..=16);
        let size = rng.gen_range(1..=70_000);
        let l = lay(size, align);
        // SAFETY: the block is used within its size and freed with its layout.
        unsafe {
            let p = s.alloc(l);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            assert_eq!(locate(&s, p).sc, size_class(size, align));
            assert_eq!(s.usable_size(p), Some(1 << size_class(size, align)));
            p.write_bytes(0xA5, size);
            live.push((p, l));
            if rng.gen_bool(0.4) {
                let (p, l) = live.swap_remove(rng.gen_range(0..live.len()));
                s.dealloc(p, l);
            }
        }
    }
}

#[test]
fn failover_when_the_home_slab_is_full() {
    let s = instance();
    let sc = 6;
    // SAFETY: blocks are freed with their layout.
    unsafe {
        let first = s.alloc(lay(64, 8));
        let home = locate(&s, first).slab;
        // Mark the home slab full, as if all 2^29 slots were taken.
        s.head(home, sc)
            .store(slot_mask(sc) as u64, Ordering::Relaxed);
        let p = s.alloc(lay(64, 8));
        let d = locate(&s, p);
        assert_eq!((d.sc, d.slab, d.slot), (sc, (home + 1) % NUM_SLABS, 0));
        // The thread adopted the slab that worked, for every class.
        assert_eq!(home_slab(), (home + 1) % NUM_SLABS);
        assert_eq!(locate(&s, s.alloc(lay(8, 8))).slab, (home + 1) % NUM_SLABS);
        // Freeing goes back to the block's own slab, whatever the thread's slab is now.
        s.dealloc(first, lay(64, 8));
        assert_eq!(head_first(s.head(home, sc).load(Ordering::Relaxed)), 0);
    }
}

#[test]
fn failover_to_the_next_class_when_every_slab_is_full() {
    let s = instance();
    sentinel_all(&s, 6);
    // SAFETY: blocks are used within their size.
    unsafe {
        let p = s.alloc(lay(64, 8));
        assert_eq!(locate(&s, p).sc, 7);
        p.write_bytes(1, 64);
        // Two full classes in a row: skip both.
        sentinel_all(&s, 7);
        assert_eq!(locate(&s, s.alloc(lay(33, 8))).sc, 8);
        // Freed into the class it came from.
        s.dealloc(p, lay(64, 8));
        assert_eq!(
            head_first(s.head(locate(&s, p).slab, 7).load(Ordering::Relaxed)),
            locate(&s, p).slot
        );
    }
}

#[test]
fn really_exhausting_the_two_biggest_classes_fails_over_then_maps_directly() {
    let s = instance();
    let gib = 1usize << 30;
    let range = s.slab_range().unwrap();
    let mut blocks = vec![];
    // SAFETY: no block is touched; all are freed with their layout.
    unsafe {
        // 1 GiB blocks: 31 usable slots in each of 32 slabs, then they spill into 2 GiB slots.
        for _ in 0..31 * NUM_SLABS {
            let p = s.alloc(lay(gib, 8));
            assert_eq!(locate(&s, p).sc, 30);
            blocks.push((p, gib));
        }
        let spill = s.alloc(lay(gib, 8));
        assert_eq!(locate(&s, spill).sc, 31);
        blocks.push((spill, gib));
        // 2 GiB: 15 per slab; one is taken by the spill.
        for _ in 0..15 * NUM_SLABS - 1 {
            let p = s.alloc(lay(2 * gib, 8));
            assert_eq!(locate(&s, p).sc, 31);
            blocks.push((p, 2 * gib));
        }
        // Every slab of the largest class is exhausted: the next one is a direct mapping.
        let direct = s.alloc(lay(2 * gib, 8));
        assert!(!direct.is_null());
        assert!(!range.contains(&(direct as usize)));
        assert_eq!(s.usable_size(direct), Some(2 * gib));
        *direct.add(2 * gib - 1) = 9;
        s.dealloc(direct, lay(2 * gib, 8));
        // Small requests overflowing into a full top class also end up mapped directly.
        sentinel_all(&s, 29);
        let small_direct = s.alloc(lay(1 << 29, 8));
        assert!(!range.contains(&(small_direct as usize)));
        s.dealloc(small_direct, lay(1 << 29, 8));
        for (p, size) in blocks {
            s.dealloc(p, lay(size, 8));
        }
        // Everything is back: a 2 GiB slot is available again.
        let p = s.alloc(lay(2 * gib, 8));
        assert!(range.contains(&(p as usize)));
    }
}

#[test]
fn alloc_zeroed_zeroes_reused_slots_and_leaves_fresh_ones_alone() {
    let s = instance();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        for size in [8usize, 24, 64, 1000, 4096, 100_000] {
            let l = lay(size, 8);
            let p = s.alloc_zeroed(l);
            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
            p.write_bytes(0xFF, size);
            s.dealloc(p, l);
            // The dirty slot is first on the free list and comes back zeroed.
            let q = s.alloc_zeroed(l);
            assert_eq!(p, q);
            assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0));
            // A plain alloc of a reused slot keeps the old bytes past the link word (no needless
            // zeroing).
            q.write_bytes(0xEE, size);
            s.dealloc(q, l);
            let r = s.alloc(l);
            if size > 8 {
                assert_eq!(*r.add(size - 1), 0xEE);
            }
            s.dealloc(r, l);
        }
    }
}

#[test]
fn freeing_a_big_slot_purges_it_and_alloc_zeroed_then_writes_one_word() {
    let s = instance();
    let size = 64usize << 20;
    let l = lay(size, 8);
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let p = s.alloc(l);
        p.write_bytes(0x5A, size);
        s.dealloc(p, l);
        // The link word says the slot was purged; the rest reads as zero already.
        let link = (*(p as *const AtomicU64)).load(Ordering::Relaxed);
        assert_eq!(link_state(link), SlotState::Purged);
        assert!(
            std::slice::from_raw_parts(p.add(8), size - 8)
                .iter()
                .all(|&b| b == 0)
        );
        let q = s.alloc_zeroed(l);
        assert_eq!(p, q);
        assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0));
    }
}

#[test]
fn realloc_growers_jump_to_landmark_classes() {
    let s = instance();
    // SAFETY: blocks are used within their size; realloc results replace their inputs.
    unsafe {
        let mut p = s.alloc(lay(10, 1));
        p.copy_from(b"0123456789".as_ptr(), 10);
        let mut size = 10;
        let mut classes = vec![];
        for new_size in [
            12, 16, 20, 64, 65, 200, 5000, 20_000, 70_000, 300_000, 3_000_000,
        ] {
            p = s.realloc(p, lay(size, 1), new_size);
            assert!(!p.is_null());
            assert_eq!(std::slice::from_raw_parts(p, 10), b"0123456789");
            p.add(new_size - 1).write(1);
            classes.push(locate(&s, p).sc);
            size = new_size;
        }
        // 12 and 16 fit the 16-byte slot; 20 jumps to 64 B, then 128 B, 4 KiB, 16 KiB, ...
        assert_eq!(classes, [4, 4, 6, 6, 7, 12, 14, 16, 18, 21, 22]);
    }
}

#[test]
fn realloc_to_a_much_smaller_size_moves_down_and_frees_the_big_slot() {
    let s = instance();
    let big = 64usize << 20;
    // SAFETY: blocks are used within their size.
    unsafe {
        let p = s.alloc(lay(big, 8));
        let d = locate(&s, p);
        p.write_bytes(0x33, big);
        let q = s.realloc(p, lay(big, 8), 100);
        assert_ne!(p, q);
        assert_eq!(locate(&s, q).sc, 7);
        assert!(
            std::slice::from_raw_parts(q, 100)
                .iter()
                .all(|&b| b == 0x33)
        );
        // The 64 MiB slot is back on its free list, purged.
        assert_eq!(
            head_first(s.head(d.slab, d.sc).load(Ordering::Relaxed)),
            d.slot
        );
        // A modest shrink stays in place.
        let r = s.realloc(q, lay(100, 8), 70);
        assert_eq!(r, q);
        // With every smaller class full, a shrink stays in place rather than fail over upward.
        let p = s.alloc(lay(4096, 8));
        for sc in 6..12 {
            sentinel_all(&s, sc);
        }
        assert_eq!(s.realloc(p, lay(4096, 8), 40), p);
    }
}

#[test]
fn direct_mappings_for_huge_sizes_and_alignments() {
    let s = instance();
    let range = s.slab_range().unwrap();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let size = 3usize << 30;
        let p = s.alloc(lay(size, 8));
        assert!(!p.is_null() && !range.contains(&(p as usize)));
        assert_eq!(s.usable_size(p), Some(size));
        *p = 1;
        *p.add(size - 1) = 2;
        // Grows by remapping, keeping the contents.
        let q = s.realloc(p, lay(size, 8), size + (1 << 30));
        assert!(!q.is_null());
        assert_eq!((*q, *q.add(size - 1)), (1, 2));
        assert_eq!(s.usable_size(q), Some(size + (1 << 30)));
        // Shrinking in place gives back the tail; shrinking a lot moves into a slot.
        let r = s.realloc(q, lay(size + (1 << 30), 8), size - 4096);
        assert_eq!(r, q);
        assert_eq!(s.usable_size(r), Some(size - 4096));
        let t = s.realloc(r, lay(size - 4096, 8), 4096);
        assert!(range.contains(&(t as usize)));
        assert_eq!(*t, 1);
        s.dealloc(t, lay(4096, 8));

        // Alignment above what a slot gives (2 GiB).
        for align_log in [32u32, 33, 36] {
            let align = 1usize << align_log;
            let p = s.alloc(lay(100, align));
            assert!(!p.is_null(), "alignment 2^{align_log}");
            assert_eq!(p as usize % align, 0);
            *p.add(99) = 7;
            s.dealloc(p, lay(100, align));
        }
        // Alignment within slot range goes to a slot.
        let p = s.alloc(lay(100, 1 << 20));
        assert!(range.contains(&(p as usize)));
        assert_eq!(p as usize % (1 << 20), 0);
    }
}

#[test]
fn impossible_requests_return_null() {
    let s = instance();
    // SAFETY: nothing is dereferenced.
    unsafe {
        assert!(s.alloc(lay(1 << 62, 8)).is_null());
        assert!(s.alloc_zeroed(lay(1 << 62, 8)).is_null());
        assert!(s.alloc(lay(1, 1 << 62)).is_null());
        // A failed realloc leaves the block intact.
        let p = s.alloc(lay(16, 8));
        p.write_bytes(0x77, 16);
        assert!(s.realloc(p, lay(16, 8), 1 << 62).is_null());
        assert!(std::slice::from_raw_parts(p, 16).iter().all(|&b| b == 0x77));
        s.dealloc(p, lay(16, 8));
    }
}

/// Counts what reaches the fallback allocator.
struct Counting(AtomicUsize);

// SAFETY: forwards every call to System unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.0.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[test]
fn a_refused_reservation_sends_everything_to_the_fallback() {
    let s = Smalloc::with_fallback(Counting(AtomicUsize::new(0)));
    // What `reserve` publishes when the OS says no.
    s.base.0.store(FAILED, Ordering::Relaxed);
    assert!(!s.is_reserved());
    assert_eq!(s.slab_range(), None);
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let p = s.alloc(lay(100, 8));
        p.write_bytes(1, 100);
        let z = s.alloc_zeroed(lay(100, 8));
        assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
        let p = s.realloc(p, lay(100, 8), 10_000);
        assert_eq!(*p.add(99), 1);
        assert_eq!(s.usable_size(p), None);
        s.dealloc(p, lay(10_000, 8));
        s.dealloc(z, lay(100, 8));
        // alloc, alloc_zeroed (via alloc), realloc (alloc + dealloc), 2 deallocs
        assert_eq!(s.fallback.0.load(Ordering::Relaxed), 6);
    }
}

#[test]
fn racing_initializers_agree_on_one_reservation() {
    let s = Smalloc::new();
    let bases: Vec<usize> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4).map(|_| sc.spawn(|| s.reserve())).collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bases.iter().all(|&b| b == bases[0]));
    assert_eq!(s.slab_range().unwrap().start, bases[0]);
}

#[test]
fn moving_realloc_does_not_commit_pages_the_program_never_touched() {
    let s = instance();
    let (mib, old) = (1usize << 20, 512usize << 20);
    // SAFETY: blocks are used within their size; realloc results replace their inputs.
    unsafe {
        let p = s.alloc(lay(old, 8));
        // Touch 300 MiB of the 512 MiB block.
        devutils::fill_raw(p, 300 * mib, 11);
        let before = devutils::rss_kib();
        // The whole 512 MiB is the old size, as when C's realloc knows only the slot size.
        let q = s.realloc(p, lay(old, 8), 600 * mib);
        let after = devutils::rss_kib();
        assert!(devutils::check_raw(q, 300 * mib, 11).is_ok());
        let gap = std::slice::from_raw_parts(q.add(300 * mib), 8 * mib);
        assert!(gap.iter().all(|&b| b == 0));
        // The old slot was purged and the new one holds the 300 MiB: RSS stays about the same
        // instead of growing by the 212 MiB never touched.
        assert!(
            after < before + 20 * 1024,
            "RSS went {before} -> {after} KiB moving 300 MiB of data"
        );
        // Zero pages inside the data are not lost: the destination has them already.
        let r = s.alloc(lay(64 * mib, 8));
        devutils::fill_raw(r, 64 * mib, 12);
        r.add(8 * mib).write_bytes(0, 4 * mib);
        let t = s.realloc(r, lay(64 * mib, 8), 100 * mib);
        assert!(devutils::check_raw(t, 8 * mib, 12).is_ok());
        let hole = std::slice::from_raw_parts(t.add(8 * mib), 4 * mib);
        assert!(hole.iter().all(|&b| b == 0));
        let tail = std::slice::from_raw_parts(t.add(12 * mib), 52 * mib);
        assert!(
            tail.iter()
                .enumerate()
                .all(|(i, &b)| b == devutils::pattern_byte(12, 12 * mib + i))
        );
    }
}

#[test]
fn zero_skipping_copy_is_exact() {
    let mut rng = StdRng::seed_from_u64(9);
    for _ in 0..200 {
        let len = rng.gen_range(1..40_000);
        let mut src = vec![0u8; len];
        for _ in 0..rng.gen_range(0..20) {
            let i = rng.gen_range(0..len);
            src[i] = rng.r#gen::<u8>() | 1;
        }
        for state in [SlotState::Fresh, SlotState::Purged, SlotState::Dirty] {
            // A destination in the promised state: zero, but for a link word when purged.
            let mut dst = vec![0u8; len + 8];
            if state == SlotState::Purged {
                dst[..8].copy_from_slice(&[0xAB; 8]);
            }
            if state == SlotState::Dirty {
                dst.fill(0xCD);
            }
            // SAFETY: both buffers hold len bytes and are distinct.
            unsafe { move_bytes(dst.as_mut_ptr(), state, src.as_ptr(), len) };
            assert_eq!(&dst[..len], &src[..], "len {len}, {state:?}");
        }
    }
}

#[test]
fn the_reservation_is_left_out_of_core_dumps() {
    let s = instance();
    let base = base_of(&s);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    // The mapping that starts at the base, then its VmFlags line ("dd" = do not dump).
    let start = format!("{base:x}-");
    let entry = smaps
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&start))
        .find(|l| l.starts_with("VmFlags"))
        .expect("the reservation is in /proc/self/smaps");
    assert!(
        entry.split_whitespace().any(|f| f == "dd"),
        "reservation flags: {entry}"
    );
}
