//! `unitcoder merge`: joins the run directories of `synth --shard i/N` runs into one, deduplicating
//! again across shards (same id, exact and near duplicates), and rebuilds its dataset formats and
//! statistics.

use super::Outcome;
use clap::Args;
use std::path::PathBuf;
use unitcoder::pipeline::emit::{self, Format};
use unitcoder::pipeline::run_dir::RunDir;

/// Arguments of `unitcoder merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard run directories (each the --out of a `synth --shard` run).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File formats of the derived dataset files (comma-separated): jsonl, jsonl.gz, parquet.
    #[arg(long, value_delimiter = ',', default_value = "jsonl")]
    pub format: Vec<Format>,
}

/// Runs `unitcoder merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<Outcome> {
    for s in &args.shards {
        let d = RunDir::new(s);
        if !d.records().is_file() && !d.rejected().is_file() {
            anyhow::bail!("{}: not a synth run directory (no dataset/records.jsonl or rejected.jsonl)", s.display());
        }
    }
    let shards: Vec<RunDir> = args.shards.iter().map(|s| RunDir::new(s)).collect();
    let (stats, c) = emit::merge(&shards, &RunDir::new(&args.out), &args.format)?;
    outln!(
        "merged {} shards: {} records read, {} with a repeated id, {} exact and {} near duplicates dropped, {} kept",
        c.shards,
        c.read,
        c.same_id,
        c.exact_duplicates,
        c.near_duplicates,
        c.kept
    )?;
    out!("{}", stats.funnel_text())?;
    outln!("wrote {}", args.out.display())?;
    Ok(Outcome::Success)
}
