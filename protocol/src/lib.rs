//! Gleaner protocol.
