//! End-to-end test support: a whole Gleaner network on 127.0.0.1.
