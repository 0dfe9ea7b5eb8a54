//! smalloc as the global allocator, installed and initialized by `#[smalloc_main]`.

#[smalloc_macros::smalloc_main]
fn main() {
    let mut greeting = String::from("Hello");
    greeting.push_str(", smalloc!");
    let squares: Vec<u64> = (1..=10).map(|i| i * i).collect();
    println!("{greeting}");
    println!("squares: {squares:?}");
    // `SMALLOC` is the global allocator the attribute defined.
    let range = SMALLOC.slab_range().expect("the reservation is in place");
    let inside = |p: *const u8| range.contains(&(p as usize));
    println!(
        "initialized by #[smalloc_main]; String and Vec in smalloc's slabs: {}",
        inside(greeting.as_ptr()) && inside(squares.as_ptr().cast())
    );
}
