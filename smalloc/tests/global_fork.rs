//! `fork()` in a multi-threaded program: the child allocates and frees normally, even though
//! other threads were in the middle of allocating when the process was copied (smalloc holds no
//! locks a vanished thread could keep held). The child frees blocks that the vanished threads
//! allocated (remote frees into slabs whose owners do not exist in the child) and starts threads
//! of its own, which claim slabs.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use devutils::{Block, Churn};
use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

#[test]
fn child_of_a_busy_multithreaded_process_allocates() {
    let stop = Arc::new(AtomicBool::new(false));
    let (gift_tx, gift_rx) = std::sync::mpsc::channel::<Block>();
    let busy: Vec<_> = (0..6)
        .map(|t| {
            let stop = Arc::clone(&stop);
            let gift_tx = gift_tx.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    let l = std::alloc::Layout::from_size_align(16 + i * 13, 8).unwrap();
                    gift_tx
                        .send(Block::new(l, t << 8 | i as u64, false))
                        .unwrap();
                }
                drop(gift_tx);
                let mut c = Churn::new(t, 12);
                while !stop.load(Ordering::Relaxed) {
                    c.run(1_000, 100);
                }
                c.finish();
            })
        })
        .collect();
    drop(gift_tx);
    let mut gifts: Vec<Block> = gift_rx.iter().take(600).collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    for round in 0..8 {
        // SAFETY: fork is sound to call; the child only uses the allocator and then _exits
        // without running any of the parent's destructors or atexit handlers.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let inherited = std::mem::take(&mut gifts);
            let ok = std::panic::catch_unwind(move || {
                // Blocks of the parent's other threads, which do not exist here.
                for b in inherited {
                    b.free();
                }
                let mut c = Churn::new(1000 + round, 16);
                c.run(20_000, 300);
                c.finish();
                // Threads in the child, too, handing blocks back to the child's main thread.
                let (tx, rx) = std::sync::mpsc::channel::<Block>();
                let ts: Vec<_> = (0..4)
                    .map(|t| {
                        let tx = tx.clone();
                        std::thread::spawn(move || {
                            let mut c = Churn::new(2000 + t, 14);
                            c.run(5_000, 200);
                            for i in 0..100 {
                                let l = std::alloc::Layout::from_size_align(8 + i, 8).unwrap();
                                tx.send(Block::new(l, t << 8 | i as u64, true)).unwrap();
                            }
                            c.finish();
                        })
                    })
                    .collect();
                drop(tx);
                let got: Vec<Block> = rx.iter().collect();
                ts.into_iter().for_each(|h| h.join().unwrap());
                let n = got.len();
                got.into_iter().for_each(Block::free);
                n == 400
            });
            // SAFETY: _exit ends the child immediately, which is what a forked child should do.
            unsafe { libc::_exit(if matches!(ok, Ok(true)) { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waiting on our own child with a valid status pointer.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(waited, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child {round} failed with status {status:#x}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    busy.into_iter().for_each(|h| h.join().unwrap());
    gifts.into_iter().for_each(Block::free);
}
