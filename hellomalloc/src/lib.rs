//! What both sample programs do once smalloc is the global allocator: greet, build a `String`
//! and a `Vec`, and check that both live in smalloc's slabs.

use std::ops::Range;

/// Prints the greeting and reports whether the `String` and `Vec` it built lie in
/// `slab_range` (smalloc's slabs). `how` names the way smalloc was initialized.
pub fn greet(how: &str, slab_range: Option<Range<usize>>) {
    let mut greeting = String::from("Hello");
    greeting.push_str(", smalloc!");
    let squares: Vec<u64> = (1..=10).map(|i| i * i).collect();
    println!("{greeting}");
    println!("squares: {squares:?}");
    let range = slab_range.expect("the reservation is in place");
    let inside = |p: *const u8| range.contains(&(p as usize));
    println!(
        "initialized by {how}; String and Vec in smalloc's slabs: {}",
        inside(greeting.as_ptr()) && inside(squares.as_ptr().cast())
    );
}
