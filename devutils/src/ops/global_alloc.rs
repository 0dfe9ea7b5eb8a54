//! The checker of `GlobalAlloc` implementations, on one thread or several.

use core::alloc::{GlobalAlloc, Layout};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use super::model::{Block, Inbox, Shared, Worker, lock};
use super::{Call, Expect, LARGEST_SLOT, MUST_SUCCEED, Op, Stats, Step, Then, expect};

/// The process's global allocator, through [`std::alloc::alloc`] and its siblings: for running
/// ops on whatever `#[global_allocator]` the program has.
#[derive(Clone, Copy, Debug, Default)]
pub struct RustGlobal;

// SAFETY: forwards every call to the global allocator, which upholds the contract.
unsafe impl GlobalAlloc for RustGlobal {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from the caller.
        unsafe { std::alloc::realloc(ptr, layout, new_size) }
    }
}

/// How many bytes a live block can really hold, if the allocator can tell (for smalloc:
/// `|p| unsafe { ALLOC.usable_size(p) }`). The checkers only ask about live blocks.
pub type UsableSize<'a> = dyn Fn(*const u8) -> Option<usize> + Sync + 'a;

/// How the threads of a multi-thread run take turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// One step at a time, in the order of the steps, each on its own thread: the same run
    /// every time, so a failure reproduces and shrinks.
    Lockstep,
    /// Every thread runs its steps as fast as it can, all at once: finds races, but a failure
    /// may not reproduce.
    Concurrent,
}

/// Runs ops through a [`GlobalAlloc`] and checks each result (see the module docs).
pub struct Checker<'a, A: ?Sized> {
    alloc: &'a A,
    usable_size: Option<&'a UsableSize<'a>>,
    budget: usize,
}

/// What the threads of a run share besides the model: the turn (for lockstep), how many are
/// done with their steps, and the first error.
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    /// Whether a thread failed (`state.error` is set), readable without the lock.
    failed: AtomicBool,
}

struct GateState {
    turn: usize,
    done: usize,
    error: Option<String>,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            state: Mutex::new(GateState {
                turn: 0,
                done: 0,
                error: None,
            }),
            changed: Condvar::new(),
            failed: AtomicBool::new(false),
        }
    }

    /// Waits until `ready`; false if a thread failed meanwhile.
    fn wait(&self, ready: impl Fn(&GateState) -> bool) -> bool {
        let mut s = lock(&self.state);
        while s.error.is_none() && !ready(&s) {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        s.error.is_none()
    }

    fn update(&self, f: impl FnOnce(&mut GateState)) {
        f(&mut lock(&self.state));
        self.changed.notify_all();
    }

    fn fail(&self, e: String) {
        self.failed.store(true, Ordering::Relaxed);
        self.update(|s| {
            s.error.get_or_insert(e);
        });
    }
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic".to_string()
    }
}

impl<'a, A: GlobalAlloc + Sync + ?Sized> Checker<'a, A> {
    /// A checker of `alloc`, with a budget of [`MUST_SUCCEED`] live bytes and no usable sizes.
    pub fn new(alloc: &'a A) -> Checker<'a, A> {
        Checker {
            alloc,
            usable_size: None,
            budget: MUST_SUCCEED,
        }
    }

    /// Also checks that every block's usable size, as `usable_size` tells it, is at least the
    /// size asked for, and that usable sizes do not overlap.
    pub fn with_usable_size(mut self, usable_size: &'a UsableSize<'a>) -> Checker<'a, A> {
        self.usable_size = Some(usable_size);
        self
    }

