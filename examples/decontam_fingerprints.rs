//! Rebuilds `eval/fingerprints.bin`, the benchmark n-gram fingerprints that `retrieve` and `synth`
//! decontaminate against by default, from the benchmark files under `eval/data` (see
//! `unitcoder::pipeline::retrieve::fingerprints` for the format). The library test
//! `embedded_fingerprints_match_eval_data` fails until the committed file is rebuilt after a change
//! to the data, the tokenization or the format.
//!
//! Run: `cargo run --example decontam_fingerprints [-- DATA_DIR OUT]`

use anyhow::Context;
use std::path::PathBuf;
use unitcoder::pipeline::retrieve::{fingerprints, Fingerprints};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = args.next().map_or_else(|| root.join("eval/data"), PathBuf::from);
    let out = args.next().map_or_else(|| root.join("eval/fingerprints.bin"), PathBuf::from);
    let bytes = fingerprints::build(&data)?;
    std::fs::write(&out, &bytes).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({} bytes)", out.display(), bytes.len());
    // The families as the binary will see them once rebuilt.
    for (name, grams) in Fingerprints::decode(&bytes)?.families() {
        println!("  {name}: {grams} distinct 13-grams");
    }
    Ok(())
}
