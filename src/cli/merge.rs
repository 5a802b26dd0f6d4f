//! `unitcoder merge`: joins the run directories of `synth --shard i/N` runs into one (records
//! deduplicated by id), and rebuilds its dataset formats and statistics.

use super::Outcome;
use clap::Args;
use std::path::PathBuf;
use unitcoder::pipeline::emit;
use unitcoder::pipeline::synth::RunDir;

/// Arguments of `unitcoder merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard run directories (each the --out of a `synth --shard` run).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged run directory.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
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
    let stats = emit::merge(&shards, &RunDir::new(&args.out))?;
    print!("{}", stats.funnel_text());
    println!("wrote {}", args.out.display());
    Ok(Outcome::Success)
}
