//! Models of the concurrent pieces, checked by loom against every interleaving and every outcome
//! the memory model allows: the remote list, the inbox, the shared lists and the hand-over of a
//! slab from one owner to the next.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p smalloc-core --release --lib loom_tests`. Block
//! contents and owner-only state live in loom's `UnsafeCell`s, so loom also reports any access to
//! them that is not ordered after the access of the previous owner (a data race).

use core::sync::atomic::Ordering;
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::sync::atomic::AtomicU64;
use loom::thread;

use crate::ownership;
use crate::remote::{self, Inbox};
use crate::shared::{self, Pop, SlotState};

crate::sync::forward_atomic64!(loom::sync::atomic::AtomicU64);

/// Four blocks, numbered 1-4 (zero ends a list): a link word and a payload each, both plain
/// memory.
struct Blocks {
    link: [UnsafeCell<u64>; 5],
    data: [UnsafeCell<u64>; 5],
}

impl Blocks {
    fn new() -> Blocks {
        Blocks {
            link: core::array::from_fn(|_| UnsafeCell::new(0)),
            data: core::array::from_fn(|_| UnsafeCell::new(0)),
        }
    }
    // SAFETY (these four): loom's cell checks the access itself; the models give each word one
    // writer at a time, and loom fails the model if they do not.
    fn set_link(&self, b: u64, next: u64) {
        self.link[b as usize].with_mut(|p| unsafe { *p = next });
    }
    fn link(&self, b: u64) -> u64 {
        self.link[b as usize].with(|p| unsafe { *p })
    }
    fn write(&self, b: u64, v: u64) {
        self.data[b as usize].with_mut(|p| unsafe { *p = v });
    }
    fn read(&self, b: u64) -> u64 {
        self.data[b as usize].with(|p| unsafe { *p })
    }
}

#[test]
fn remote_list_pushes_race_with_the_owners_take() {
    loom::model(|| {
        let head = Arc::new(AtomicU64::new(0));
        let blocks = Arc::new(Blocks::new());
        let pushers: Vec<_> = [(1u64, 2u64), (3, 4)]
            .into_iter()
            .map(|(a, b)| {
                let (head, blocks) = (head.clone(), blocks.clone());
                thread::spawn(move || {
                    // The freeing thread wrote the blocks before freeing them.
                    blocks.write(a, a * 10);
                    blocks.write(b, b * 10);
                    blocks.set_link(a, b);
                    remote::push_chain(&*head, a, b, |x, n| blocks.set_link(x, n));
                })
            })
            .collect();
        let mut got = vec![];
        let take = |got: &mut Vec<u64>| {
            let mut p = remote::take_all(&*head);
            while p != 0 {
                assert_eq!(blocks.read(p), p * 10);
                got.push(p);
                p = blocks.link(p);
            }
        };
        // The owner takes while the pushers push (yielding lets them run in between)...
        take(&mut got);
        thread::yield_now();
        take(&mut got);
        for p in pushers {
            p.join().unwrap();
        }
        // ...and after: every block arrived exactly once.
        take(&mut got);
        got.sort();
        assert_eq!(got, [1, 2, 3, 4]);
    });
}

#[test]
fn inbox_writers_race_with_the_owner_and_wrap_around() {
    loom::model(|| {
        // Two entries for three blocks: the ring wraps, and a writer that finds it full hands its
        // block over another way (in the allocator, the remote list), as the model records.
        let tail = Arc::new(AtomicU64::new(0));
        let head = Arc::new(AtomicU64::new(0));
        let entries = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
        let blocks = Arc::new(Blocks::new());
        let writers: Vec<_> = [vec![1u64, 2], vec![3]]
            .into_iter()
            .map(|ptrs| {
                let (tail, head, entries, blocks) =
                    (tail.clone(), head.clone(), entries.clone(), blocks.clone());
                thread::spawn(move || {
                    let inbox = Inbox {
                        tail: &*tail,
                        head: &*head,
                        entry: |i: u64| &entries[(i % 2) as usize],
                        len: 2,
                    };
                    let mut refused = vec![];
                    for p in ptrs {
                        blocks.write(p, p * 10);
                        if !inbox.push(&[p]) {
                            refused.push(p);
                        }
                    }
                    refused
                })
            })
            .collect();
        let inbox = Inbox {
            tail: &*tail,
            head: &*head,
            entry: |i: u64| &entries[(i % 2) as usize],
            len: 2,
        };
        let mut got = vec![];
        let take = |got: &mut Vec<u64>| {
            inbox.take(
                |_| {},
                |p| {
                    assert_eq!(blocks.read(p), p * 10);
                    got.push(p);
                },
            )
        };
        // The owner takes while the writers write (yielding lets them run in between)...
        take(&mut got);
        thread::yield_now();
        take(&mut got);
        let mut refused = vec![];
        for w in writers {
            refused.extend(w.join().unwrap());
        }
        // ...and after: every block arrived exactly once, through the inbox or around it.
        take(&mut got);
        got.extend(refused);
        got.sort();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn shared_list_never_hands_a_slot_to_two_threads() {
    loom::model(|| {
        // Three usable slots (0-2) and the sentinel (3), all fresh.
        let head = Arc::new(AtomicU64::new(0));
        let links = Arc::new([
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
            AtomicU64::new(0),
        ]);
        let blocks = Arc::new(Blocks::new());
        let users: Vec<_> = (0..2u64)
            .map(|t| {
                let (head, links, blocks) = (head.clone(), links.clone(), blocks.clone());
                thread::spawn(move || {
                    let slot = loop {
                        match shared::try_pop(&*head, 3, |n| &links[n as usize]) {
                            Pop::Got(s, _) => break s,
                            Pop::Empty => panic!("three slots, two threads"),
                            Pop::Collision => thread::yield_now(),
                        }
                    };
                    // Owning the slot: plain writes, which loom checks for races.
                    blocks.write(slot as u64 + 1, t);
                    assert_eq!(blocks.read(slot as u64 + 1), t);
                    shared::push(&*head, &links[slot as usize], slot, SlotState::Dirty);
                })
            })
            .collect();
        for u in users {
            u.join().unwrap();
        }
        let mut got = vec![];
        while let Pop::Got(s, _) = shared::try_pop(&*head, 3, |n| &links[n as usize]) {
            got.push(s);
        }
        got.sort();
        assert_eq!(got, [0, 1, 2]);
    });
}

#[test]
fn a_slab_passes_whole_from_one_owner_to_the_next() {
    loom::model(|| {
        let bitmap = Arc::new([AtomicU64::new(0)]);
        // The slab's owner-only state: plain memory.
        let state = Arc::new(UnsafeCell::new(0u64));
        let owners: Vec<_> = (0..2)
            .map(|_| {
                let (bitmap, state) = (bitmap.clone(), state.clone());
                thread::spawn(move || {
                    loop {
                        if let Some(s) = ownership::claim(&*bitmap, 1) {
                            assert_eq!(s, 0);
                            // SAFETY: the claimed slab's state is this thread's alone; loom
                            // reports a racing access.
                            state.with_mut(|p| unsafe { *p += 1 });
                            ownership::release(&*bitmap, s);
                            return;
                        }
                        thread::yield_now();
                    }
                })
            })
            .collect();
        for o in owners {
            o.join().unwrap();
        }
        // SAFETY: both owners have been joined.
        assert_eq!(state.with(|p| unsafe { *p }), 2);
        assert_eq!(bitmap[0].load(Ordering::Relaxed), 0);
    });
}