    /// Keeps at most `budget` bytes live: an op that would exceed it is skipped.
    pub fn with_budget(mut self, budget: usize) -> Checker<'a, A> {
        self.budget = budget;
        self
    }

    /// Runs `ops` on the calling thread, then frees every block left. `Op::Send` does its
    /// `then` at once.
    pub fn run(&self, ops: &[Op]) -> Result<Stats, String> {
        let sh = Shared::new(self.budget);
        let mut w = Worker::new(0);
        for (i, op) in ops.iter().enumerate() {
            self.exec(&mut w, &sh, None, op)
                .map_err(|e| format!("step {i}, {op:?}: {e}"))?;
        }
        self.free_all(&mut w, &sh)
            .map_err(|e| format!("freeing the blocks left after the last step: {e}"))?;
        Ok(w.stats)
    }

    /// Runs `steps` on `threads` threads (step `s` on thread `s.thread`), taking turns as
    /// `schedule` says; at the end each thread frees the blocks it holds.
    pub fn run_threads(
        &self,
        threads: usize,
        steps: &[Step],
        schedule: Schedule,
    ) -> Result<Stats, String> {
        assert!(threads >= 1, "a run needs a thread");
        let sh = Shared::new(self.budget);
        let gate = Gate::new();
        let inboxes: Vec<Inbox> = (0..threads).map(|_| Mutex::new(Vec::new())).collect();
        let lockstep = schedule == Schedule::Lockstep;
        let mut total = Stats::default();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (sh, gate, inboxes) = (&sh, &gate, &inboxes);
                    s.spawn(move || {
                        let mut w = Worker::new(t);
                        let body = || -> Result<(), String> {
                            for (i, step) in steps.iter().enumerate() {
                                if step.thread % threads != t {
                                    continue;
                                }
                                // After a failure the allocator may be in any state: stop using it.
                                if lockstep && !gate.wait(|g| g.turn == i)
                                    || gate.failed.load(Ordering::Relaxed)
                                {
                                    return Ok(());
                                }
                                let at = |e| format!("step {i} on thread {t}, {:?}: {e}", step.op);
                                self.drain(&mut w, sh, &inboxes[t]).map_err(at)?;
                                self.exec(&mut w, sh, Some(&inboxes[..]), &step.op)
                                    .map_err(at)?;
                                if lockstep {
                                    gate.update(|g| g.turn = i + 1);
                                }
                            }
                            gate.update(|g| g.done += 1);
                            // Blocks may still arrive until every thread is done; in lockstep the
                            // threads then finish in order.
                            let finish = steps.len() + t;
                            if !gate.wait(|g| g.done == threads && (!lockstep || g.turn == finish))
                            {
                                return Ok(());
                            }
                            let at = |e| format!("thread {t} freeing its blocks at the end: {e}");
                            self.drain(&mut w, sh, &inboxes[t]).map_err(at)?;
                            self.free_all(&mut w, sh).map_err(at)?;
                            if lockstep {
                                gate.update(|g| g.turn = finish + 1);
                            }
                            Ok(())
                        };
                        match catch_unwind(AssertUnwindSafe(body)) {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => gate.fail(e),
                            Err(p) => gate.fail(format!(
                                "thread {t} panicked: {}",
                                panic_message(p.as_ref())
                            )),
                        }
                        w.stats
                    })
                })
                .collect();
            for h in handles {
                total.add(&h.join().expect("panics are caught"));
            }
        });
        match lock(&gate.state).error.take() {
            Some(e) => Err(e),
            None => Ok(total),
        }
    }

    /// Does what the other threads asked of the blocks they handed to this one.
    fn drain(&self, w: &mut Worker, sh: &Shared, inbox: &Inbox) -> Result<(), String> {
        let arrived = std::mem::take(&mut *lock(inbox));
        for (b, then) in arrived {
            if let Some(b) = self
                .then(w, sh, b, then)
                .map_err(|e| format!("a block handed over by another thread: {e}"))?
            {
                w.received.push(b);
            }
        }
        Ok(())
    }

    /// Frees every block the worker holds.
    fn free_all(&self, w: &mut Worker, sh: &Shared) -> Result<(), String> {
        while let Some(b) = w.blocks.pop().or_else(|| w.received.pop()) {
            self.release(w, sh, b)?;
        }
        Ok(())
    }

    /// Executes `op` on the worker's thread; `inboxes` are the threads' in a multi-thread run.
    pub(super) fn exec(
        &self,
        w: &mut Worker,
        sh: &Shared,
        inboxes: Option<&[Inbox]>,
        op: &Op,
    ) -> Result<(), String> {
        match *op {
            Op::Alloc { size, align } => self.obtain(w, sh, size, align, false),
            Op::AllocZeroed { size, align } => self.obtain(w, sh, size, align, true),
            Op::Realloc { index, new_size } => self.realloc_at(w, sh, index, new_size),
            Op::Free { index } => {
                let Some(i) = w.pick(index) else {
                    return Ok(());
                };
                let b = w.blocks.remove(i);
                self.release(w, sh, b)
            }
            Op::Send { index, to, then } => {
                let Some(i) = w.pick(index) else {
                    return Ok(());
                };
                let b = w.blocks.remove(i);
                match inboxes {
                    Some(boxes) if to % boxes.len() != w.me => {
                        b.verify("before it was handed over")?;
                        lock(&boxes[to % boxes.len()]).push((b, then));
                        w.stats.handoffs += 1;
                        Ok(())
                    }
                    _ => {
                        if let Some(b) = self.then(w, sh, b, then)? {
                            w.blocks.push(b);
                        }
                        Ok(())
                    }
                }
            }
            Op::Call(call) => match call {
                Call::Malloc { size } | Call::ReallocNull { size } => {
                    self.obtain(w, sh, size, 1, false)
                }
                Call::Calloc { n, size } => match n.checked_mul(size) {
                    Some(total) => self.obtain(w, sh, total, 1, true),
                    None => {
                        w.stats.skipped += 1;
                        Ok(())
                    }
                },
                Call::Realloc { index, size } => self.realloc_at(w, sh, index, size),
                Call::ReallocArray { index, n, size } => match n.checked_mul(size) {
                    Some(total) => self.realloc_at(w, sh, index, total),
                    None => {
                        w.stats.skipped += 1;
                        Ok(())
                    }
                },
                Call::PosixMemalign { align, size }
                | Call::AlignedAlloc { align, size }
                | Call::Memalign { align, size } => self.obtain(w, sh, size, align, false),
                Call::FreeNull => {
                    w.stats.skipped += 1;
                    Ok(())
                }
            },
        }
    }

    /// What a thread does with a block handed to it; the block afterwards, if still live.
    fn then(
        &self,
        w: &mut Worker,
        sh: &Shared,
        b: Block,
        then: Then,
    ) -> Result<Option<Block>, String> {
        match then {
            Then::Free => self.release(w, sh, b).map(|()| None),
            Then::Realloc { new_size } => self.resize(w, sh, b, new_size),
        }
    }

    /// Checks alignment and usable size of a block just obtained, and records its range.
    fn place(&self, sh: &Shared, b: &mut Block) -> Result<(), String> {
        if !(b.ptr as usize).is_multiple_of(b.align) {
            return Err(format!("{b} is misaligned"));
        }
        if let Some(usable) = self.usable_size {
            match usable(b.ptr) {
                Some(u) if u < b.size => {
                    return Err(format!("{b} has a usable size of only {u}"));
                }
                Some(u) => b.span = u.max(1),
                None => {}
            }
        }
        sh.insert(b)
    }

    /// An allocation of `size` bytes aligned to `align`.
    fn obtain(
        &self,
        w: &mut Worker,
        sh: &Shared,
        size: usize,
        align: usize,
        zeroed: bool,
    ) -> Result<(), String> {
        let Ok(layout) = Layout::from_size_align(size, align) else {
            w.stats.skipped += 1;
            return Ok(());
        };
        if size == 0 {
            w.stats.skipped += 1;
            return Ok(());
        }
        let expect = expect(size, align);
        let budgeted = expect == Expect::Succeed;
        if budgeted && !sh.reserve(size) {
            w.stats.skipped += 1;
            return Ok(());
        }
        // SAFETY: the layout has a non-zero size.
        let p = unsafe {
            if zeroed {
                self.alloc.alloc_zeroed(layout)
            } else {
                self.alloc.alloc(layout)
            }
        };
        let what = if zeroed { "alloc_zeroed" } else { "alloc" };
        if p.is_null() {
            if budgeted {
                sh.unreserve(size);
            }
            if expect == Expect::Succeed {
                return Err(format!("{what} returned null"));
            }
            w.stats.refused += 1;
            return Ok(());
        }
        if expect == Expect::Fail {
            return Err(format!("{what} of an impossible size returned {p:?}"));
        }
        let mut b = Block {
            ptr: p,
            size,
            len: size,
            align,
            span: size,
            seed: 0,
            budgeted,
        };
        self.place(sh, &mut b)?;
        if zeroed {
            b.check_zeroed()?;
            w.stats.zeroed += 1;
        }
        b.fill(w.seed());
        w.stats.allocs += 1;
        if size > LARGEST_SLOT {
            w.stats.direct += 1;
        }
        if expect == Expect::Either {
            return self.release(w, sh, b);
        }
        w.blocks.push(b);
        Ok(())
    }

    /// Resizes block `index` of the worker.
    fn realloc_at(
        &self,
        w: &mut Worker,
        sh: &Shared,
        index: usize,
        new_size: usize,
    ) -> Result<(), String> {
        let Some(i) = w.pick(index) else {
            return Ok(());
        };
        let b = w.blocks.remove(i);
        if let Some(b) = self.resize(w, sh, b, new_size)? {
            w.blocks.insert(i, b);
        }
        Ok(())
    }

    /// Resizes `b` to `new_size` bytes; the block after that, if it is still live.
    fn resize(
        &self,
        w: &mut Worker,
        sh: &Shared,
        b: Block,
        new_size: usize,
    ) -> Result<Option<Block>, String> {
        // GlobalAlloc::realloc takes non-zero sizes that fit isize once rounded to the alignment.
        if new_size == 0 || Layout::from_size_align(new_size, b.align).is_err() {
            w.stats.skipped += 1;
            return Ok(Some(b));
        }
        b.verify("before realloc")?;
        let expect = expect(new_size, b.align);
        let budgeted = expect == Expect::Succeed;
        if budgeted && !sh.reserve(new_size) {
            w.stats.skipped += 1;
            return Ok(Some(b));
        }
        sh.remove(&b);
        // SAFETY: the block is live with this layout (it was valid when allocated).
        let layout = unsafe { Layout::from_size_align_unchecked(b.size, b.align) };
        // SAFETY: b is live and was allocated with `layout`; new_size is non-zero and fits isize
        // once rounded up to the alignment.
        let q = unsafe { self.alloc.realloc(b.ptr, layout, new_size) };
        if q.is_null() {
            if budgeted {
                sh.unreserve(new_size);
            }
            if expect == Expect::Succeed {
                return Err(format!("realloc of {b} to {new_size} bytes returned null"));
            }
            w.stats.refused += 1;
            sh.insert(&b)?;
            b.verify("after a realloc that failed")?;
            return Ok(Some(b));
        }
        if expect == Expect::Fail {
            return Err(format!(
                "realloc of {b} to an impossible {new_size} bytes returned {q:?}"
            ));
        }
        if b.budgeted {
            sh.unreserve(b.size);
        }
        let mut nb = Block {
            ptr: q,
            size: new_size,
            len: new_size,
            align: b.align,
            span: new_size,
            seed: 0,
            budgeted,
        };
        self.place(sh, &mut nb)
            .map_err(|e| format!("realloc of {b} to {new_size} bytes gave {e}"))?;
        b.check_kept(q, b.len.min(new_size))?;
        nb.fill(w.seed());
        w.stats.reallocs += 1;
        if new_size > LARGEST_SLOT {
            w.stats.direct += 1;
        }
        if expect == Expect::Either {
            self.release(w, sh, nb)?;
            return Ok(None);
        }
        Ok(Some(nb))
    }

    /// Checks and frees `b`.
    fn release(&self, w: &mut Worker, sh: &Shared, b: Block) -> Result<(), String> {
        b.verify("before it was freed")?;
        sh.remove(&b);
        if b.budgeted {
            sh.unreserve(b.size);
        }
        // SAFETY: b is live and was allocated with this (valid) layout; it is not used again.
        unsafe {
            self.alloc
                .dealloc(b.ptr, Layout::from_size_align_unchecked(b.size, b.align))
        };
        w.stats.frees += 1;
        Ok(())
    }
}
