//! `#[smalloc_main]`: one attribute that makes smalloc the global allocator and initializes it
//! before the Rust runtime starts.
//!
//! ```ignore
//! #[smalloc_macros::smalloc_main]
//! fn main() {
//!     let v = vec![1, 2, 3];
//!     println!("{v:?} lives in {:?}", SMALLOC.slab_range());
//! }
//! ```
//!
//! The attribute keeps `main` as it is and adds, next to it:
//!
//! * `static SMALLOC: ::smalloc::Smalloc`, marked `#[global_allocator]` (so the crate needs
//!   `smalloc` as a dependency too, and must not declare another global allocator); code in the
//!   crate can refer to it by that name;
//! * a function registered in the executable's initializer table (`.init_array` on ELF
//!   platforms, `__mod_init_func` on Apple platforms) that calls `SMALLOC.init()`. The loader runs
//!   it before the Rust runtime's own start-up code, which is the point: the one-time reservation
//!   happens before any thread exists and before the first allocation.
//!
//! This is what `#[ctor::ctor]` does, without depending on the `ctor` crate.
//!
//! The macro parses nothing beyond checking that it is applied to a function named `main`, so it
//! needs neither `syn` nor `quote`.

use proc_macro::{TokenStream, TokenTree};

/// Makes smalloc the global allocator (as `static SMALLOC`) and initializes it before the Rust
/// runtime starts. Apply it to `fn main`; it takes no arguments.
#[proc_macro_attribute]
pub fn smalloc_main(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        return compile_error("#[smalloc_main] takes no arguments");
    }
    if !is_fn_main(&item) {
        return compile_error("#[smalloc_main] must be applied to `fn main`");
    }
    let prelude: TokenStream = PRELUDE.parse().expect("the prelude is valid Rust");
    let mut out = prelude;
    out.extend(item);
    out
}

/// Whether the item's tokens contain `fn main` (attributes, visibility and qualifiers such as
/// `async` may come before it).
fn is_fn_main(item: &TokenStream) -> bool {
    let mut previous_was_fn = false;
    for tt in item.clone() {
        match tt {
            TokenTree::Ident(id) => {
                let s = id.to_string();
                if previous_was_fn {
                    return s == "main";
                }
                previous_was_fn = s == "fn";
            }
            _ => previous_was_fn = false,
        }
    }
    false
}

fn compile_error(msg: &str) -> TokenStream {
    format!("::core::compile_error!({msg:?});")
        .parse()
        .expect("a compile_error! invocation is valid Rust")
}

/// What the attribute puts before `main`.
const PRELUDE: &str = r#"
#[global_allocator]
static SMALLOC: ::smalloc::Smalloc = ::smalloc::Smalloc::new();

#[used]
#[cfg_attr(
    any(target_os = "linux", target_os = "android", target_os = "freebsd", target_os = "netbsd",
        target_os = "openbsd", target_os = "dragonfly", target_os = "illumos"),
    unsafe(link_section = ".init_array")
)]
#[cfg_attr(target_vendor = "apple", unsafe(link_section = "__DATA,__mod_init_func"))]
static __SMALLOC_INIT_BEFORE_RUNTIME: extern "C" fn() = {
    extern "C" fn __smalloc_init_before_runtime() {
        // The loader calls this once, before `main`.
        SMALLOC.init()
    }
    __smalloc_init_before_runtime
};
"#;
