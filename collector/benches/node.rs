//! Node benchmarks (placeholder; filled in below in a later commit).
fn main() {}
