//! Transparent-box tests: the pure arithmetic and encodings, then the allocator's internals driven
//! through a private instance (not the global allocator): runs, purging, remote frees, slab
//! hand-over, the shared slabs, failover and direct mappings.
//!
//! Each test makes its own instance, which reserves its own 32 TiB; run them with cargo-nextest
//! (one process per test) so that no two instances compete for address space.

use super::*;
use crate::layout::*;
use crate::purge::{RELEASED_BUDGET, RETAIN_MIN};
use crate::remote::{BATCH_MAX, Batch, INBOX_LEN};
use crate::shared::*;
use crate::slab::{CURRENT, EMPTY, FULL, PARTIAL, PURGED, Slab};
use core::sync::atomic::AtomicU64;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::SliceRandom};

fn lay(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

fn instance() -> Smalloc {
    let s = Smalloc::new();
    s.init();
    assert!(
        s.is_reserved(),
        "the 32 TiB reservation must succeed on this machine"
    );
    s
}

fn base_of(s: &Smalloc) -> usize {
    s.slab_range().unwrap().start
}

fn res(s: &Smalloc) -> Reservation {
    Reservation { base: base_of(s) }
}

/// Slab, class, run and slot-in-area of a block of `s`.
fn locate(s: &Smalloc, p: *mut u8) -> (usize, u32, u32, u32) {
    let off = p as usize - base_of(s);
    assert!(off < SLABS_LEN, "{p:?} is not in the slabs");
    let sc = sc_of_addr(p as usize);
    let (_, run) = Slab::run_of(p as usize);
    (
        slab_of(off),
        sc,
        run,
        ((off & AREA_MASK) / slot_size(sc)) as u32,
    )
}

/// The state of the run that holds `p`.
fn run_state(s: &Smalloc, p: *mut u8) -> u32 {
    let (slab, sc, run, _) = locate(s, p);
    // SAFETY: a read of the run table of a slab of the live reservation.
    unsafe { (*res(s).slab(slab).run(sc, run)).state }
}

/// The slab the calling thread owns, if any.
fn my_slab() -> Option<usize> {
    // SAFETY: the calling thread's own state.
    match unsafe { (*thread::state()).slab } {
        0 => None,
        s => Some(s as usize - 1),
    }
}

fn rss_kib() -> u64 {
    devutils::rss_kib()
}

/// Marks every owned slab as claimed, so that threads starting now find none.
fn claim_every_owned_slab(s: &Smalloc) {
    while res(s).claim().is_some() {}
}

// ---------------------------------------------------------------- pure arithmetic

/// The alignment of the slots of class `sc`: the largest power of two dividing their size.
fn class_align(sc: u32) -> usize {
    let size = slot_size(sc);
    size & size.wrapping_neg()
}

#[test]
fn slot_sizes_are_two_per_power_of_two() {
    let sizes: Vec<usize> = (MIN_SC..=20).map(slot_size).collect();
    assert_eq!(
        sizes,
        [
            8, 0, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024
        ]
    );
    for sc in MIN_SC + 2..=MAX_SC {
        if sc == 8 {
            continue; // after the unused position 7
        }
        assert!(slot_size(sc) > slot_size(sc - 1), "class {sc}");
    }
    for sc in MIN_SC..=MAX_SC {
        // Even classes are powers of two; odd ones three quarters of the next.
        if sc % 2 == 0 {
            assert_eq!(slot_size(sc), 1 << (sc / 2));
        } else if sc != 7 {
            assert_eq!(slot_size(sc) * 4, 3 * slot_size(sc + 1));
        }
    }
    assert_eq!(slot_size(MAX_SC), 128 << 20);
    assert_eq!(
        slot_size(MAX_SC + 1),
        0,
        "no slots beyond the largest class"
    );
}

#[test]
fn size_class_of_sizes_and_alignments() {
    let cases = [
        ((1, 1), 6),
        ((0, 1), 6),
        ((8, 8), 6),
        ((9, 1), 8),
        ((16, 16), 8),
        ((17, 8), 9),
        ((17, 16), 10),
        ((1, 16), 8),
        ((24, 8), 9),
        ((25, 8), 10),
        ((64, 64), 12),
        ((65, 1), 13),
        ((65, 64), 14),
        ((155, 16), 15),
        ((1, 4096), 24),
        ((4096, 1), 24),
        ((4097, 1), 25),
        ((4097, 4096), 26),
        ((1 << 27, 1), 54),
        (((1 << 27) + 1, 1), 55),
        ((1 << 31, 1 << 31), 62),
        ((1, 1 << 40), 80),
        ((1 << 62, 1), 124),
        (((1 << 63) + 1, 1), 127),
        ((usize::MAX, 1), 128),
    ];
    for ((size, align), sc) in cases {
        assert_eq!(size_class(size, align), sc, "size {size} align {align}");
    }
    // Exhaustive against the definition for every size up to 1 MiB and every alignment: the
    // class fits, and no smaller class does.
    let fits = |sc: u32, size: usize, align: usize| {
        slot_size(sc) >= size && slot_size(sc) != 0 && class_align(sc) >= align
    };
    for size in 1..=(1usize << 20) {
        for a in 0..=12 {
            let align = 1usize << a;
            let sc = size_class(size, align);
            assert!(
                fits(sc, size, align),
                "size {size} align {align}: class {sc}"
            );
            assert!(
                (MIN_SC..sc).all(|c| !fits(c, size, align)),
                "size {size} align {align}: class {sc} is not the smallest"
            );
        }
    }
    // Every class a request can get indexes the fast-path table.
    assert!((size_class(usize::MAX, 1) as usize) < CLASS_TABLE_LEN);
}

#[test]
fn geometry_adds_up() {
    assert_eq!(SLABS_LEN, 1 << 45);
    assert_eq!(BASE_ALIGN, 1 << 36);
    assert_eq!(NUM_SLABS, 512);
    assert_eq!(OWNED_SLABS + SHARED_SLABS, NUM_SLABS);
    for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
        // Runs fill an area exactly; slots fill a run but for less than one slot.
        assert_eq!(
            (runs_per_area(sc) as u64) << run_bits(sc),
            1u64 << AREA_BITS
        );
        let span = 1usize << run_bits(sc);
        assert!(run_slots_len(sc) <= span && span - run_slots_len(sc) < slot_size(sc));
        assert!(slots_per_run(sc) >= 1);
        assert!(
            slots_per_run(sc) as u64 * runs_per_area(sc) as u64 <= slots_per_area(sc) as u64,
            "class {sc}"
        );
    }
    assert_eq!((run_bits(6), slots_per_run(6)), (16, 8192));
    assert_eq!((run_bits(9), slots_per_run(9)), (16, 2730));
    assert_eq!((run_bits(24), slots_per_run(24)), (16, 16));
    assert_eq!((run_bits(40), slots_per_run(40)), (20, 1));
    assert_eq!((run_bits(41), slots_per_run(41)), (21, 1));
    assert_eq!(slots_per_area(MIN_SC), 1 << 27);
    assert_eq!(slots_per_area(MAX_SC), 8);
    // The shared links of each class start where those of the class before end, and all fit
    // the positions between the metadata and the smallest class.
    for sc in (MIN_SC + 1..=MAX_SC).filter(|&c| slot_size(c) != 0) {
        let prev = (MIN_SC..sc).rev().find(|&c| slot_size(c) != 0).unwrap();
        assert_eq!(
            shared_links_offset(sc),
            shared_links_offset(prev) + 8 * slots_per_area(prev) as usize
        );
    }
    assert!(shared_links_len() <= ((MIN_SC - LINKS_SC) as usize) << AREA_BITS);
}

