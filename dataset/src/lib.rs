//! Gleaner datasets: Parquet shards with per-row provenance, a signed manifest, a dataset card, and offline verification.
