//! smalloc as the global allocator, installed and initialized by `#[smalloc_main]`.

#[smalloc_macros::smalloc_main]
fn main() {
    // `SMALLOC` is the global allocator the attribute defined.
    hellomalloc::greet("#[smalloc_main]", SMALLOC.slab_range());
}