#[test]
fn address_bits_roundtrip() {
    let base = 5usize << 40; // any BASE_ALIGN-aligned base
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..200_000 {
        let slab = rng.gen_range(0..NUM_SLABS);
        let sc = rng.gen_range(MIN_SC..=MAX_SC);
        if slot_size(sc) == 0 {
            continue;
        }
        // In an owned slab, slots are numbered within their run (a run's tail shorter than a
        // slot is unused); in a shared one, across the area.
        let run = rng.r#gen::<u32>() % runs_per_area(sc);
        let j = rng.r#gen::<u32>() % slots_per_run(sc);
        let byte = rng.r#gen::<usize>() % slot_size(sc);
        let addr = base
            + area_offset(slab, sc)
            + ((run as usize) << run_bits(sc))
            + j as usize * slot_size(sc)
            + byte;
        let off = addr - base;
        assert!(off < SLABS_LEN);
        assert_eq!(sc_of_addr(addr), sc);
        assert_eq!(slab_of(off), slab);
        assert_eq!(Slab::run_of(addr), (sc, run));
        assert_eq!(
            Slab::new(base, slab).run_addr(sc, run),
            base + area_offset(slab, sc) + ((run as usize) << run_bits(sc))
        );
        // Slots are aligned as their class says, both ways of numbering them.
        assert_eq!((addr - byte) % class_align(sc), 0);
        let shared = slab % SHARED_SLABS;
        let shared_slot = rng.r#gen::<u32>() % slots_per_area(sc);
        let shared_addr =
            base + area_offset(OWNED_SLABS + shared, sc) + shared_slot as usize * slot_size(sc);
        assert_eq!(
            Reservation::shared_locate(shared_addr - base, sc),
            (shared, shared_slot)
        );
        assert_eq!(
            Reservation { base }.shared_slot(shared, sc, shared_slot),
            shared_addr
        );
        assert_eq!(shared_addr % class_align(sc), 0);
    }
    // The last byte of the last slab.
    let last = area_offset(NUM_SLABS - 1, (NUM_SCS - 1) as u32) + (1 << AREA_BITS) - 1;
    assert_eq!(last, SLABS_LEN - 1);
}

#[test]
fn zero_links_chain_every_slot_and_end_at_the_sentinel() {
    for sc in (MIN_SC..=MAX_SC).filter(|&c| slot_size(c) != 0) {
        let n = slots_per_area(sc);
        // An all-zero link word names the next slot...
        for slot in [0, 1, 2, n / 2, n - 3] {
            assert_eq!(decode_next(slot, 0), slot + 1);
        }
        // ...and the last slot handed out (n - 2) links to the sentinel (n - 1).
        assert_eq!(decode_next(n - 2, 0), n - 1);
        assert_eq!((head_first(0), head_counter(0)), (0, 0));
        assert_eq!(link_state(0), SlotState::Fresh);
    }
    // Walk a whole small area: zero links visit every slot once, then the sentinel.
    let sentinel = slots_per_area(MAX_SC) - 1;
    let mut seen = vec![];
    let mut s = head_first(0);
    while s != sentinel {
        seen.push(s);
        s = decode_next(s, 0);
    }
    assert_eq!(seen, (0..7).collect::<Vec<u32>>());
}

#[test]
fn links_roundtrip_any_next() {
    let mut rng = StdRng::seed_from_u64(2);
    for _ in 0..200_000 {
        let sc = rng.gen_range(MIN_SC..=MAX_SC);
        if slot_size(sc) == 0 {
            continue;
        }
        let sentinel = slots_per_area(sc) - 1;
        let slot = rng.r#gen::<u32>() % sentinel; // a real slot, never the sentinel
        let next = rng.r#gen::<u32>() % (sentinel + 1); // any slot, or the sentinel
        for state in [SlotState::Dirty, SlotState::Purged] {
            let link = encode_link(slot, next, state);
            assert_eq!(decode_next(slot, link), next);
            assert_eq!(link_state(link), state);
        }
    }
}

#[test]
fn head_word_counter_counts_pushes_only() {
    let h = head_after_push(0, 41);
    assert_eq!((head_first(h), head_counter(h)), (41, 1));
    let h = head_after_pop(h, 7);
    assert_eq!((head_first(h), head_counter(h)), (7, 1));
    let h = head_after_push(h, 41);
    assert_eq!((head_first(h), head_counter(h)), (41, 2));
    // Same first slot as two steps ago, but a different word: the CAS of a stale pop fails.
    assert_ne!(h, head_after_push(0, 41));
    // The counter wraps without touching the slot half.
    let h = head_after_push((u32::MAX as u64) << 32 | 5, u32::MAX - 1);
    assert_eq!((head_first(h), head_counter(h)), (u32::MAX - 1, 0));
}

