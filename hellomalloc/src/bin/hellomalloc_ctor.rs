//! smalloc as the global allocator, initialized by a `ctor` constructor before `main`.

use smalloc::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

#[ctor::ctor(unsafe)]
fn init_smalloc() {
    // SAFETY: `init` is always sound; this runs once, before main.
    unsafe { ALLOC.init() };
}

fn main() {
    let mut greeting = String::from("Hello");
    greeting.push_str(", smalloc!");
    let squares: Vec<u64> = (1..=10).map(|i| i * i).collect();
    println!("{greeting}");
    println!("squares: {squares:?}");
    let range = ALLOC.slab_range().expect("the reservation is in place");
    let inside = |p: *const u8| range.contains(&(p as usize));
    println!(
        "initialized by ctor; String and Vec in smalloc's slabs: {}",
        inside(greeting.as_ptr()) && inside(squares.as_ptr().cast())
    );
}
