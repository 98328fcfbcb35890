//! A few rows of a dataset for previews (the validator's console).

use std::path::Path;

use arrow_array::{Array, Int64Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::schema::columns as c;
use crate::{DatasetError, Manifest, safe_join};

/// Characters of text kept in a preview row.
pub const SAMPLE_TEXT_CHARS: usize = 280;

/// One previewed row: FineWeb's main columns, text shortened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SampleRow {
    pub id: String,
    pub url: String,
    pub date: String,
    pub language: String,
    pub token_count: i64,
    /// The first `SAMPLE_TEXT_CHARS` characters of the text.
    pub text: String,
}

/// The text column `name` of a batch read from the shard at `path`.
pub(crate) fn string_column<'a>(
    batch: &'a arrow_array::RecordBatch,
    name: &str,
    path: &Path,
) -> Result<&'a StringArray, DatasetError> {
    batch
        .column_by_name(name)
        .and_then(|a| a.as_any().downcast_ref::<StringArray>())
        .ok_or_else(|| DatasetError::parquet(path, format!("column {name} missing")))
}

/// The first `n` rows of the dataset's first shard.
pub fn sample_rows(
    dir: &Path,
    manifest: &Manifest,
    n: usize,
) -> Result<Vec<SampleRow>, DatasetError> {
    let Some(shard) = manifest.shards.first() else {
        return Ok(Vec::new());
    };
    let path = safe_join(dir, &shard.path)?;
    let file = std::fs::File::open(&path).map_err(|e| DatasetError::io(&path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(n.max(1)).with_limit(n).build())
        .map_err(|e| DatasetError::parquet(&path, e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| DatasetError::parquet(&path, e))?;
        let s = |name: &str| string_column(&batch, name, &path);
        let (id, url, date, lang, text) = (
            s(c::ID)?,
            s(c::URL)?,
            s(c::DATE)?,
            s(c::LANGUAGE)?,
            s(c::TEXT)?,
        );
        let tokens = batch
            .column_by_name(c::TOKEN_COUNT)
            .and_then(|a| a.as_any().downcast_ref::<Int64Array>())
            .ok_or_else(|| DatasetError::parquet(&path, "column token_count missing"))?;
        for i in 0..batch.num_rows().min(n - out.len().min(n)) {
            out.push(SampleRow {
                id: id.value(i).to_string(),
                url: url.value(i).to_string(),
                date: date.value(i).to_string(),
                language: lang.value(i).to_string(),
                token_count: tokens.value(i),
                text: text.value(i).chars().take(SAMPLE_TEXT_CHARS).collect(),
            });
        }
        if out.len() >= n {
            break;
        }
    }
    Ok(out)
}