#[test]
fn shared_list_pops_zero_memory_in_order_then_lifo() {
    // A miniature area of 8 slots, all zero: a complete free list.
    let head = AtomicU64::new(0);
    let links: Vec<AtomicU64> = (0..8).map(|_| AtomicU64::new(0)).collect();
    let link = |n: u32| &links[n as usize];
    let mut got = vec![];
    while let Pop::Got(slot, state) = try_pop(&head, 7, link) {
        assert_eq!(state, SlotState::Fresh);
        got.push(slot);
    }
    assert_eq!(got, (0..7).collect::<Vec<u32>>());
    assert_eq!(try_pop(&head, 7, link), Pop::Empty);
    push(&head, link(3), 3, SlotState::Dirty);
    push(&head, link(5), 5, SlotState::Purged);
    assert_eq!(try_pop(&head, 7, link), Pop::Got(5, SlotState::Purged));
    assert_eq!(try_pop(&head, 7, link), Pop::Got(3, SlotState::Dirty));
    assert_eq!(try_pop(&head, 7, link), Pop::Empty);
}

#[test]
fn grower_and_shrink_classes() {
    // Tight up to 3 KiB, landmarks from 4 KiB to 2 MiB, tight again beyond.
    let expect = [
        (6, 6),
        (9, 9),
        (12, 12),
        (16, 16),
        (23, 23),
        (24, 28),
        (25, 28),
        (28, 28),
        (29, 32),
        (33, 36),
        (37, 42),
        (42, 42),
        (43, 48),
        (48, 48),
        (49, 54),
        (54, 54),
        (55, 55),
        (80, 80),
    ];
    for (needed, class) in expect {
        assert_eq!(grower_class(needed), class, "needed {needed}");
    }
    for needed in 0..=128 {
        assert!(grower_class(needed) >= needed);
    }
    // A quarter of the slot or less: two powers of two, four classes.
    assert_eq!(shrink_class(52, 14), Some(14));
    assert_eq!(shrink_class(16, 12), Some(12));
    assert_eq!(shrink_class(16, 13), None);
    assert_eq!(shrink_class(16, 16), None);
}

#[test]
fn round_up_overflows_to_none() {
    assert_eq!(round_up(0, 4096), Some(0));
    assert_eq!(round_up(1, 4096), Some(4096));
    assert_eq!(round_up(4096, 4096), Some(4096));
    assert_eq!(round_up(usize::MAX, 4096), None);
}

#[test]
fn batches_collect_for_one_destination_until_full() {
    let mut b = Batch::EMPTY;
    assert!(b.take().is_none());
    for i in 0..BATCH_MAX as u64 {
        assert!(b.add(0x1000, 8 * (i + 1)));
    }
    assert!(b.is_full());
    assert!(!b.add(0x1000, 8), "full");
    let (dest, ptrs) = b.take().unwrap();
    assert_eq!((dest, ptrs.len(), ptrs[0]), (0x1000, BATCH_MAX, 8));
    assert!(b.add(0x2000, 16));
    assert!(!b.add(0x1000, 24), "bound for another slab");
}

#[test]
fn the_inbox_keeps_order_wraps_around_and_refuses_when_full() {
    let (tail, head) = (AtomicU64::new(0), AtomicU64::new(0));
    let entries: Vec<AtomicU64> = (0..INBOX_LEN).map(|_| AtomicU64::new(0)).collect();
    let inbox = remote::Inbox {
        tail: &tail,
        head: &head,
        entry: |i: u64| &entries[(i % INBOX_LEN) as usize],
        len: INBOX_LEN,
    };
    let mut next = 1u64;
    let mut expect = 1u64;
    for round in 0..5 {
        // Fill it completely, in batches.
        let batches = INBOX_LEN / BATCH_MAX as u64;
        for _ in 0..batches {
            let ptrs: Vec<u64> = (0..BATCH_MAX as u64).map(|k| next + k).collect();
            assert!(inbox.push(&ptrs), "round {round}");
            next += BATCH_MAX as u64;
        }
        assert!(!inbox.push(&[next]), "no room left");
        let mut taken = 0;
        let n = inbox.take(
            |_| {},
            |p| {
                assert_eq!(p, expect);
                expect += 1;
                taken += 1;
            },
        );
        assert_eq!((n, taken), (INBOX_LEN, INBOX_LEN));
        assert_eq!(inbox.take(|_| {}, |_| panic!("empty")), 0);
    }
    // A reserved but unwritten entry stops the owner until it is written.
    tail.store(tail.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    assert!(inbox.push(&[77]));
    assert_eq!(
        inbox.take(|_| {}, |_| panic!("the first entry is not written yet")),
        0
    );
}

#[test]
fn slabs_are_claimed_lowest_first_and_released() {
    let bitmap: Vec<AtomicU64> = (0..NUM_SLABS / 64).map(|_| AtomicU64::new(0)).collect();
    for i in 0..OWNED_SLABS {
        assert_eq!(ownership::claim(&bitmap, OWNED_SLABS), Some(i));
    }
    assert_eq!(ownership::claim(&bitmap, OWNED_SLABS), None);
    ownership::release(&bitmap, 300);
    ownership::release(&bitmap, 7);
    assert!(!ownership::is_claimed(&bitmap, 7));
    assert_eq!(ownership::claim(&bitmap, OWNED_SLABS), Some(7));
    assert_eq!(ownership::claim(&bitmap, OWNED_SLABS), Some(300));
    // The shared slabs' bits are never handed out.
    assert!(!ownership::is_claimed(&bitmap, OWNED_SLABS));
}

// ---------------------------------------------------------------- runs of an owned slab

#[test]
fn a_thread_claims_a_slab_and_bumps_through_a_run_in_address_order() {
    let s = instance();
    assert_eq!(base_of(&s) % BASE_ALIGN, 0);
    assert_eq!(my_slab(), None);
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let a = s.alloc(lay(64, 8));
        let b = s.alloc(lay(64, 8));
        let c = s.alloc(lay(50, 8)); // same class
        assert_eq!(my_slab(), Some(0), "the first thread gets the lowest slab");
        assert_eq!(locate(&s, a), (0, 12, 0, 0));
        assert_eq!(locate(&s, b), (0, 12, 0, 1));
        assert_eq!(locate(&s, c), (0, 12, 0, 2));
        assert_eq!(run_state(&s, a), CURRENT);
        // Freed slots of the current run come back last-in first-out.
        s.dealloc(b, lay(64, 8));
        s.dealloc(a, lay(64, 8));
        assert_eq!(s.alloc(lay(64, 8)), a);
        assert_eq!(s.alloc(lay(64, 8)), b);
        assert_eq!(locate(&s, s.alloc(lay(64, 8))).3, 3);
        // Another class has an area of its own.
        let d = s.alloc(lay(1000, 8));
        assert_eq!(locate(&s, d), (0, 20, 0, 0));
        let e = s.alloc(lay(150, 8));
        assert_eq!(locate(&s, e), (0, 15, 0, 0));
        assert_eq!(s.usable_size(e), Some(192));
    }
}

