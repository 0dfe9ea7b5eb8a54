//! `icount`: counts the user-space instructions a program executes, exactly, by single-stepping it
//! under `ptrace` (Linux only).
//!
//! Why: `valgrind` cannot run smalloc's real paths, because valgrind gives its guest far less
//! address space than the 32 TiB smalloc reserves, so under valgrind smalloc falls back to the
//! system allocator. Single-stepping the native process has no such limit, and like callgrind it is
//! deterministic: the same binary and arguments give the same count on a busy or idle machine.
//!
//! ```text
//! cargo run --release -p devutils --bin icount -- PROGRAM [ARGS...]
//! ```
//!
//! Prints the count on stderr as `instructions: N`. It is slow (one trap per instruction, about a
//! million instructions a second), so count short runs and take the difference between two
//! iteration counts to cancel start-up cost.

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn main() {
    use std::ffi::CString;
    let args: Vec<CString> = std::env::args()
        .skip(1)
        .map(|a| CString::new(a).expect("argument contains a NUL byte"))
        .collect();
    if args.is_empty() {
        eprintln!("usage: icount PROGRAM [ARGS...]");
        std::process::exit(2);
    }
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());

    // SAFETY: fork has no preconditions here (single-threaded so far); the child only calls
    // async-signal-safe functions (ptrace, execvp, _exit) before exec.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: PTRACE_TRACEME takes no pointers; argv is a NUL-terminated array of C strings
        // that outlives the call.
        unsafe {
            libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
            libc::execvp(argv[0], argv.as_ptr());
            libc::_exit(127);
        }
    }
    assert!(pid > 0, "fork failed");
    let mut status = 0;
    let mut count: u64 = 0;
    // SAFETY: waitpid/ptrace are called on our own traced child with valid pointers.
    unsafe {
        // The child stops with SIGTRAP right after exec.
        libc::waitpid(pid, &mut status, 0);
        loop {
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                break;
            }
            // Pass through any signal other than our own single-step trap.
            let sig = if libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) != libc::SIGTRAP {
                libc::WSTOPSIG(status)
            } else {
                0
            };
            libc::ptrace(libc::PTRACE_SINGLESTEP, pid, 0, sig);
            libc::waitpid(pid, &mut status, 0);
            count += 1;
        }
    }
    eprintln!("instructions: {count}");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    std::process::exit(code);
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    eprintln!("icount needs ptrace single-stepping on x86_64 Linux");
    std::process::exit(2);
}
