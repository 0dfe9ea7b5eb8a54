//! The constructor-based initialization users write: `init` runs before `main` (and before the
//! test harness), so the reservation is already in place when the first test starts.

use smalloc_core::Smalloc;

#[global_allocator]
static ALLOC: Smalloc = Smalloc::new();

static mut RESERVED_BEFORE_MAIN: bool = false;

#[ctor::ctor(unsafe)]
fn init_smalloc() {
    // SAFETY: init is always sound; this runs once, before main, on the only thread.
    unsafe {
        ALLOC.init();
        RESERVED_BEFORE_MAIN = ALLOC.is_reserved();
    }
}

#[test]
fn reserved_before_main_and_init_is_idempotent() {
    // SAFETY: written once by the constructor before any thread existed; only read now.
    assert!(unsafe { RESERVED_BEFORE_MAIN });
    let range = ALLOC.slab_range().unwrap();
    ALLOC.init();
    assert_eq!(
        ALLOC.slab_range().unwrap(),
        range,
        "a second init must not re-reserve"
    );
    let b = Box::new(5u64);
    assert!(range.contains(&(&*b as *const u64 as usize)));
}
