//! proptest strategies: random bytes through [`Op::decode`], so that they make exactly the ops
//! the fuzz targets decode, and shrink towards small sizes, alignments and indices.

use std::fmt;

use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;

use super::{OP_BYTES, Op, Step};

/// One op.
pub fn op() -> impl Strategy<Value = Op> {
    any::<[u8; OP_BYTES]>().prop_map(|b| Op::decode(&b))
}

/// Up to `max_len` ops.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    Seq {
        decode: |b, _| Op::decode(b),
        threads: 1,
        max_len,
    }
}

/// Up to `max_len` steps for `threads` threads.
pub fn steps(threads: usize, max_len: usize) -> impl Strategy<Value = Vec<Step>> {
    Seq {
        decode: Step::decode,
        threads,
        max_len,
    }
}

/// The property tests' configuration: `cases` cases unless the environment variable
/// `PROPTEST_CASES` says otherwise; shrinking for as long as it makes progress (within two
/// minutes); and no files of failing cases written into the source tree (a failure prints its
/// shrunk sequence of ops, to be kept as a test of its own).
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // The default is 4 per case: too few to shrink 64 ops of 8 bytes each. Shrinking a
        // failure takes seconds; the time limit is for failures that do not reproduce reliably
        // (races), whose shrinking can wander.
        max_shrink_iters: 100_000,
        max_shrink_time: 120_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Sequences of up to `max_len` elements, each decoded from [`OP_BYTES`] random bytes, that
/// shrink to a minimal failing sequence.
///
/// proptest's `collection::vec` tries deleting each element once, then shrinks each element
/// once, and stops: an op that was needed before its neighbours shrank stays in the sequence,
/// and an index that had to be 2 among three blocks stays 2 among one. This strategy shrinks the
/// bytes itself, so that it can search them again, and repeats its passes for as long as any
/// made progress: delete each element (and if that passes, delete it while lowering by one the
/// block index of every later op of its thread, which keeps those ops on the same blocks when
/// the element was an allocation before theirs); bring each byte of each element down by a
/// binary search towards 0; then delete pairs of elements (an allocation and the free that
/// undoes it), and try every byte at each value below 16 (the decoder reads most bytes modulo a
/// small number, which a binary search does not see through: index 48 among 7 blocks is index
/// 6). No element of the result, and no two, can be removed, and no byte can take a value below
/// 16 that is lower than its own.
#[derive(Debug)]
struct Seq<T> {
    decode: fn(&[u8; OP_BYTES], usize) -> T,
    threads: usize,
    max_len: usize,
}

impl<T: fmt::Debug> Strategy for Seq<T> {
    type Tree = SeqTree<T>;
    type Value = Vec<T>;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let len = (0..=self.max_len).new_tree(runner)?.current();
        let bytes = any::<[u8; OP_BYTES]>();
        let elements = (0..len)
            .map(|_| bytes.new_tree(runner).map(|t| t.current()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SeqTree {
            decode: self.decode,
            threads: self.threads,
            included: vec![true; len],
            elements,
            pass: Pass::Delete(0, false),
            bounds: None,
            last: None,
            progress: false,
            shifted: Vec::new(),
        })
    }
}

/// Values below this are tried one by one for every byte, once the rest has converged.
const SMALL: u8 = 16;

/// Where the shrinking of a [`Seq`] is: the next candidate change.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// Deleting the element at this position or the next included one; with `true`, while
    /// lowering the later block indices of its thread.
    Delete(usize, bool),
    /// Lowering byte `.1` of element `.0` by a binary search.
    Byte(usize, usize),
    /// Deleting pairs of elements, at these positions or after.
    Pair(usize, usize),
    /// Setting byte `.1` of element `.0` to `.2`, or the next value below [`SMALL`].
    Small(usize, usize, u8),
    /// Nothing left to try.
    Done,
}

/// A change being tried: the runner keeps it (by calling `simplify`, as the value still fails)
/// or rejects it (by calling `complicate`).
#[derive(Clone, Copy, Debug)]
enum Change {
    Delete(usize),
    /// A deletion, and the elements whose block index byte went down by one.
    DeleteShift(usize),
    Byte(usize, usize),
    Pair(usize, usize),
    Small(usize, usize),
}

struct SeqTree<T> {
    decode: fn(&[u8; OP_BYTES], usize) -> T,
    threads: usize,
    elements: Vec<[u8; OP_BYTES]>,
    included: Vec<bool>,
    pass: Pass,
    /// For the byte being searched: the lowest value not yet ruled out, and the lowest known to
    /// fail (which the byte goes back to when a try passes).
    bounds: Option<(u8, u8)>,
    last: Option<Change>,
    /// Whether a change was kept since the deletion pass began.
    progress: bool,
    /// The elements whose index a [`Change::DeleteShift`] lowered.
    shifted: Vec<usize>,
}

/// The byte of an op that holds its block index (see [`Op::decode`]).
const INDEX: usize = 5;
/// The byte of a step that holds its thread (see [`Step::decode`]).
const THREAD: usize = 6;

impl<T> SeqTree<T> {
    /// The thread of element `i`.
    fn thread(&self, i: usize) -> usize {
        self.elements[i][THREAD] as usize % self.threads.max(1)
    }

    /// The runner kept `change`.
    fn keep(&mut self, change: Change) {
        self.progress = true;
        match change {
            Change::Byte(i, k) => {
                if let Some((_, hi)) = &mut self.bounds {
                    *hi = self.elements[i][k];
                }
            }
            Change::Small(i, k) => {
                // The lowest value that fails: on to the next byte.
                self.bounds = None;
                self.pass = Pass::Small(i, k + 1, 0);
            }
            Change::Delete(i) | Change::DeleteShift(i) => self.pass = Pass::Delete(i + 1, false),
            Change::Pair(..) => {}
        }
    }

