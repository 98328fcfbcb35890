//! Gleaner validator library.
