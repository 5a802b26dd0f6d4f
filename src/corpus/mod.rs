//! Readers for pre-training code corpora: JSONL / JSONL.gz / JSONL.zst with a `content` field, Parquet
//! (The Stack v2, HF datasets) and directories of `.py` files. Each yields source files with provenance.
