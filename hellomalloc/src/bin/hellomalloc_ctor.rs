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
    hellomalloc::greet("ctor", ALLOC.slab_range());
}
