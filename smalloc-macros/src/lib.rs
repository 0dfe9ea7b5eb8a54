//! `#[smalloc_main]`: one attribute that makes smalloc the global allocator and initializes it
//! before the Rust runtime starts.
//!
//! ```ignore
//! #[smalloc_macros::smalloc_main]
//! fn main() {
//!     let v = vec![1, 2, 3];
//!     println!("{v:?} lives in {:?}", SMALLOC.stats().live_bytes);
//! }
//! ```
//!
//! The attribute keeps `main` as it is and adds, next to it:
//!
//! * `static SMALLOC: Smalloc`, marked `#[global_allocator]` (so the crate needs `smalloc-core`
//!   as a dependency too, and must not declare another global allocator); code in the crate can
//!   refer to it by that name;
//! * a function registered in the executable's initializer table (`.init_array` on ELF
//!   platforms, `__mod_init_func` on Apple platforms) that calls `SMALLOC.init()`. The loader runs
//!   it before the Rust runtime's own start-up code, which is the point: the one-time reservation
//!   happens before any thread exists and before the first allocation.
//!
//! This is what `#[ctor::ctor]` does, without depending on the `ctor` crate.
//!
//! # Whatever the dependency is called
//!
//! The generated code names the core crate by the name the calling crate gave it: the macro
//! looks `smalloc-core` up in the calling crate's `Cargo.toml` (with `proc-macro-crate`), so
//! `my_alloc = { package = "smalloc-core", ... }` works as well as the plain name. Where that
//! lookup cannot work (a build without Cargo), pass the path yourself:
//! `#[smalloc_main(crate = my_alloc)]`.
//!
//! Besides that, the macro parses nothing beyond checking that it is applied to a function named
//! `main`, so it needs neither `syn` nor `quote`.

use proc_macro::{TokenStream, TokenTree};

/// Makes smalloc the global allocator (as `static SMALLOC`) and initializes it before the Rust
/// runtime starts. Apply it to `fn main`. Takes no arguments, or `crate = path` to name the core
/// crate explicitly (see the crate docs).
#[proc_macro_attribute]
pub fn smalloc_main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let krate = match crate_path(attr) {
        Ok(k) => k,
        Err(msg) => return compile_error(&msg),
    };
    if !is_fn_main(&item) {
        return compile_error("#[smalloc_main] must be applied to `fn main`");
    }
    let prelude: TokenStream = PRELUDE
        .replace("SMALLOC_CORE", &krate)
        .parse()
        .expect("the prelude is valid Rust");
    let mut out = prelude;
    out.extend(item);
    out
}

/// The path of the core crate, as the generated code must write it: from `crate = path` in the
/// attribute's arguments, else from the calling crate's `Cargo.toml`.
fn crate_path(attr: TokenStream) -> Result<String, String> {
    let tokens: Vec<TokenTree> = attr.into_iter().collect();
    if tokens.is_empty() {
        return match proc_macro_crate::crate_name("smalloc-core") {
            Ok(proc_macro_crate::FoundCrate::Name(name)) => Ok(format!("::{name}")),
            Ok(proc_macro_crate::FoundCrate::Itself) => Ok("crate".to_string()),
            Err(e) => Err(format!(
                "#[smalloc_main] needs `smalloc-core` among the crate's dependencies ({e}); \
                 or name it with #[smalloc_main(crate = path)]"
            )),
        };
    }
    match tokens.first() {
        Some(TokenTree::Ident(id)) if id.to_string() == "crate" => {}
        _ => return Err("#[smalloc_main] takes no arguments, or `crate = path`".to_string()),
    }
    match tokens.get(1) {
        Some(TokenTree::Punct(p)) if p.as_char() == '=' && tokens.len() > 2 => {}
        _ => return Err("expected `crate = path`".to_string()),
    }
    Ok(tokens[2..].iter().map(ToString::to_string).collect())
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
static SMALLOC: SMALLOC_CORE::Smalloc = SMALLOC_CORE::Smalloc::new();

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
