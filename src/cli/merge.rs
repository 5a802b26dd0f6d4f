//! `unitcoder merge`: joins the run directories of `synth --shard i/N` runs into one, deduplicating
//! again across shards (same id, exact and near duplicates), and rebuilds its dataset formats and
//! statistics.

use super::Outcome;
use clap::Args;
use std::path::PathBuf;
use unitcoder::pipeline::emit::{self, Format};
use unitcoder::pipeline::retrieve::Shard;
use unitcoder::pipeline::run_dir::RunDir;

/// Arguments of `unitcoder merge`.
#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Shard run directories (each the --out of a `synth --shard` run).
    #[arg(required = true, value_name = "RUN_DIR")]
    pub shards: Vec<PathBuf>,
    /// The merged run directory. What it already holds (an earlier merge) is merged too, so new
    /// shards can be added to it; it cannot be one of the shards.
    #[arg(long, value_name = "DIR", value_parser = super::parse::out_dir)]
    pub out: PathBuf,
    /// File formats of the derived dataset files (comma-separated): jsonl, jsonl.gz, parquet.
    #[arg(long, value_delimiter = ',', default_value = "jsonl")]
    pub format: Vec<Format>,
}

/// Runs `unitcoder merge`.
pub fn run(args: MergeArgs) -> anyhow::Result<Outcome> {
    for s in &args.shards {
        let d = RunDir::new(s);
        if !s.exists() {
            anyhow::bail!("{}: no such directory", s.display());
        }
        if !d.has_records() {
            anyhow::bail!("{}: not a synth run directory (no dataset/records.jsonl or rejected.jsonl)", s.display());
        }
        if unitcoder::atomic_file::same_file(s, &args.out) {
            // --out is read as an input anyway; naming it as a shard too would also make the merge
            // rewrite that shard's own run in place, which a user listing shards does not expect.
            anyhow::bail!(
                "--out {} is also one of the shards: the merge would rewrite that shard in place; write it to a \
                 new directory (to add shards to an earlier merge, give that merge as --out and only the new \
                 shards: --out is always read as an input too)",
                args.out.display()
            );
        }
        match emit::read_stats(&d)?.and_then(|st| st.settings) {
            Some(_) => {}
            None => eprintln!(
                "warning: {}: its stats.json records no settings (made by an older unitcoder, or missing): the merge \
                 cannot check that it used the same model and settings as the other shards",
                s.display()
            ),
        }
    }
    for (k, s) in args.shards.iter().enumerate() {
        if let Some(first) = args.shards[..k].iter().find(|t| unitcoder::atomic_file::same_file(t, s)) {
            anyhow::bail!("{} is given twice (also as {}): name each shard once", s.display(), first.display());
        }
    }
    super::not_someone_elses_directory(&args.out)?;
    let out = RunDir::new(&args.out);
    if out.records().is_file() || out.rejected().is_file() {
        eprintln!(
            "note: {} already holds a run (an earlier merge?): its records are merged with the shards'",
            args.out.display()
        );
    }
    let shards: Vec<RunDir> = args.shards.iter().map(|s| RunDir::new(s)).collect();
    let (stats, c) = emit::merge(&shards, &out, &args.format)?;
    outln!(
        "merged {} shard{}: {} records read, {} with a repeated id, {} exact and {} near duplicates dropped, {} kept",
        c.shards,
        if c.shards == 1 { "" } else { "s" },
        c.read,
        c.same_id,
        c.exact_duplicates,
        c.near_duplicates,
        c.kept
    )?;
    out!("{}", stats.funnel_text())?;
    outln!("wrote {}", args.out.display())?;
    if let Some(warning) = stats.retrieve.as_ref().and_then(shard_coverage) {
        eprintln!("{warning}");
    }
    if let Some(warning) = stats.retrieve.as_ref().and_then(interpreters) {
        eprintln!("{warning}");
    }
    Ok(Outcome::Success)
}

/// The parts of a merged run's retrieve counts (one per single run), or the counts themselves.
fn parts(retrieve: &serde_json::Value) -> Vec<&serde_json::Value> {
    match retrieve.get("parts").and_then(|p| p.as_array()) {
        Some(parts) => parts.iter().collect(),
        None => vec![retrieve],
    }
}

/// A warning when the merged runs ran their programs under different Python environments (each
/// run's `synth_python`: version, executable, digest of its installed distributions): a verdict can
/// depend on a library's version, so the records were not all checked under the same conditions.
fn interpreters(retrieve: &serde_json::Value) -> Option<String> {
    let mut seen: Vec<&serde_json::Value> = Vec::new();
    for p in parts(retrieve) {
        if let Some(e) = p.get("synth_python") {
            if !seen.contains(&e) {
                seen.push(e);
            }
        }
    }
    let field = |e: &serde_json::Value, k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("?").to_string();
    (seen.len() > 1).then(|| {
        let named: Vec<String> = seen
            .iter()
            .map(|e| {
                format!("{} {} (distributions {})", field(e, "executable"), field(e, "version"), field(e, "digest"))
            })
            .collect();
        format!(
            "warning: the runs checked their programs under {} different Python environments ({}): a verdict can \
             depend on a library's version, so the merged records were not all verified under the same conditions",
            seen.len(),
            named.join("; ")
        )
    })
}

/// What is wrong with the set of shards a merged run holds (its retrieve counts keep each run's
/// `synth_shard`, `i/N` or `i/N by file`): shards split different ways, or parts not merged yet.
fn shard_coverage(retrieve: &serde_json::Value) -> Option<String> {
    let parts = parts(retrieve);
    let mut labels = Vec::new();
    let mut split = std::collections::BTreeSet::new();
    let mut have = std::collections::BTreeSet::new();
    for p in parts {
        let label = p.get("synth_shard")?.as_str()?;
        let shard: Shard = label.trim_end_matches(" by file").parse().ok()?;
        split.insert((shard.count, label.ends_with(" by file")));
        have.insert(shard.index);
        labels.push(label.to_string());
    }
    labels.sort();
    labels.dedup();
    if split.len() > 1 {
        return Some(format!(
            "warning: the runs were split different ways ({}): their parts overlap or leave gaps, so the merge is \
             not one split of the corpus",
            labels.join(", ")
        ));
    }
    let (n, by_file) = *split.iter().next()?;
    let missing: Vec<String> =
        (0..n).filter(|i| !have.contains(i)).map(|index| Shard { index, count: n }.label(by_file)).collect();
    (!missing.is_empty()).then(|| {
        format!(
            "note: {} of the {n} shards {} merged; not yet: {} (merge them in later with this directory as --out)",
            n - missing.len() as u64,
            if n - missing.len() as u64 == 1 { "is" } else { "are" },
            missing.join(", ")
        )
    })
}