#[test]
fn every_request_is_aligned_and_in_its_class() {
    let s = instance();
    let mut rng = StdRng::seed_from_u64(3);
    let mut live = vec![];
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        for _ in 0..20_000 {
            let size = 1usize << rng.gen_range(0..22);
            let size = rng.gen_range(1..=size);
            let align = 1usize << rng.gen_range(0..13);
            let l = lay(size, align);
            let p = s.alloc(l);
            assert!(!p.is_null());
            assert_eq!(p as usize % align, 0);
            let (slab, sc, _, _) = locate(&s, p);
            assert_eq!(slab, 0);
            assert_eq!(sc, size_class(size, align));
            assert_eq!(s.usable_size(p), Some(slot_size(sc)));
            p.write_bytes(0xA5, size);
            live.push((p, l));
            if rng.gen_bool(0.4) {
                let (p, l) = live.swap_remove(rng.gen_range(0..live.len()));
                assert!(
                    std::slice::from_raw_parts(p, l.size())
                        .iter()
                        .all(|&b| b == 0xA5)
                );
                s.dealloc(p, l);
            }
        }
        for (p, l) in live {
            s.dealloc(p, l);
        }
    }
}

#[test]
fn runs_go_full_partial_empty_and_are_reused_in_address_order() {
    let s = instance();
    let l = lay(64, 8);
    let per_run = slots_per_run(12) as usize;
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        // Three runs' worth and one more: runs 0-2 full, run 3 current.
        let blocks: Vec<*mut u8> = (0..3 * per_run + 1).map(|_| s.alloc(l)).collect();
        for (i, &p) in blocks.iter().enumerate() {
            assert_eq!(locate(&s, p).3 as usize, i, "fresh slots in address order");
        }
        assert_eq!(run_state(&s, blocks[0]), FULL);
        assert_eq!(run_state(&s, blocks[3 * per_run]), CURRENT);
        s.dealloc(blocks[5], l);
        assert_eq!(run_state(&s, blocks[0]), PARTIAL);
        // Free the rest of runs 0 and 1, in random order.
        let mut rest: Vec<*mut u8> = blocks[..2 * per_run]
            .iter()
            .copied()
            .filter(|&p| p != blocks[5])
            .collect();
        rest.shuffle(&mut StdRng::seed_from_u64(4));
        for p in rest {
            s.dealloc(p, l);
        }
        assert_eq!(run_state(&s, blocks[0]), EMPTY);
        assert_eq!(run_state(&s, blocks[per_run]), EMPTY);
        // Use up the current run; the next run taken is the newest empty one (run 1), handed
        // out in address order although its slots were freed in random order.
        let rest_of_current: Vec<*mut u8> = (1..per_run).map(|_| s.alloc(l)).collect();
        assert_eq!(run_state(&s, blocks[3 * per_run]), CURRENT);
        let next: Vec<*mut u8> = (0..per_run).map(|_| s.alloc(l)).collect();
        for (i, &p) in next.iter().enumerate() {
            assert_eq!(locate(&s, p).3 as usize, per_run + i);
        }
        assert_eq!(run_state(&s, blocks[3 * per_run]), FULL);
        for p in next.into_iter().chain(rest_of_current) {
            s.dealloc(p, l);
        }
        for &p in &blocks[2 * per_run..] {
            s.dealloc(p, l);
        }
    }
}

#[test]
fn empty_runs_beyond_the_retained_amount_are_purged_and_read_back_zero() {
    let s = instance();
    let l = lay(64, 8);
    let count = (256usize << 20) / 64; // 256 MiB of 64 B blocks
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let before = rss_kib();
        let blocks: Vec<*mut u8> = (0..count).map(|_| s.alloc(l)).collect();
        for &p in &blocks {
            p.write_bytes(0x5A, 64);
        }
        let peak = rss_kib();
        assert!(peak > before + 200 * 1024, "{before} -> {peak} KiB");
        for &p in &blocks {
            s.dealloc(p, l);
        }
        let first = blocks[0];
        drop(blocks); // the test's own 32 MiB of pointers
        let after = rss_kib();
        let hd = res(&s).slab(0).header();
        // What stays resident is bounded by the retained amount, whatever was used before.
        assert!(
            (*hd).empty <= RETAIN_MIN * 3 / 2 + (1 << 20),
            "{}",
            (*hd).empty
        );
        let purged = (*hd).purged_total.load(Ordering::Relaxed);
        assert!(purged >= (200 << 20), "{purged}");
        assert!(
            after < before + 40 * 1024,
            "RSS {before} KiB before, {peak} at the peak, {after} after freeing"
        );
        assert_eq!(run_state(&s, first), PURGED);
        // Purged runs are reused (before fresh ones) and read as zero.
        for _ in 0..count / 2 {
            let p = s.alloc_zeroed(l);
            assert!(std::slice::from_raw_parts(p, 64).iter().all(|&b| b == 0));
            assert!((locate(&s, p).3 as usize) < count, "reused, not fresh");
        }
    }
}

#[test]
fn a_block_freed_and_allocated_over_and_over_is_never_purged() {
    let s = instance();
    let purged = || {
        // SAFETY: reads the owner's own header (this thread owns slab 0).
        unsafe {
            (*res(&s).slab(0).header())
                .purged_total
                .load(Ordering::Relaxed)
        }
    };
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        for size in [64usize, 1 << 20, 16 << 20, 25 << 20] {
            let l = lay(size, 8);
            let churn = || {
                let p = s.alloc(l);
                p.write_bytes(1, size.min(1 << 16));
                s.dealloc(p, l);
            };
            // The first free of this size may push older empty runs out; then, steady state.
            churn();
            let before = purged();
            for _ in 0..200 {
                churn();
            }
            // With another block of the class live, the churning one has a run of its own.
            let keep = s.alloc(l);
            for _ in 0..200 {
                let p = s.alloc(l);
                p.write_bytes(1, size.min(1 << 16));
                s.dealloc(p, l);
            }
            assert_eq!(purged(), before, "size {size}");
            s.dealloc(keep, l);
        }
    }
}

