//! Main-content extraction (the cleaner). Pure: no I/O, no async runtime.
