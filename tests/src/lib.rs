//! End-to-end support: a whole Gleaner network on 127.0.0.1 — a sample website, a validator, and
//! honest and dishonest nodes — used by the tests in `tests/tests/` and by the `make demo` driver.

pub mod adversary;
pub mod network;
pub mod proc;
pub mod site;
