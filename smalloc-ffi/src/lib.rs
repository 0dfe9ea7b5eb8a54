//! The C ABI of smalloc (work in progress).