#[test]
fn trim_gives_back_every_free_run_including_those_of_exited_threads() {
    let s = instance();
    let l = lay(64, 8);
    let count = (128usize << 20) / 64;
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let before = rss_kib();
        let blocks: Vec<*mut u8> = (0..count).map(|_| s.alloc(l)).collect();
        for &p in &blocks {
            p.write_bytes(1, 64);
        }
        for &p in &blocks {
            s.dealloc(p, l);
        }
        drop(blocks); // the test's own 16 MiB of pointers
        // A thread that leaves a little behind in its slab when it exits. (Joining it waits for
        // its exit destructors; the end of a scope alone does not.)
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let q: Vec<*mut u8> = (0..10_000).map(|_| s.alloc(lay(1000, 8))).collect();
                assert_eq!(my_slab(), Some(1));
                for p in q {
                    p.write_bytes(2, 1000);
                    s.dealloc(p, lay(1000, 8));
                }
            })
            .join()
            .unwrap();
        });
        let given = s.trim();
        assert!(given > 0);
        let after = rss_kib();
        assert!(after < before + 2 * 1024, "RSS {before} KiB -> {after} KiB");
        // Nothing is left: a second trim has nothing to give.
        assert_eq!(s.trim(), 0);
        // The trimmed slab of the exited thread is free for the next thread.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let p = s.alloc(l);
                assert_eq!(my_slab(), Some(1));
                s.dealloc(p, l);
            })
            .join()
            .unwrap();
        });
    }
}

#[test]
fn alloc_zeroed_zeroes_reused_slots_and_leaves_fresh_ones_alone() {
    let s = instance();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        for size in [8usize, 24, 64, 1000, 4096, 100_000, 3 << 20] {
            let l = lay(size, 8);
            let p = s.alloc_zeroed(l);
            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == 0));
            p.write_bytes(0xFF, size);
            s.dealloc(p, l);
            // The dirty slot is first on the free list and comes back zeroed.
            let q = s.alloc_zeroed(l);
            assert_eq!(p, q);
            assert!(std::slice::from_raw_parts(q, size).iter().all(|&b| b == 0));
            // A plain alloc of a reused slot keeps the old bytes (no needless zeroing).
            q.write_bytes(0xEE, size);
            s.dealloc(q, l);
            let r = s.alloc(l);
            if size > 8 {
                // (The first 8 bytes held the free-list link.)
                assert_eq!(*r.add(size - 1), 0xEE);
            }
            s.dealloc(r, l);
        }
        // An empty run taken in bump mode holds old data: alloc_zeroed must still zero.
        let l = lay(4096, 8);
        let per_run = slots_per_run(24) as usize;
        let blocks: Vec<*mut u8> = (0..2 * per_run).map(|_| s.alloc(l)).collect();
        for &p in &blocks {
            p.write_bytes(0xCC, 4096);
        }
        for &p in &blocks[..per_run] {
            s.dealloc(p, l);
        }
        assert_eq!(run_state(&s, blocks[0]), EMPTY);
        // Use up the current run (the one after blocks), then the empty one comes back.
        let mut more = vec![];
        loop {
            let p = s.alloc_zeroed(l);
            assert!(std::slice::from_raw_parts(p, 4096).iter().all(|&b| b == 0));
            more.push(p);
            if p == blocks[0] {
                break;
            }
            assert!(more.len() <= 2 * per_run, "the empty run was not reused");
        }
    }
}

// ---------------------------------------------------------------- threads: remote frees, hand-over

#[test]
fn remote_frees_reach_the_owner_through_the_inbox() {
    let s = instance();
    let l = lay(128, 8);
    // SAFETY: blocks are used within their size and freed once with their layout.
    unsafe {
        let blocks: Vec<usize> = (0..1000).map(|_| s.alloc(l) as usize).collect();
        let hd = res(&s).slab(0).header();
        std::thread::scope(|sc| {
            sc.spawn(|| {
                for &p in &blocks {
                    s.dealloc(p as *mut u8, l);
                }
                // Batched: the last partial batch is still pending here.
                let hd = res(&s).slab(0).header();
                assert!((*hd).inbox_tail.load(Ordering::Relaxed) >= 1000 - BATCH_MAX as u64);
            })
            .join()
            .unwrap();
        });
        // The thread's exit handed over its last batch.
        assert_eq!((*hd).inbox_tail.load(Ordering::Relaxed), 1000);
        assert_eq!((*hd).remote.load(Ordering::Relaxed), 0);
        // The owner collects them when its current run runs dry, and reuses them.
        let per_run = slots_per_run(14) as usize;
        let mut got = std::collections::HashSet::new();
        for _ in 0..per_run * 3 {
            got.insert(s.alloc(l) as usize);
        }
        assert_eq!((*hd).inbox_head.load(Ordering::Relaxed), 1000);
        assert!(
            blocks.iter().all(|p| got.contains(p)),
            "every freed block came back"
        );
    }
}

#[test]
fn a_full_inbox_falls_back_to_the_remote_list() {
    let s = instance();
    let l = lay(32, 8);
    // SAFETY: blocks are used within their size and freed once with their layout.
    unsafe {
        let blocks: Vec<usize> = (0..100).map(|_| s.alloc(l) as usize).collect();
        let hd = res(&s).slab(0).header();
        // As if writers had reserved the whole inbox and not written yet.
        (*hd).inbox_tail.store(INBOX_LEN, Ordering::Relaxed);
        std::thread::scope(|sc| {
            sc.spawn(|| {
                for &p in &blocks {
                    s.dealloc(p as *mut u8, l);
                }
            })
            .join()
            .unwrap();
        });
        assert_ne!((*hd).remote.load(Ordering::Relaxed), 0);
        // Put the inbox back, then let the owner collect through the remote list.
        (*hd).inbox_tail.store(0, Ordering::Relaxed);
        let per_run = slots_per_run(10) as usize;
        let got: std::collections::HashSet<usize> =
            (0..per_run + 100).map(|_| s.alloc(l) as usize).collect();
        assert_eq!((*hd).remote.load(Ordering::Relaxed), 0);
        assert!(blocks.iter().all(|p| got.contains(p)));
    }
}