    /// The runner rejected `change`: undo it.
    fn undo(&mut self, change: Change) {
        match change {
            Change::Delete(i) => {
                self.included[i] = true;
                // Try again, lowering the indices after it.
                self.pass = Pass::Delete(i, true);
            }
            Change::DeleteShift(i) => {
                self.included[i] = true;
                for &j in &self.shifted {
                    self.elements[j][INDEX] += 1;
                }
                self.pass = Pass::Delete(i + 1, false);
            }
            Change::Pair(a, b) => {
                self.included[a] = true;
                self.included[b] = true;
            }
            Change::Byte(i, k) => {
                if let Some((lo, hi)) = &mut self.bounds {
                    *lo = self.elements[i][k] + 1;
                    self.elements[i][k] = *hi;
                }
            }
            Change::Small(i, k) => {
                if let (Some((_, hi)), Pass::Small(_, _, v)) = (self.bounds, &mut self.pass) {
                    self.elements[i][k] = hi;
                    *v += 1;
                }
            }
        }
    }

    /// Makes the next candidate change; false when there is none left (the value is then the
    /// smallest failing one found).
    fn advance(&mut self) -> bool {
        let n = self.elements.len();
        loop {
            match self.pass {
                Pass::Delete(from, shift) => match (from..n).find(|&i| self.included[i]) {
                    Some(i) if !shift => {
                        self.included[i] = false;
                        self.last = Some(Change::Delete(i));
                        return true;
                    }
                    Some(i) => {
                        let thread = self.thread(i);
                        self.shifted = (i + 1..n)
                            .filter(|&j| self.included[j] && self.thread(j) == thread)
                            .filter(|&j| self.elements[j][INDEX] > 0)
                            .collect();
                        if self.shifted.is_empty() {
                            self.pass = Pass::Delete(i + 1, false);
                            continue;
                        }
                        for &j in &self.shifted {
                            self.elements[j][INDEX] -= 1;
                        }
                        self.included[i] = false;
                        self.last = Some(Change::DeleteShift(i));
                        return true;
                    }
                    None => self.pass = Pass::Byte(0, 0),
                },
                Pass::Byte(i, _) if i >= n => {
                    self.pass = if std::mem::take(&mut self.progress) {
                        Pass::Delete(0, false)
                    } else {
                        Pass::Pair(0, 1)
                    };
                }
                Pass::Byte(i, k) if k >= OP_BYTES || !self.included[i] => {
                    self.pass = Pass::Byte(i + 1, 0);
                }
                Pass::Byte(i, k) => {
                    let (lo, hi) = *self.bounds.get_or_insert((0, self.elements[i][k]));
                    if lo >= hi {
                        self.bounds = None;
                        self.pass = Pass::Byte(i, k + 1);
                        continue;
                    }
                    self.elements[i][k] = lo + (hi - lo) / 2;
                    self.last = Some(Change::Byte(i, k));
                    return true;
                }
                Pass::Pair(i, j) => {
                    let keep = &self.included;
                    let next = (i..n)
                        .flat_map(|a| (if a == i { j } else { a + 1 }..n).map(move |b| (a, b)))
                        .find(|&(a, b)| keep[a] && keep[b]);
                    match next {
                        Some((a, b)) => {
                            self.included[a] = false;
                            self.included[b] = false;
                            self.pass = Pass::Pair(a, b + 1);
                            self.last = Some(Change::Pair(a, b));
                            return true;
                        }
                        None if std::mem::take(&mut self.progress) => {
                            self.pass = Pass::Delete(0, false);
                        }
                        None => self.pass = Pass::Small(0, 0, 0),
                    }
                }
                Pass::Small(i, _, _) if i >= n => {
                    if !std::mem::take(&mut self.progress) {
                        self.pass = Pass::Done;
                        return false;
                    }
                    self.pass = Pass::Delete(0, false);
                }
                Pass::Small(i, k, _) if k >= OP_BYTES || !self.included[i] => {
                    self.pass = Pass::Small(i + 1, 0, 0);
                }
                Pass::Small(i, k, v) => {
                    let (_, hi) = *self.bounds.get_or_insert((0, self.elements[i][k]));
                    if v >= hi.min(SMALL) {
                        self.bounds = None;
                        self.pass = Pass::Small(i, k + 1, 0);
                        continue;
                    }
                    self.elements[i][k] = v;
                    self.last = Some(Change::Small(i, k));
                    return true;
                }
                Pass::Done => return false,
            }
        }
    }
}

impl<T: fmt::Debug> ValueTree for SeqTree<T> {
    type Value = Vec<T>;

    fn current(&self) -> Vec<T> {
        self.elements
            .iter()
            .zip(&self.included)
            .filter(|(_, keep)| **keep)
            .map(|(e, _)| (self.decode)(e, self.threads))
            .collect()
    }

    fn simplify(&mut self) -> bool {
        if let Some(change) = self.last.take() {
            self.keep(change);
        }
        self.advance()
    }

    fn complicate(&mut self) -> bool {
        // Rather than going back to the last failing value to have it run again, go straight on
        // to the next candidate: the runner only needs each value it tests to be no bigger than
        // the last failing one, and stops when this returns false (the value is then that one).
        match self.last.take() {
            Some(change) => {
                self.undo(change);
                self.advance()
            }
            None => false,
        }
    }
}
