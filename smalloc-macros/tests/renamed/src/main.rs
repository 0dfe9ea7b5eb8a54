//! `#[smalloc_main]` with the core crate renamed to `my_alloc`.

#[smalloc_macros::smalloc_main]
fn main() {
    let v: Vec<u64> = (0..1000).collect();
    let st = SMALLOC.stats();
    assert!(st.live_bytes >= 8000, "{st:?}");
    let _: &my_alloc::Smalloc = &SMALLOC;
    println!("renamed ok: {} values, {} live bytes", v.len(), st.live_bytes);
}
