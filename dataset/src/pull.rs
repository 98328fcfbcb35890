//! Resumable HTTP download of a dataset.
