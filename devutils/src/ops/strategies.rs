//! proptest strategies: random bytes through [`Op::decode`], so that they make exactly the ops
//! the fuzz targets decode, and shrink towards small sizes, alignments and indices.

use super::{OP_BYTES, Op, Step};
use proptest::prelude::*;
use proptest::strategy::{NewTree, ValueTree};
use proptest::test_runner::TestRunner;

/// One op.
pub fn op() -> impl Strategy<Value = Op> {
    any::<[u8; OP_BYTES]>().prop_map(|b| Op::decode(&b))
}

/// Up to `max_len` ops.
pub fn ops(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    Seq {
        element: op(),
        max_len,
    }
}

/// Up to `max_len` steps for `threads` threads.
pub fn steps(threads: usize, max_len: usize) -> impl Strategy<Value = Vec<Step>> {
    Seq {
        element: any::<[u8; OP_BYTES]>().prop_map(move |b| Step::decode(&b, threads)),
        max_len,
    }
}

/// The property tests' configuration: `cases` cases unless the environment variable
/// `PROPTEST_CASES` says otherwise; shrinking for as long as it makes progress; and no files
/// of failing cases written into the source tree (a failure prints its shrunk sequence of
/// ops, to be kept as a test of its own).
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        // The default is 4 per case: too few to shrink 64 ops of 8 bytes each.
        max_shrink_iters: 100_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Sequences of up to `max_len` elements that shrink to a minimal failing sequence.
///
/// proptest's `collection::vec` tries deleting each element once, then shrinks the
/// elements, and stops: an op that was needed before its neighbours shrank stays in the
/// sequence even when it is needed no longer. This strategy repeats the two passes for as
/// long as either made progress, then tries deleting pairs of elements (an allocation and
/// the free that undoes it; the result is short by then), and starts over if that helped.
/// No op of the result, and no two, can be removed.
#[derive(Debug)]
struct Seq<S> {
    element: S,
    max_len: usize,
}

impl<S: Strategy> Strategy for Seq<S> {
    type Tree = SeqTree<S::Tree>;
    type Value = Vec<S::Value>;

    fn new_tree(&self, runner: &mut TestRunner) -> NewTree<Self> {
        let len = (0..=self.max_len).new_tree(runner)?.current();
        let elements = (0..len)
            .map(|_| self.element.new_tree(runner))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SeqTree {
            included: vec![true; len],
            elements,
            pass: Pass::Delete(0),
            last: None,
            progress: false,
        })
    }
}

/// Where the shrinking of a [`Seq`] is.
#[derive(Clone, Copy, Debug)]
enum Pass {
    /// Deleting elements, the next candidate at this position.
    Delete(usize),
    /// Shrinking the element at this position.
    Shrink(usize),
    /// Deleting pairs of elements, the next candidate at these positions or after.
    Pair(usize, usize),
    /// Nothing left to try.
    Done,
}

#[derive(Debug)]
struct SeqTree<T> {
    elements: Vec<T>,
    included: Vec<bool>,
    pass: Pass,
    /// The last change, until the runner keeps it (another `simplify`) or undoes it.
    last: Option<Pass>,
    /// Whether the runner kept a change since the deletion pass began.
    progress: bool,
}

impl<T: ValueTree> ValueTree for SeqTree<T> {
    type Value = Vec<T::Value>;

    fn current(&self) -> Self::Value {
        self.elements
            .iter()
            .zip(&self.included)
            .filter(|(_, keep)| **keep)
            .map(|(e, _)| e.current())
            .collect()
    }

    fn simplify(&mut self) -> bool {
        // Being asked to simplify again means the last change still fails: keep it.
        if self.last.take().is_some() {
            self.progress = true;
        }
        loop {
            match self.pass {
                Pass::Delete(from) => {
                    match (from..self.elements.len()).find(|&i| self.included[i]) {
                        Some(i) => {
                            self.included[i] = false;
                            self.pass = Pass::Delete(i + 1);
                            self.last = Some(Pass::Delete(i));
                            return true;
                        }
                        None => self.pass = Pass::Shrink(0),
                    }
                }
                Pass::Shrink(i) if i < self.elements.len() => {
                    if self.included[i] && self.elements[i].simplify() {
                        self.last = Some(Pass::Shrink(i));
                        return true;
                    }
                    self.pass = Pass::Shrink(i + 1);
                }
                Pass::Shrink(_) if std::mem::take(&mut self.progress) => {
                    self.pass = Pass::Delete(0);
                }
                Pass::Shrink(_) => self.pass = Pass::Pair(0, 1),
                Pass::Pair(i, j) => {
                    let n = self.elements.len();
                    let keep = &self.included;
                    let next = (i..n)
                        .flat_map(|a| (if a == i { j } else { a + 1 }..n).map(move |b| (a, b)))
                        .find(|&(a, b)| keep[a] && keep[b]);
                    match next {
                        Some((a, b)) => {
                            self.included[a] = false;
                            self.included[b] = false;
                            self.pass = Pass::Pair(a, b + 1);
                            self.last = Some(Pass::Pair(a, b));
                            return true;
                        }
                        None if std::mem::take(&mut self.progress) => {
                            self.pass = Pass::Delete(0);
                        }
                        None => {
                            self.pass = Pass::Done;
                            return false;
                        }
                    }
                }
                Pass::Done => return false,
            }
        }
    }

    fn complicate(&mut self) -> bool {
        match self.last.take() {
            Some(Pass::Delete(i)) => {
                self.included[i] = true;
                true
            }
            Some(Pass::Pair(a, b)) => {
                self.included[a] = true;
                self.included[b] = true;
                true
            }
            Some(Pass::Shrink(i)) => {
                // The element goes back part of the way; if that still fails, it is
                // progress, and a further complicate goes on from there.
                let changed = self.elements[i].complicate();
                if changed {
                    self.last = Some(Pass::Shrink(i));
                }
                changed
            }
            _ => false,
        }
    }
}
