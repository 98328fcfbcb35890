#!/usr/bin/env python3
"""Reads an exported Gleaner dataset with third-party readers and prints one JSON object.

Usage: read_shards.py DATASET_DIR

Each reader is optional: a missing module prints `"<reader>": "missing"` so the Rust test can
decide whether that is acceptable (it is not under CI).
"""
import glob
import json
import os
import sys

out = {}
root = sys.argv[1]
files = sorted(glob.glob(os.path.join(root, "data", "*", "*.parquet")))
out["files"] = len(files)

try:
    import pyarrow.parquet as pq

    rows = 0
    page_index = True
    column_index = set()
    for f in files:
        pf = pq.ParquetFile(f)
        rows += pf.metadata.num_rows
        out["pyarrow_schema"] = [
            {"name": field.name, "type": str(field.type)} for field in pf.schema_arrow
        ]
        for rg in range(pf.metadata.num_row_groups):
            group = pf.metadata.row_group(rg)
            out["compression"] = group.column(0).compression
            for c in range(group.num_columns):
                col = group.column(c)
                # Every column chunk has an offset index (page locations); column indexes
                # (page min/max) exist where statistics are written.
                if hasattr(col, "has_offset_index") and not col.has_offset_index:
                    page_index = False
                if getattr(col, "has_column_index", False):
                    column_index.add(col.path_in_schema)
    out["pyarrow_rows"] = rows
    out["pyarrow_page_index"] = page_index
    out["pyarrow_column_index"] = sorted(column_index)
    table = pq.read_table(files[0])
    out["pyarrow_first_id"] = table.column("id")[0].as_py()
except ImportError:
    out["pyarrow_rows"] = "missing"

try:
    import duckdb

    con = duckdb.connect()
    pattern = os.path.join(root, "data", "*", "*.parquet")
    out["duckdb_rows"] = con.execute(
        "SELECT count(*) FROM read_parquet(?)", [pattern]
    ).fetchone()[0]
    out["duckdb_tokens"] = con.execute(
        "SELECT sum(token_count) FROM read_parquet(?)", [pattern]
    ).fetchone()[0]
    out["duckdb_dumps"] = [
        r[0]
        for r in con.execute(
            "SELECT DISTINCT dump FROM read_parquet(?) ORDER BY dump", [pattern]
        ).fetchall()
    ]
except ImportError:
    out["duckdb_rows"] = "missing"

try:
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_CACHE", os.path.join(root, "..", ".hf-cache"))
    import datasets

    datasets.disable_progress_bars()
    # The card's YAML (configs + features) as the Hub reads it: load the directory itself.
    ds = datasets.load_dataset(root, split="train", cache_dir=os.environ["HF_DATASETS_CACHE"])
    out["datasets_rows"] = ds.num_rows
    out["datasets_features"] = sorted(ds.features.keys())
    ds2 = datasets.load_dataset(
        "parquet",
        data_files=os.path.join(root, "data", "*", "*.parquet"),
        split="train",
        cache_dir=os.environ["HF_DATASETS_CACHE"],
    )
    out["datasets_parquet_rows"] = ds2.num_rows
except ImportError:
    out["datasets_rows"] = "missing"

print(json.dumps(out))
