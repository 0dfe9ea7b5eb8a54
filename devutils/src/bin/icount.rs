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
//! Prints the count on stderr as `instructions: N`. It is slow (one trap per instruction, about
//! fifty thousand instructions a second here), so count short runs and take the difference
//! between two iteration counts to cancel start-up cost.
//!
//! Code in the vDSO (the kernel's user-space `clock_gettime` and friends) runs at full speed and
//! is not counted: its consistency loop retries a varying number of times when single-stepped,
//! which would make the count of a program that reads the clock differ from run to run. Address
//! randomization is turned off for the child, for the same reason. What remains varies by a few
//! dozen instructions from run to run (a program's start-up is not perfectly repeatable), which
//! a difference over ten thousand iterations makes negligible.

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
        // SAFETY: personality and PTRACE_TRACEME take no pointers; argv is a NUL-terminated array
        // of C strings that outlives the call.
        unsafe {
            // Same addresses every run: where things land changes which paths some code takes.
            libc::personality(libc::ADDR_NO_RANDOMIZE as libc::c_ulong);
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
        // The child stops with SIGTRAP right after exec; its vDSO is mapped by then.
        libc::waitpid(pid, &mut status, 0);
        let vdso = vdso_range(pid);
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
            if let Some((lo, hi)) = vdso {
                let rip = user_reg(pid, RIP);
                if libc::WIFSTOPPED(status) && (lo..hi).contains(&rip) {
                    // Just called into the vDSO: the return address is on top of the stack.
                    let ret = peek(pid, user_reg(pid, RSP));
                    run_to(pid, ret, &mut status);
                }
            }
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

/// Offsets of registers in `struct user_regs_struct`, in words.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const RIP: usize = 16;
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
const RSP: usize = 19;

/// A register of the stopped child.
///
/// # Safety
/// `pid` must be a child stopped under our ptrace.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn user_reg(pid: libc::pid_t, index: usize) -> u64 {
    // SAFETY: PEEKUSER reads one word of the child's register area at a valid offset.
    unsafe { libc::ptrace(libc::PTRACE_PEEKUSER, pid, index * 8, 0) as u64 }
}

/// The word at `addr` in the stopped child.
///
/// # Safety
/// `pid` must be a child stopped under our ptrace.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn peek(pid: libc::pid_t, addr: u64) -> u64 {
    // SAFETY: PEEKDATA reads the child's memory; a bad address yields an error value, not UB.
    unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, pid, addr, 0) as u64 }
}

/// Lets the stopped child run at full speed until it reaches `addr`, with a temporary `int3`.
///
/// # Safety
/// `pid` must be a child stopped under our ptrace; `addr` an instruction it will reach.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
unsafe fn run_to(pid: libc::pid_t, addr: u64, status: &mut libc::c_int) {
    // SAFETY: POKEDATA/POKEUSER write the child's memory and registers, which it cannot observe
    // while stopped; the original word is restored before it runs on.
    unsafe {
        let orig = peek(pid, addr);
        libc::ptrace(libc::PTRACE_POKEDATA, pid, addr, (orig & !0xFF) | 0xCC);
        libc::ptrace(libc::PTRACE_CONT, pid, 0, 0);
        libc::waitpid(pid, status, 0);
        libc::ptrace(libc::PTRACE_POKEDATA, pid, addr, orig);
        if libc::WIFSTOPPED(*status) && user_reg(pid, RIP) == addr + 1 {
            // Back up over the int3, as if the breakpoint had never been there.
            libc::ptrace(libc::PTRACE_POKEUSER, pid, RIP * 8, addr);
        }
    }
}

/// The address range of the child's vDSO, from `/proc/PID/maps`.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn vdso_range(pid: libc::pid_t) -> Option<(u64, u64)> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    let line = maps.lines().find(|l| l.ends_with("[vdso]"))?;
    let (lo, hi) = line.split_whitespace().next()?.split_once('-')?;
    Some((
        u64::from_str_radix(lo, 16).ok()?,
        u64::from_str_radix(hi, 16).ok()?,
    ))
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
fn main() {
    eprintln!("icount needs ptrace single-stepping on x86_64 Linux");
    std::process::exit(2);
}