#[test]
fn an_exiting_thread_hands_its_slab_and_free_slots_to_the_next_thread() {
    let s = instance();
    let l = lay(64, 8);
    let r = res(&s);
    // SAFETY: blocks are used within their size and freed once with their layout.
    unsafe {
        let first = s.alloc(l); // the main thread takes slab 0
        let (kept, freed) = std::thread::scope(|sc| {
            sc.spawn(|| {
                let blocks: Vec<usize> = (0..100).map(|_| s.alloc(l) as usize).collect();
                assert_eq!(my_slab(), Some(1));
                s.dealloc(blocks[99] as *mut u8, l);
                (blocks[..99].to_vec(), blocks[99])
            })
            .join()
            .unwrap()
        });
        assert!(
            !ownership::is_claimed(&r.global().claimed, 1),
            "released at exit"
        );
        assert_eq!(
            r.global().attached.load(Ordering::Relaxed),
            1,
            "only main is attached"
        );
        // Blocks the exited thread left live are freed later by another thread: remote frees
        // into a slab nobody owns.
        for &p in &kept[..50] {
            s.dealloc(p as *mut u8, l);
        }
        s.trim(); // hands over this thread's pending batch (and trims slab 1, collecting them)
        std::thread::scope(|sc| {
            sc.spawn(|| {
                // The next thread inherits slab 1 with its current run and free slots.
                let p = s.alloc(l) as usize;
                assert_eq!(my_slab(), Some(1));
                assert!(
                    p == freed || kept[..50].contains(&p),
                    "{p:x} was not free in slab 1"
                );
                s.dealloc(p as *mut u8, l);
                for &p in &kept[50..] {
                    s.dealloc(p as *mut u8, l);
                }
            })
            .join()
            .unwrap();
        });
        s.dealloc(first, l);
    }
}

#[test]
fn more_threads_than_slabs_share_the_shared_slabs() {
    let s = instance();
    let r = res(&s);
    // SAFETY: blocks are used within their size and freed once with their layout.
    unsafe {
        let own = s.alloc(lay(64, 8));
        assert_eq!(my_slab(), Some(0));
        claim_every_owned_slab(&s);
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    let mut live = vec![];
                    for i in 0..5000usize {
                        let size = 8 + (i * 37) % 3000;
                        let p = s.alloc(lay(size, 8));
                        assert_eq!(my_slab(), None);
                        let (slab, sc, _, _) = locate(&s, p);
                        assert!(slab >= OWNED_SLABS, "slab {slab}");
                        assert_eq!(sc, size_class(size, 8));
                        p.write_bytes(i as u8, size);
                        live.push((p, size, i as u8));
                        if i % 3 == 0 {
                            let (p, size, v) = live.swap_remove(i % live.len());
                            assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == v));
                            s.dealloc(p, lay(size, 8));
                        }
                    }
                    // A block of an owned slab freed from a shared-path thread: a remote free.
                    let z = s.alloc_zeroed(lay(100, 8));
                    assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
                    s.dealloc(z, lay(100, 8));
                    for (p, size, v) in live {
                        assert!(std::slice::from_raw_parts(p, size).iter().all(|&b| b == v));
                        s.dealloc(p, lay(size, 8));
                    }
                });
            }
        });
        // Shared blocks freed by an owning thread go back to their shared list.
        let p = {
            let t = std::thread::scope(|sc| sc.spawn(|| s.alloc(lay(64, 8)) as usize).join());
            t.unwrap() as *mut u8
        };
        assert!(locate(&s, p).0 >= OWNED_SLABS);
        s.dealloc(p, lay(64, 8));
        s.dealloc(own, lay(64, 8));
        assert!(r.global().shared_threads.load(Ordering::Relaxed) >= 4);
    }
}

#[test]
fn shared_slabs_fail_over_to_the_next_class() {
    let s = instance();
    let r = res(&s);
    claim_every_owned_slab(&s);
    // Every shared list of class 12 (64 B) is empty (its head names the sentinel slot).
    for sh in 0..SHARED_SLABS {
        r.shared_head(sh, 12)
            .store((slots_per_area(12) - 1) as u64, Ordering::Relaxed);
    }
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let p = s.alloc(lay(64, 8));
        assert_eq!(locate(&s, p).1, 13);
        // Freed into its own class, the next class's list.
        s.dealloc(p, lay(64, 8));
        assert_eq!(s.alloc(lay(80, 8)), p);
    }
}

#[test]
fn failing_over_to_a_bigger_class_keeps_the_alignment() {
    // 32 MiB slots are aligned to 32 MiB, the next class's 48 MiB ones only to 16 MiB: when
    // every 32 MiB slot is taken (32 per owned area, 31 per shared one), a 32 MiB-aligned request
    // must skip the 48 MiB class. The blocks are never touched, so this costs no memory.
    let s = instance();
    let size = 32 << 20;
    let l = lay(size, size);
    assert_eq!(size_class(size, size), 50);
    assert_eq!(
        (slot_size(51), slot_align(51), slot_align(52)),
        (48 << 20, 16 << 20, 64 << 20)
    );
    // SAFETY: blocks are never written, and freed with their layout.
    unsafe {
        let mut blocks = vec![];
        loop {
            let p = s.alloc(l);
            assert!(!p.is_null());
            assert!(
                (p as usize).is_multiple_of(size),
                "{p:?} not aligned to 32 MiB"
            );
            blocks.push(p);
            if locate(&s, p).1 != 50 {
                break;
            }
        }
        assert_eq!(blocks.len(), 32 + 31 * SHARED_SLABS + 1);
        assert_eq!(locate(&s, *blocks.last().unwrap()).1, 52);
        for p in blocks {
            s.dealloc(p, l);
        }
    }
}

#[test]
fn exhausting_the_largest_class_ends_in_a_direct_mapping() {
    let s = instance();
    let range = s.slab_range().unwrap();
    let size = slot_size(MAX_SC); // 128 MiB: 8 slots per owned area, 7 per shared one
    let l = lay(size, 8);
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let mut blocks = vec![];
        for i in 0..8 + 7 * SHARED_SLABS {
            let p = s.alloc(l);
            let (slab, sc, _, _) = locate(&s, p);
            assert_eq!(sc, MAX_SC);
            assert_eq!(slab < OWNED_SLABS, i < 8, "block {i} in slab {slab}");
            *p.add(size - 1) = 1;
            blocks.push(p);
        }
        let direct = s.alloc(l);
        assert!(!direct.is_null() && !range.contains(&(direct as usize)));
        assert_eq!(s.usable_size(direct), Some(size));
        *direct.add(size - 1) = 9;
        s.dealloc(direct, l);
        for p in blocks {
            s.dealloc(p, l);
        }
        // Everything is back: the slab serves the class again.
        let p = s.alloc(l);
        assert_eq!(locate(&s, p).0, 0);
    }
}

