//! `fork()` in a multi-threaded program: the child allocates and frees normally, even though
//! other threads were in the middle of allocating when the process was copied (smalloc holds no
//! locks a vanished thread could keep held).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use devutils::Churn;
use smalloc::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

#[test]
fn child_of_a_busy_multithreaded_process_allocates() {
    let stop = Arc::new(AtomicBool::new(false));
    let busy: Vec<_> = (0..6)
        .map(|t| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut c = Churn::new(t, 12);
                while !stop.load(Ordering::Relaxed) {
                    c.run(1_000, 100);
                }
                c.finish();
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(50));
    for round in 0..8 {
        // SAFETY: fork is sound to call; the child only uses the allocator and then _exits
        // without running any of the parent's destructors or atexit handlers.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(|| {
                let mut c = Churn::new(1000 + round, 16);
                c.run(20_000, 300);
                c.finish();
                // A thread in the child, too.
                std::thread::spawn(|| {
                    let v: Vec<String> = (0..10_000).map(|i| i.to_string()).collect();
                    v.len()
                })
                .join()
                .unwrap()
                    == 10_000
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
}
