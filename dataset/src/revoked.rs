//! Which rows of a dataset its validator has revoked since the export. A record can be revoked
//! after it was accepted (a cross-check it failed, a page found gone): the validator takes its
//! points back and lists it at `GET /v1/revocations`, but a dataset exported before still holds
//! the row. [`dataset_rows`] reads a dataset's row ids; `pull::revoked_rows` (feature `pull`)
//! pages through the validator's revocations and keeps those that name a row.

use std::collections::HashMap;
use std::path::Path;

use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::sample::string_column;
use crate::schema::columns as c;
use crate::{DatasetError, Manifest, safe_join};

/// Where a row is: its record id (hex, the `id` column), URL, shard and row in the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowRef {
    pub id: String,
    pub url: String,
    pub shard: String,
    pub row: u64,
}

/// Every row of the dataset in `dir` by its record id (hex), reading only the `id` and `url`
/// columns of each shard the manifest lists.
pub fn dataset_rows(
    dir: &Path,
    manifest: &Manifest,
) -> Result<HashMap<String, RowRef>, DatasetError> {
    let mut rows = HashMap::with_capacity(usize::try_from(manifest.rows).unwrap_or(0));
    for shard in &manifest.shards {
        let path = safe_join(dir, &shard.path)?;
        let file = std::fs::File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| DatasetError::parquet(&path, e))?;
        let mask = ProjectionMask::columns(builder.parquet_schema(), [c::ID, c::URL]);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| DatasetError::parquet(&path, e))?;
        let mut row = 0u64;
        for batch in reader {
            let batch = batch.map_err(|e| DatasetError::parquet(&path, e))?;
            let (ids, urls) = (
                string_column(&batch, c::ID, &path)?,
                string_column(&batch, c::URL, &path)?,
            );
            for i in 0..batch.num_rows() {
                let id = ids.value(i).to_string();
                rows.insert(
                    id.clone(),
                    RowRef {
                        id,
                        url: urls.value(i).to_string(),
                        shard: shard.path.clone(),
                        row,
                    },
                );
                row += 1;
            }
        }
    }
    Ok(rows)
}