#[test]
fn an_instance_dropped_while_threads_are_attached_keeps_its_addresses() {
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let (back, done) = std::sync::mpsc::channel::<usize>();
    let a = Box::new(instance());
    let a_base = base_of(&a);
    let a_ref: &'static Smalloc = Box::leak(a);
    let t = std::thread::spawn(move || {
        // SAFETY: the block is used within its size and freed with its layout.
        unsafe {
            let p = a_ref.alloc(lay(64, 8));
            a_ref.dealloc(p, lay(64, 8));
        }
        wait.recv().unwrap();
        // Attached to a dropped instance: a new one takes over (owned slab, not shared).
        let b = instance();
        // SAFETY: as above.
        unsafe {
            let p = b.alloc(lay(64, 8));
            back.send(locate(&b, p).0).unwrap();
            b.dealloc(p, lay(64, 8));
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(50));
    // SAFETY: every block of `a` is gone; the other thread is still attached to it.
    unsafe { drop(Box::from_raw(a_ref as *const Smalloc as *mut Smalloc)) };
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    assert!(
        maps.contains(&format!("{a_base:x}-")),
        "the reservation must stay mapped while a thread is attached"
    );
    go.send(()).unwrap();
    assert!(done.recv().unwrap() < OWNED_SLABS);
    t.join().unwrap();
}

#[test]
fn a_second_instance_serves_an_attached_thread_from_its_shared_slabs() {
    let a = instance();
    let b = instance();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let p = a.alloc(lay(64, 8));
        let q = b.alloc(lay(64, 8));
        assert!(locate(&a, p).0 < OWNED_SLABS);
        assert!(locate(&b, q).0 >= OWNED_SLABS);
        b.dealloc(q, lay(64, 8));
        a.dealloc(p, lay(64, 8));
        assert_eq!(b.alloc(lay(64, 8)), q);
    }
}

// ---------------------------------------------------------------- realloc

#[test]
fn realloc_grows_tight_when_small_and_jumps_when_big() {
    let s = instance();
    // SAFETY: blocks are used within their size; realloc results replace their inputs.
    unsafe {
        let mut p = s.alloc(lay(10, 1));
        p.copy_from(b"0123456789".as_ptr(), 10);
        let mut size = 10;
        let mut classes = vec![];
        for new_size in [
            12, 16, 20, 64, 65, 200, 2000, 5000, 20_000, 70_000, 300_000, 3_000_000,
        ] {
            p = s.realloc(p, lay(size, 1), new_size);
            assert!(!p.is_null());
            assert_eq!(std::slice::from_raw_parts(p, 10), b"0123456789");
            p.add(new_size - 1).write(1);
            classes.push(locate(&s, p).1);
            size = new_size;
        }
        assert_eq!(classes, [8, 8, 9, 12, 13, 16, 22, 28, 32, 36, 42, 48]);
    }
}

#[test]
fn realloc_to_a_much_smaller_size_moves_down_and_frees_the_big_slot() {
    let s = instance();
    let big = 64usize << 20;
    // SAFETY: blocks are used within their size.
    unsafe {
        let p = s.alloc(lay(big, 8));
        p.write_bytes(0x33, big);
        let q = s.realloc(p, lay(big, 8), 100);
        assert_ne!(p, q);
        assert_eq!(locate(&s, q).1, 14);
        assert!(
            std::slice::from_raw_parts(q, 100)
                .iter()
                .all(|&b| b == 0x33)
        );
        // The 64 MiB slot is free again: the next one comes back in its place.
        assert_eq!(s.alloc(lay(big, 8)), p);
        // A modest shrink stays in place.
        assert_eq!(s.realloc(q, lay(100, 8), 70), q);
    }
}

#[test]
fn moving_realloc_does_not_commit_pages_the_program_never_touched() {
    let s = instance();
    let (mib, old) = (1usize << 20, 128usize << 20);
    // SAFETY: blocks are used within their size; realloc results replace their inputs.
    unsafe {
        let p = s.alloc(lay(old, 8));
        devutils::fill_raw(p, 100 * mib, 11);
        let before = rss_kib();
        // The whole 128 MiB is the old size, as when C's realloc knows only the slot size.
        let q = s.realloc(p, lay(old, 8), 200 * mib);
        let after = rss_kib();
        assert!(devutils::check_raw(q, 100 * mib, 11).is_ok());
        let gap = std::slice::from_raw_parts(q.add(100 * mib), 8 * mib);
        assert!(gap.iter().all(|&b| b == 0));
        // The old slot is free (and may stay resident), the new one holds the 100 MiB: RSS
        // grows by at most the data, not by the 28 MiB never touched.
        assert!(
            after < before + 110 * 1024,
            "RSS went {before} -> {after} KiB moving 100 MiB of data"
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
        for zero in [true, false] {
            let mut dst = vec![if zero { 0 } else { 0xCD }; len];
            // SAFETY: both buffers hold len bytes and are distinct.
            unsafe { realloc::move_bytes(dst.as_mut_ptr(), zero, src.as_ptr(), len) };
            assert_eq!(&dst[..], &src[..], "len {len}, zero {zero}");
        }
    }
}

// ---------------------------------------------------------------- big, odd and failing requests

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
        // Alignment above what a slot gives.
        for align_log in [28u32, 33, 36] {
            let align = 1usize << align_log;
            let p = s.alloc(lay(100, align));
            assert!(!p.is_null(), "alignment 2^{align_log}");
            assert_eq!(p as usize % align, 0);
            assert!(!range.contains(&(p as usize)));
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
    // SAFETY: nothing is dereferenced but the one live block.
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
    assert_eq!(s.trim(), 0);
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
    assert_eq!(my_slab(), None, "no slab, no attachment");
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
fn the_reservation_is_kept_out_of_core_dumps_and_huge_pages() {
    let s = instance();
    let base = base_of(&s);
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    // The mapping that starts at the base, then its VmFlags line ("dd": do not dump, "nh": no
    // huge pages).
    let start = format!("{base:x}-");
    let entry = smaps
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with(&start))
        .find(|l| l.starts_with("VmFlags"))
        .expect("the reservation is in /proc/self/smaps");
    let flags: Vec<&str> = entry.split_whitespace().collect();
    assert!(flags.contains(&"dd") && flags.contains(&"nh"), "{entry}");
}

#[test]
fn released_slabs_keep_a_bounded_amount_resident() {
    let s = instance();
    let r = res(&s);
    const THREADS: usize = 12;
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let p = s.alloc(lay(8, 8)); // main keeps slab 0
        // Twelve threads alive together (slabs 1-12), each leaving 50 MiB of empty runs when it
        // exits: each slab keeps at most RETAIN_MIN for the next thread, and all of them at most
        // the budget, the highest-numbered ones (the last to be claimed again) cooled first.
        let barrier = std::sync::Barrier::new(THREADS);
        std::thread::scope(|sc| {
            let hs: Vec<_> = (0..THREADS)
                .map(|_| {
                    sc.spawn(|| {
                        let l = lay(256, 8);
                        let blocks: Vec<*mut u8> = (0..200_000).map(|_| s.alloc(l)).collect();
                        for &p in &blocks {
                            p.write_bytes(3, 256);
                        }
                        for p in blocks {
                            s.dealloc(p, l);
                        }
                        barrier.wait();
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        let held: Vec<usize> = (1..=THREADS).map(|i| (*r.slab(i).header()).empty).collect();
        assert!(held.iter().all(|&e| e <= RETAIN_MIN), "{held:?}");
        let total: usize = held.iter().sum();
        assert!(total as u64 <= RELEASED_BUDGET, "{total}: {held:?}");
        assert!(
            total > 0,
            "released slabs keep some for the next thread: {held:?}"
        );
        // Cooled from the top (threads exiting together may race to it, so only roughly): the
        // lowest slab, the first to be claimed again, stays warm.
        assert!(held[0] > 0, "{held:?}");
        assert_eq!(
            r.global().released_empty.load(Ordering::Relaxed),
            total as u64
        );
        // The next thread takes the lowest free slab, a warm one, off the count.
        std::thread::scope(|sc| {
            sc.spawn(|| {
                let q = s.alloc(lay(256, 8));
                assert_eq!(my_slab(), Some(1));
                let count = r.global().released_empty.load(Ordering::Relaxed);
                assert_eq!(count, (total - held[0]) as u64);
                s.dealloc(q, lay(256, 8));
            })
            .join()
            .unwrap();
        });
        s.dealloc(p, lay(8, 8));
    }
}

#[test]
fn a_freed_big_block_counts_as_resident_only_what_was_asked_for() {
    let s = instance();
    let hd = res(&s).slab(0).header();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let keep = s.alloc(lay(8, 8));
        // 9 MiB in a 12 MiB slot, whose run spans 16 MiB: 9 MiB count as resident once empty.
        let size = 9 << 20;
        let p = s.alloc(lay(size, 8));
        assert_eq!(s.usable_size(p), Some(12 << 20));
        p.write_bytes(1, size);
        let before = (*hd).empty;
        s.dealloc(p, lay(size, 8));
        assert_eq!((*hd).empty - before, size);
        // Reusing the run takes exactly that off again.
        let q = s.alloc(lay(size, 8));
        assert_eq!(q, p);
        assert_eq!((*hd).empty, before);
        // A block whose size is not known (a remote free, C's free) counts its whole run.
        std::thread::scope(|sc| {
            let (q, s) = (q as usize, &s);
            sc.spawn(move || s.dealloc(q as *mut u8, lay(size, 8)))
                .join()
                .unwrap();
        });
        // Collected on the owner's next run change: a 64 B block from a fresh run is one.
        let per_run = slots_per_run(12) as usize;
        let small: Vec<*mut u8> = (0..per_run + 1).map(|_| s.alloc(lay(64, 8))).collect();
        assert_eq!((*hd).empty - before, 16 << 20);
        for b in small {
            s.dealloc(b, lay(64, 8));
        }
        s.dealloc(keep, lay(8, 8));
    }
}

#[test]
fn empty_runs_decay_to_the_retained_amount() {
    let s = instance();
    let hd = res(&s).slab(0).header();
    let l = lay(64, 8);
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let blocks: Vec<*mut u8> = (0..(40 << 20) / 64).map(|_| s.alloc(l)).collect();
        for &p in &blocks {
            p.write_bytes(1, 64);
        }
        for p in blocks {
            s.dealloc(p, l);
        }
        let kept = (*hd).empty;
        assert!(kept > RETAIN_MIN, "{kept}");
        // Idle for longer than the decay delay, then run changes now and then: the decay runs on
        // them, a bounded step (PURGE_STEP) at most every DECAY_TICK_MS.
        std::thread::sleep(std::time::Duration::from_millis(1200));
        let l2 = lay(4096, 8);
        let per_run = slots_per_run(24) as usize;
        let start = std::time::Instant::now();
        let mut more = vec![];
        // (The loop's allocations run the decay, which changes the header: read it afresh.)
        while hd.read_volatile().empty > RETAIN_MIN {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(10),
                "{} bytes of empty runs left of {kept}",
                (*hd).empty
            );
            more.extend((0..16 * per_run).map(|_| s.alloc(l2)));
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        // Down to the bounded amount, and no further.
        assert!((*hd).empty >= RETAIN_MIN - (2 << 20), "{}", (*hd).empty);
        for p in more {
            s.dealloc(p, l2);
        }
    }
}

#[test]
fn each_class_keeps_a_spare_run_through_other_phases() {
    let s = instance();
    // SAFETY: blocks are used within their size and freed with their layout.
    unsafe {
        let keep = s.alloc(lay(8, 8));
        // Phase 1: one big block, freed: its run is the only empty run of its class.
        let big = lay(6 << 20, 8);
        let p = s.alloc(big);
        p.write_bytes(1, 6 << 20);
        s.dealloc(p, big);
        assert_eq!(run_state(&s, p), EMPTY);
        // Phase 2: 64 MiB of small blocks, freed: far past the retained amount, so the oldest
        // empty runs are purged, but not the big class's spare.
        let l = lay(64, 8);
        let blocks: Vec<*mut u8> = (0..(64 << 20) / 64).map(|_| s.alloc(l)).collect();
        for &b in &blocks {
            b.write_bytes(2, 64);
        }
        for &b in &blocks {
            s.dealloc(b, l);
        }
        assert_eq!(run_state(&s, blocks[0]), PURGED);
        assert_eq!(run_state(&s, p), EMPTY, "the big class's spare was purged");
        // Back to phase 1: the spare serves, without a page fault.
        assert_eq!(s.alloc(big), p);
        // trim gives spares back too.
        s.dealloc(p, big);
        s.trim();
        assert_eq!(run_state(&s, p), PURGED);
        s.dealloc(keep, lay(8, 8));
    }
}
