//! smalloc as the global allocator, initialized by a `ctor` constructor before `main`.

use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

#[ctor::ctor(unsafe)]
fn init_smalloc() {
    // Runs once, before main.
    ALLOC.init();
}

fn main() {
    hellomalloc::greet("ctor", ALLOC.slab_range());
}
