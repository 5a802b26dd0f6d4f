//! `unitcoder report RUN_DIR`: writes report.md, report.json and the SVG charts (funnel, pass by
//! round, the quality scores' distributions) into a synth run directory and prints the funnel.

use super::Outcome;
use clap::Args;
use std::path::PathBuf;
use unitcoder::pipeline::report::write_report;
use unitcoder::pipeline::run_dir::RunDir;

/// Arguments of `unitcoder report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// The run directory (the --out of `unitcoder synth` or `unitcoder merge`).
    #[arg(value_name = "RUN_DIR")]
    pub dir: PathBuf,
}

/// Runs `unitcoder report`.
pub fn run(args: ReportArgs) -> anyhow::Result<Outcome> {
    let stats = write_report(&RunDir::new(&args.dir))?;
    out!("{}", stats.funnel_text())?;
    outln!(
        "wrote {}/report.md, report.json, funnel.svg, pass_by_round.svg, mutation_score.svg, \
         line_coverage.svg, branch_coverage.svg",
        args.dir.display()
    )?;
    Ok(Outcome::Success)
}
