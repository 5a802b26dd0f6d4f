//! `unitcoder generate`: run the in-process engine on one prompt (text streamed to stdout) or on a JSONL
//! file of prompts (one JSON line per sample to stdout or `--out`). Input files are read and checked in
//! full before any generation, and JSONL output is written request group by request group, so a later
//! failure loses no finished work. Each line carries its request's key (model, prompt's place, id,
//! prompt and the sampling settings that decide its tokens), so the same command rerun on the same
//! `--out` continues where a failure, a kill or Ctrl-C stopped it, or adds samples when `-n` is raised;
//! a line written for anything else is refused, not overwritten, naming what differs. Ctrl-C
//! (or SIGTERM) lets the group in flight be answered and written, then stops with exit 130 (143).
//! `--stats` prints throughput and peak memory as the last stderr line. With `--model openai:...` the
//! same prompts go to a server instead.

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use unitcoder::engine::models::linear::Quantize;
use unitcoder::engine::models::MatmulKernels;
use unitcoder::engine::remote::Remote;
use unitcoder::engine::{
    Completion, Engine, EngineOptions, GenerationStats, Generator, LoadOptions, LoadedModel, Message, Prompt, Request,
    SamplingParams,
};

/// Arguments of `unitcoder generate`.
#[derive(Args)]
#[command(group(ArgGroup::new("input").required(true).args(["prompt", "prompt_file", "prompts"])))]
pub struct GenerateArgs {
    /// Model: card name, .gguf path, HF checkpoint directory, hf:ORG/REPO[:FILE], or a server:
    /// openai:BASE_URL#MODEL_NAME (--chat prompts go to its chat endpoint, the others to completions).
    #[arg(long, default_value = unitcoder::engine::cards::DEFAULT_CARD)]
    model: String,
    #[command(flatten)]
    weights: WeightArgs,
    /// The prompt text.
    #[arg(long)]
    prompt: Option<String>,
    /// Read the prompt text from a file (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    prompt_file: Option<PathBuf>,
    /// A JSONL file of prompts (`-`: stdin): {"id"?, "prompt" or "messages", "system"?, sampling
    /// overrides?}.
    #[arg(long, value_name = "IN.jsonl")]
    prompts: Option<PathBuf>,
    /// Render prompts with the model's chat template (as a user message).
    #[arg(long)]
    chat: bool,
    /// A system message for chat prompts; implies --chat (a plain completion has no system message).
    #[arg(long)]
    system: Option<String>,
    /// Samples per prompt (raised on a finished --out, the samples each prompt lacks are added).
    #[arg(short = 'n', default_value_t = 1, value_parser = super::parse::positive_usize)]
    n: usize,
    /// Most new tokens per sample.
    #[arg(long, default_value_t = 512, value_parser = super::parse::positive_usize)]
    max_tokens: usize,
    /// Sampling temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.0, value_parser = super::parse::non_negative_f32)]
    temperature: f32,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0, value_parser = super::parse::top_p)]
    top_p: f32,
    /// Keep only the K most likely tokens (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Repetition penalty on already generated tokens (1.0 = off; 1.1-1.3 curbs loops).
    #[arg(long, default_value_t = 1.0, value_parser = super::parse::penalty)]
    repetition_penalty: f32,
    /// Random seed (per prompt; samples get independent streams).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Stop before this string (repeatable).
    #[arg(long, value_parser = super::parse::stop_string)]
    stop: Vec<String>,
    /// Keep generating past end-of-sequence tokens.
    #[arg(long)]
    ignore_eos: bool,
    /// Print {"prompt_tokens","generated_tokens","prefill_tok_s","decode_tok_s","peak_rss_mb"} as the
    /// last line of stderr.
    #[arg(long)]
    stats: bool,
    /// Write JSONL results here instead of stdout.
    #[arg(long, value_name = "OUT.jsonl", value_parser = super::parse::out_file)]
    out: Option<PathBuf>,
    /// Run quantized products on candle's kernels instead of the engine's own (for comparisons).
    #[arg(long, conflicts_with_all = ["llama_cpp_activations", "dequantize"])]
    candle_kernels: bool,
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    server: super::server::ServerArgs,
}

/// One line of a `--prompts` file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    id: Option<serde_json::Value>,
    prompt: Option<String>,
    messages: Option<Vec<Message>>,
    system: Option<String>,
    n: Option<usize>,
    max_tokens: Option<usize>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<usize>,
    seed: Option<u64>,
    stop: Option<Vec<String>>,
    ignore_eos: Option<bool>,
}

/// A request with the id it is reported under.
struct Item {
    id: serde_json::Value,
    request: Request,
    /// Where it was read: `FILE line N` (empty for `--prompt` and `--prompt-file`).
    at: String,
}

/// Runs the command.
pub fn run(args: GenerateArgs) -> anyhow::Result<crate::cli::Outcome> {
    args.runtime.size_thread_pools();
    refuse_out_over_input(&args)?;
    let items = read_items(&args)?;
    args.weights.refuse_for_server(&["generate"], &args.model);
    let kernels = if args.candle_kernels { MatmulKernels::Candle } else { args.weights.kernels() };
    let load = LoadArgs { kernels, ..args.runtime.load(&args.weights) };
    let engine = match load_model(&args.model, &load, &args.server, true, &unitcoder::progress::Silent)? {
        LoadedModel::Server(remote) => return run_server(&remote, &items, &args),
        LoadedModel::Engine(engine) => engine,
    };
    // Every prompt is put to the model (tokenized, its chat template applied) before the first is
    // generated: one that cannot run is named by its line and id now, not hours in.
    for item in &items {
        if let Err(e) = engine.check_prompt(&item.request.prompt) {
            match item.at.as_str() {
                "" => return Err(e.into()),
                at => bail!("{at} (id {}): {e}", item.id),
            }
        }
    }
    let single = args.prompts.is_none() && args.n == 1 && args.out.is_none();
    let mut outcome = crate::cli::Outcome::Success;
    let stats = if single {
        stream_one(&engine, &items[0].request)?
    } else {
        let mut total: Option<GenerationStats> = None;
        outcome = write_jsonl(&items, &args, &engine.model_id(), GROUP, |requests| {
            let (completions, s) = engine.generate_with_stats(requests)?;
            match &mut total {
                Some(t) => t.merge(&s),
                None => total = Some(s),
            }
            Ok(completions)
        })?;
        total.unwrap_or_default()
    };
    if args.stats {
        eprintln!("{}", serde_json::to_string(&stats)?);
    }
    Ok(outcome)
}

/// Refuses an `--out` that is the prompt file: it is emptied when the first group is written, so the
/// prompts would be lost for good (as `check --batch` and `retrieve` refuse theirs).
fn refuse_out_over_input(args: &GenerateArgs) -> anyhow::Result<()> {
    let Some(out) = &args.out else { return Ok(()) };
    for input in [&args.prompts, &args.prompt_file].into_iter().flatten() {
        if unitcoder::atomic_file::same_file(input, out) {
            bail!("--out {} is the input {}: writing it would destroy the input", out.display(), input.display());
        }
    }
    Ok(())
}

/// `generate` through a server: the same outputs, with the server's totals as `--stats`. The single
/// prompt is printed when it is done (no streaming), JSONL in groups of at least `--concurrency`
/// requests so that many are in flight.
fn run_server(remote: &Remote, items: &[Item], args: &GenerateArgs) -> anyhow::Result<crate::cli::Outcome> {
    let single = args.prompts.is_none() && args.n == 1 && args.out.is_none();
    let mut outcome = crate::cli::Outcome::Success;
    if single {
        let completion = remote.generate(std::slice::from_ref(&items[0].request))?.remove(0).remove(0);
        outln!("{}", completion.text)?;
    } else {
        let group = GROUP.max(args.server.concurrency);
        outcome = write_jsonl(items, args, &remote.model_id(), group, |requests| Ok(remote.generate(requests)?))?;
    }
    if args.stats {
        eprintln!("{}", serde_json::to_string(&remote.stats())?);
    }
    Ok(outcome)
}

fn base_params(args: &GenerateArgs) -> SamplingParams {
    SamplingParams {
        max_tokens: args.max_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        top_k: args.top_k,
        seed: args.seed,
        stop: args.stop.clone(),
        ignore_eos: args.ignore_eos,
        repetition_penalty: args.repetition_penalty,
    }
}

fn chat(system: Option<&str>, user: &str) -> Prompt {
    let mut m: Vec<Message> = system.map(|s| Message::new("system", s)).into_iter().collect();
    m.push(Message::new("user", user));
    Prompt::Chat(m)
}

/// Whether prompt text is rendered as a chat: `--chat`, or a system message, which only a chat has.
fn wants_chat(args: &GenerateArgs) -> bool {
    args.chat || args.system.is_some()
}

fn read_items(args: &GenerateArgs) -> anyhow::Result<Vec<Item>> {
    let text_prompt = |text: String| {
        let prompt = if wants_chat(args) { chat(args.system.as_deref(), &text) } else { Prompt::Text(text) };
        vec![Item { id: 0.into(), request: Request::new(prompt, args.n, base_params(args)), at: String::new() }]
    };
    if let Some(p) = &args.prompt {
        if p.is_empty() {
            bail!("--prompt is empty: give the text to continue");
        }
        return Ok(text_prompt(p.clone()));
    }
    if let Some(f) = &args.prompt_file {
        let text = String::from_utf8(read_input(f)?)
            .map_err(|_| anyhow::anyhow!("{}: the prompt file is not valid UTF-8", f.display()))?;
        if text.is_empty() {
            bail!("{}: the prompt file is empty", f.display());
        }
        return Ok(text_prompt(text));
    }
    match &args.prompts {
        Some(path) => read_jsonl(path, args),
        None => bail!("one of --prompt, --prompt-file or --prompts is required"),
    }
}

/// The bytes of an input file, or of stdin for `-`; gzip is read as what it is, whatever the name
/// (prompt files are often kept compressed, as `eval score` and `check --batch` read theirs).
fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    let raw = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes).context("-: cannot read stdin")?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?
    };
    unitcoder::eval::data::gunzip_if_gzip(raw)
        .with_context(|| format!("{}: gzip data truncated or corrupt", path.display()))
}

fn read_jsonl(path: &Path, args: &GenerateArgs) -> anyhow::Result<Vec<Item>> {
    let bytes = read_input(path)?;
    // Name the line that is not UTF-8, as for every other bad line.
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        anyhow::anyhow!("{} line {line}: not valid UTF-8", path.display())
    })?;
    // A UTF-8 byte-order mark (Windows editors write one) is not part of the first line's JSON.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut items = Vec::new();
    let mut first_line = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = format!("{} line {}", path.display(), i + 1);
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{at}: {}", unitcoder::json_line::problem(&e)))?;
        if !value.is_object() {
            bail!(
                "{at}: expected a JSON object like {{\"prompt\": \"...\"}}, found {}",
                unitcoder::json_line::kind(&value)
            );
        }
        let l = prompt_line(&at, value)?;
        let system = l.system.as_deref().or(args.system.as_deref());
        // A line's own `system`, like the flag, makes its prompt a chat.
        let chat_line = wants_chat(args) || l.system.is_some();
        let prompt = match (l.prompt, l.messages) {
            (Some(_), Some(_)) => bail!("{at}: give either `prompt` or `messages`, not both"),
            (None, None) => bail!("{at}: missing field `prompt` (or `messages`)"),
            (None, Some(m)) if m.is_empty() => bail!("{at}: field `messages` is empty"),
            (None, Some(m)) => {
                if let Some((k, msg)) = m.iter().enumerate().find(|(_, msg)| !ROLES.contains(&msg.role.as_str())) {
                    bail!(
                        "{at}: field `messages`, message {}: role `{}` is not one of {} (a chat template reads \
                         roles by name, and drops or refuses one it does not know)",
                        k + 1,
                        msg.role,
                        ROLES.join(", ")
                    );
                }
                Prompt::Chat(m)
            }
            (Some(p), None) if p.is_empty() => bail!("{at}: field `prompt` is empty"),
            (Some(p), None) if chat_line => chat(system, &p),
            (Some(p), None) => Prompt::Text(p),
        };
        let b = base_params(args);
        use super::parse::{check_non_negative_f32, check_positive_usize, check_top_p};
        let params = SamplingParams {
            max_tokens: checked(&at, "max_tokens", l.max_tokens, check_positive_usize)?.unwrap_or(b.max_tokens),
            temperature: checked(&at, "temperature", l.temperature, check_non_negative_f32)?.unwrap_or(b.temperature),
            top_p: checked(&at, "top_p", l.top_p, check_top_p)?.unwrap_or(b.top_p),
            top_k: l.top_k.unwrap_or(b.top_k),
            seed: l.seed.unwrap_or(b.seed),
            stop: match l.stop {
                Some(stops) if stops.iter().any(String::is_empty) => {
                    bail!("{at}: field `stop`: {}", super::parse::EMPTY_STOP)
                }
                Some(stops) => stops,
                None => b.stop,
            },
            ignore_eos: l.ignore_eos.unwrap_or(b.ignore_eos),
            repetition_penalty: b.repetition_penalty,
        };
        let id = l.id.unwrap_or_else(|| (items.len()).into());
        if let Some(first) = first_line.get(&id.to_string()) {
            // Allowed (the outputs keep their order), but the outputs could not be told apart by id.
            eprintln!("warning: {at}: id {id} again (first on line {first}): its outputs carry the same id");
        } else {
            first_line.insert(id.to_string(), i + 1);
        }
        let n = checked(&at, "n", l.n, check_positive_usize)?.unwrap_or(args.n);
        items.push(Item { id, request: Request::new(prompt, n, params), at });
    }
    if items.is_empty() {
        bail!("{}: no prompts", path.display());
    }
    Ok(items)
}

/// A `--prompts` line as its fields, a wrong one named by its field.
fn prompt_line(at: &str, value: serde_json::Value) -> anyhow::Result<PromptLine> {
    unitcoder::json_line::from_object(value).map_err(|e| {
        let list = if e.starts_with("field `stop`") { " (a list of strings)" } else { "" };
        anyhow::anyhow!("{at}: {e}{list}")
    })
}

/// A `--prompts` line's override held to the rule of the flag it overrides (`check`), so that a file
/// cannot ask for what the command line refuses (a negative temperature, `top_p` 2, `n` 0).
/// The chat roles a line's messages may have: those chat templates read.
const ROLES: &[&str] = &["system", "user", "assistant", "tool", "developer", "function", "ipython"];

fn checked<T>(at: &str, field: &str, value: Option<T>, check: fn(T) -> Result<T, String>) -> anyhow::Result<Option<T>> {
    value.map(check).transpose().map_err(|e| anyhow::anyhow!("{at}: field `{field}`: {e}"))
}

fn stream_one(engine: &Engine, request: &Request) -> anyhow::Result<GenerationStats> {
    let mut stdout = std::io::stdout().lock();
    let mut failed: Option<std::io::Error> = None;
    let (_, stats) = engine.generate_stream(std::slice::from_ref(request), |_, _, piece| {
        if failed.is_none() {
            failed = stdout.write_all(piece.as_bytes()).and_then(|_| stdout.flush()).err();
        }
    })?;
    if let Some(e) = failed {
        return Err(e).context("writing to stdout");
    }
    writeln!(stdout)?;
    Ok(stats)
}

/// Requests per engine call when writing JSONL: each group's lines are written as soon as it is done.
const GROUP: usize = 32;

/// The key written with each sample of `items[at]`: what makes its samples what they are. `model`
/// is the model's identity (a server model is the model it serves, not its address: see
/// `model_identity`). Left out: how many samples are asked for (a sample's text is a function of its
/// index, so `-n` can be raised on a finished run) and, under greedy decoding, what cannot change a
/// greedy token (see [`deciding`]).
fn request_key(model: &str, at: usize, item: &Item) -> String {
    let prompt = serde_json::to_string(&item.request.prompt).unwrap_or_default();
    let params = serde_json::to_string(&deciding(&item.request.params)).unwrap_or_default();
    unitcoder::pipeline::journal::key(&["generate/2", model, &at.to_string(), &item.id.to_string(), &prompt, &params])
}

/// The key earlier versions wrote: the whole request, `n` and the seed included. Their lines are
/// continued when this command asks for the same request.
fn legacy_key(model: &str, at: usize, item: &Item) -> String {
    let request = serde_json::to_string(&item.request).unwrap_or_default();
    unitcoder::pipeline::journal::key(&[model, &at.to_string(), &item.id.to_string(), &request])
}

/// The settings that decide a sample's tokens. Greedy decoding (temperature 0, or top-k 1) takes the
/// likeliest token whatever the seed, top-p and top-k, so a rerun that changes only those under it
/// continues the same samples instead of refusing them.
fn deciding(p: &SamplingParams) -> SamplingParams {
    let mut p = p.clone();
    if p.temperature <= 0.0 || p.top_k == 1 {
        (p.temperature, p.top_p, p.top_k, p.seed) = (0.0, 1.0, 0, 0);
    }
    p
}

/// A line of an earlier run in `--out`: the request key this command knows it by, the sample's index
/// and the line as it is to be kept.
struct Earlier {
    key: String,
    index: usize,
    line: String,
}

/// The lines of an earlier run of this command in `out`: `None` when there is no such file. A last
/// line cut short by a kill is left out (it is rewritten); a line that is not one of ours, or was
/// written for a request this command does not make, is refused, saying why (`mismatch`). `keys`
/// maps each key this command accepts to the one it writes (a line written by an earlier version is
/// read as its request's key now).
fn earlier_lines(
    out: &Path,
    keys: &HashMap<&str, &str>,
    mismatch: impl Fn(&serde_json::Value) -> String,
) -> anyhow::Result<Option<Vec<Earlier>>> {
    let text = match std::fs::read(out) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("{}: cannot read", out.display())),
    };
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let text = String::from_utf8_lossy(&text[..whole]);
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{} line {}", out.display(), i + 1);
        let value = serde_json::from_str::<serde_json::Value>(line).ok();
        let key = value.as_ref().and_then(|v| v.get("request_key")?.as_str());
        let index = value.as_ref().and_then(|v| v.get("index")?.as_u64());
        let (Some(value), Some(key), Some(index)) = (&value, key, index) else {
            bail!("{at}: not a line `generate` writes; give another --out, or remove the file to start over");
        };
        let Some(&now) = keys.get(key) else {
            bail!(
                "{at} was written for a request this command does not make: {}; give another --out, or remove the \
                 file to start over",
                mismatch(value)
            );
        };
        // The key is a hex digest, so replacing it touches nothing else in the line.
        lines.push(Earlier { key: now.to_string(), index: index as usize, line: line.replace(key, now) });
    }
    Ok(Some(lines))
}

/// Why an earlier line is not one of this command's requests, as far as the line tells: lines carry
/// their model and sampling settings (older lines only their key, and `asks` then says what this
/// command asks for, to set beside what the earlier run was given).
fn mismatch(line: &serde_json::Value, items: &[Item], identity: &str, asks: &str) -> String {
    let legacy = || {
        format!(
            "another model (a server model is known by its served name, not its address), prompt or sampling \
             setting than this command's ({asks})"
        )
    };
    let (Some(model), Some(params)) = (line.get("model").and_then(|m| m.as_str()), line.get("params")) else {
        return legacy();
    };
    if model != identity {
        return format!("model {model} then, {identity} now");
    }
    let id = line.get("id").cloned().unwrap_or_default();
    let Some(item) = items.iter().find(|i| i.id == id) else {
        return format!("id {id}, which none of this command's prompts has");
    };
    let then =
        serde_json::from_value::<SamplingParams>(params.clone()).and_then(|p| serde_json::to_value(deciding(&p)));
    let (Ok(then), Ok(now)) = (then, serde_json::to_value(deciding(&item.request.params))) else {
        return legacy();
    };
    let changed: Vec<String> = now
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| then.get(k.as_str()) != Some(v))
        .map(|(k, v)| format!("`{k}` {} then, {v} now", then.get(k.as_str()).unwrap_or(&serde_json::Value::Null)))
        .collect();
    match changed.is_empty() {
        true if item.at.is_empty() => "another prompt text".to_string(),
        true => format!(
            "the prompt of id {id} ({}) is not the one that line was written for, or stands at another place",
            item.at
        ),
        false => format!("id {id}: {} (from the flags, or the prompt line's own values)", changed.join(", ")),
    }
}

/// Sets `todo` to what an earlier run in `out` left to do, and returns its lines to keep, in their
/// order. A prompt whose samples `0..k` are there continues from sample `k` (all of them: it is done;
/// some: a kill cut its group short, or `-n` was raised); samples after a gap are made again. A
/// prompt with more samples there than it now asks for is refused: dropping them would lose work.
fn continue_from(
    out: &Path,
    items: &[Item],
    keys: &[String],
    lines: &[Earlier],
    todo: &mut Vec<(usize, Request)>,
) -> anyhow::Result<Vec<String>> {
    let mut have: HashMap<&str, HashSet<usize>> = HashMap::new();
    for l in lines {
        have.entry(l.key.as_str()).or_default().insert(l.index);
    }
    let mut from: HashMap<&str, usize> = HashMap::new();
    for (item, key) in items.iter().zip(keys) {
        let got = have.get(key.as_str());
        let k = (0..).take_while(|i| got.is_some_and(|g| g.contains(i))).count();
        if let Some(most) = got.and_then(|g| g.iter().max()).filter(|&&m| m >= item.request.n) {
            bail!(
                "{} holds {} samples of id {} and this command asks for {} (`-n` or the prompt line's `n`): ask for \
                 {} or more to continue that run, or give another --out",
                out.display(),
                most + 1,
                item.id,
                item.request.n,
                most + 1
            );
        }
        from.insert(key.as_str(), k);
    }
    let mut kept = Vec::new();
    let mut seen: HashSet<(&str, usize)> = HashSet::new();
    for l in lines {
        if l.index < from[l.key.as_str()] && seen.insert((l.key.as_str(), l.index)) {
            kept.push(l.line.clone());
        }
    }
    let prompts = items.len();
    let mut done = 0;
    let mut resumed = 0;
    todo.clear();
    for (i, (item, key)) in items.iter().zip(keys).enumerate() {
        let k = from[key.as_str()];
        match k >= item.request.n {
            true => done += 1,
            false => {
                resumed += usize::from(k > 0);
                todo.push((i, Request { first: k, n: item.request.n - k, ..item.request.clone() }));
            }
        }
    }
    let samples: usize = todo.iter().map(|(_, r)| r.n).sum();
    let s = |n: usize| if n == 1 { "" } else { "s" };
    match (done, resumed) {
        (0, 0) => {}
        (_, 0) => eprintln!(
            "{done} of {prompts} prompts already have their samples in {}; generating the other {}",
            out.display(),
            todo.len()
        ),
        _ => eprintln!(
            "{done} of {prompts} prompts already have all their samples in {}, {resumed} some of theirs; generating \
             the {samples} sample{} missing",
            out.display(),
            s(samples)
        ),
    }
    Ok(kept)
}

/// Writes one line per sample, `group` requests per `generate` call, to `--out` or stdout. With
/// `--out`, an earlier run's finished prompts are kept and skipped. A signal stops it between groups.
fn write_jsonl(
    items: &[Item],
    args: &GenerateArgs,
    model_id: &str,
    group: usize,
    mut generate: impl FnMut(&[Request]) -> anyhow::Result<Vec<Vec<Completion>>>,
) -> anyhow::Result<crate::cli::Outcome> {
    let identity = unitcoder::engine::remote::model_identity(model_id);
    let keys: Vec<String> = items.iter().enumerate().map(|(at, item)| request_key(&identity, at, item)).collect();
    // Keys earlier versions wrote: the whole request, and for a server model its address.
    let mut legacy: Vec<String> = items.iter().enumerate().map(|(at, item)| legacy_key(&identity, at, item)).collect();
    if identity != model_id {
        legacy.extend(items.iter().enumerate().map(|(at, item)| legacy_key(model_id, at, item)));
    }
    // What is left to generate: each prompt's request, from the first sample not yet on disk.
    let mut todo: Vec<(usize, Request)> = items.iter().map(|item| item.request.clone()).enumerate().collect();
    // A file this command creates and then writes nothing to (the model failed its first call) is
    // removed again, not left empty.
    let fresh = args.out.as_deref().filter(|p| !p.exists());
    let mut out: Box<dyn Write> = match &args.out {
        // A device or pipe (`--out /dev/stdout`) is written as it is: there is nothing to continue.
        Some(p) if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) => {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("{}: cannot open", p.display()))?;
            Box::new(std::io::BufWriter::new(file))
        }
        Some(p) => {
            super::create_parent(p)?;
            let wanted: HashMap<&str, &str> =
                keys.iter().chain(&legacy).zip(keys.iter().cycle()).map(|(k, to)| (k.as_str(), to.as_str())).collect();
            let b = base_params(args);
            let asks = format!(
                "model {identity}; --max-tokens {}, --temperature {}, --top-p {}, --top-k {}, --seed {}, -n {}, \
                 before a prompt line's own values",
                b.max_tokens, b.temperature, b.top_p, b.top_k, b.seed, args.n
            );
            let kept = match earlier_lines(p, &wanted, |line| mismatch(line, items, &identity, &asks))? {
                Some(lines) => continue_from(p, items, &keys, &lines, &mut todo)?,
                None => Vec::new(),
            };
            let mut text = String::new();
            for l in &kept {
                text.push_str(l);
                text.push('\n');
            }
            // Rewritten whole (without the samples that are generated again) before anything is appended.
            unitcoder::atomic_file::write(p, text.as_bytes())
                .with_context(|| format!("{}: cannot write", p.display()))?;
            let file = std::fs::OpenOptions::new()
                .append(true)
                .open(p)
                .with_context(|| format!("{}: cannot open", p.display()))?;
            Box::new(std::io::BufWriter::new(file))
        }
        None => Box::new(std::io::stdout().lock()),
    };
    // Ctrl-C / SIGTERM: the group in flight is answered and written, then the command stops.
    let interrupt = super::interrupt::Interrupt::install()?;
    let cancel = interrupt.flag();
    let total = todo.len();
    let mut written = 0;
    let place = args.out.as_ref().map_or("stdout".to_string(), |p| p.display().to_string());
    // Groups of about `group` samples (not prompts: with `-n 20` a group of 32 prompts would be 640
    // samples, minutes before Ctrl-C takes effect and lost whole to a kill).
    let mut groups: Vec<Vec<&(usize, Request)>> = Vec::new();
    let mut rows = 0;
    for t in &todo {
        if rows >= group || groups.is_empty() {
            groups.push(Vec::new());
            rows = 0;
        }
        groups.last_mut().expect("a group").push(t);
        rows += t.1.n;
    }
    // A plain `progress:` line every 30 s off a terminal, a bar on one (stderr: stdout may be the output).
    use unitcoder::progress::Reporter;
    let bars = super::progress::Bars::new();
    bars.begin("generate", Some(total as u64));
    for group in &groups {
        if cancel.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let requests: Vec<Request> = group.iter().map(|(_, r)| r.clone()).collect();
        let completions = match generate(&requests) {
            Ok(c) => c,
            Err(e) => {
                if let (0, Some(p)) = (written, fresh) {
                    drop(out);
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        };
        for (&&(i, ref request), samples) in group.iter().zip(completions) {
            for (k, c) in samples.into_iter().enumerate() {
                // The model and settings say what made the sample, and why a rerun refuses the line.
                let line = serde_json::json!({
                    "id": items[i].id, "index": request.first + k, "text": c.text, "finish": c.finish,
                    "prompt_tokens": c.prompt_tokens, "generated_tokens": c.generated_tokens,
                    "model": identity, "params": request.params, "request_key": keys[i],
                });
                writeln!(out, "{line}").with_context(|| format!("writing {place}"))?;
            }
        }
        out.flush().with_context(|| format!("writing {place}"))?;
        written += group.len();
        bars.advance("generate", group.len() as u64);
    }
    bars.end("generate");
    if let (Some(signal), true) = (interrupt.signal(), written < total) {
        let whole = items.len() - (total - written);
        eprintln!(
            "generate interrupted by {}: {whole} of {} prompts have their samples in {place}{}",
            super::interrupt::name(signal),
            items.len(),
            if args.out.is_some() { "; rerun the same command to continue" } else { "" }
        );
        return Ok(crate::cli::Outcome::Interrupted(signal));
    }
    Ok(crate::cli::Outcome::Success)
}

/// Sizes candle's own CPU thread pools to `threads`. The engine runs its forward pass on a rayon pool
/// of `--threads` threads, and candle's gemm splits the attention matmuls over that pool, but candle
/// 0.11 also keeps a separate spinning "barrier pool" for elementwise ops, softmax and its quantized
/// matmuls, and asks how many threads gemm may use. It sizes both only from the environment
/// (`CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the physical core count; no API), read
/// once on first use: so the CLI sets the variables here, before any engine starts, and the library
/// never touches the environment. Without them, candle would spin one thread per core next to our pool.
fn set_candle_threads(threads: usize) {
    std::env::set_var("CANDLE_NUM_THREADS", threads.to_string());
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
}

/// Where and how wide the in-process engine runs (`generate`, `eval run`, `synth`); a server model
/// ignores them.
#[derive(Args, Debug, Clone)]
pub struct RuntimeArgs {
    /// cpu, cuda or metal (GPU devices need the matching cargo feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// CPU threads for the forward pass (default: one per available core).
    #[arg(long, value_parser = super::parse::threads)]
    pub threads: Option<usize>,
    /// Most rows (prompts x samples) the engine decodes together.
    #[arg(long, default_value_t = 16, value_parser = super::parse::positive_usize)]
    pub max_batch: usize,
}

impl RuntimeArgs {
    /// Sizes candle's thread pools to `--threads`, before any engine starts.
    pub fn size_thread_pools(&self) {
        if let Some(t) = self.threads {
            set_candle_threads(t.max(1));
        }
    }

    /// The load settings of `weights` on this device, with these threads and batch.
    pub fn load<'a>(&'a self, weights: &'a WeightArgs) -> LoadArgs<'a> {
        let (device, max_batch, threads) = (self.device.as_str(), self.max_batch, self.threads.unwrap_or(0));
        LoadArgs { device, max_batch, threads, ..LoadArgs::new(weights) }
    }
}

/// The flags that change the weights a model is loaded with (`generate`, `eval run`, `synth`).
#[derive(Args, Debug, Clone)]
pub struct WeightArgs {
    /// A PEFT LoRA adapter to apply: a directory with adapter_config.json and adapter_model.safetensors,
    /// or hf:ORG/REPO (repeatable: adapters add up). Merged into safetensors weights; run next to
    /// quantized GGUF weights. Recorded in the model id as +lora:NAME@HASH.
    #[arg(long, value_name = "DIR")]
    pub lora: Vec<String>,
    /// Quantize the model's dense weights at load: q8_0 (8-bit blocks, as GGUF's Q8_0; about half the
    /// memory of bf16). Recorded in the model id as +q8_0. GGUF's quantized tensors stay as they are.
    #[arg(long, value_name = "TYPE", value_parser = super::parse::quantize)]
    pub quantize: Option<Quantize>,
    /// Round activations as llama.cpp does before quantized products (one scale per 256 values
    /// against K-quant weights, f16 scales against the others) instead of one f32 scale per 32
    /// values, for comparisons with llama.cpp: the rounding error is then llama.cpp's (the outputs
    /// still part from llama.cpp's at near-ties). The default is closer to the unquantized model.
    /// Recorded in the model id as +llama-cpp-acts.
    #[arg(long, conflicts_with = "dequantize")]
    pub llama_cpp_activations: bool,
    /// Widen a GGUF's quantized weights to f32 at load and multiply in f32, so activations are not
    /// rounded to int8 either: the model the file encodes (as llama.cpp computes an f32 copy of the
    /// file), the reference that quantized products are measured against. About 6x the memory of a
    /// 4-bit file (7 GB for the default card) and slower. Recorded in the model id as +f32.
    #[arg(long, conflicts_with = "quantize")]
    pub dequantize: bool,
    // Not a weight setting, but every command that loads a model flattens these flags, so a card
    // directory is accepted wherever `--model` is.
    #[arg(long, value_name = "DIR", help = super::models::MODELS_DIR_HELP)]
    pub models_dir: Option<PathBuf>,
}

impl WeightArgs {
    /// Both flags apply to weights this process loads: with a server model, a usage error (exit 2)
    /// naming the subcommand `path`.
    pub fn refuse_for_server(&self, path: &[&str], model: &str) {
        super::server::refuse_lora(path, model, &self.lora);
        super::server::refuse_quantize(path, model, self.quantize);
        if self.llama_cpp_activations && super::server::is_server(model) {
            super::parse::usage_error(
                path,
                "--llama-cpp-activations applies to models loaded in-process; a server rounds as it does",
            );
        }
        if self.dequantize && super::server::is_server(model) {
            super::parse::usage_error(path, "--dequantize applies to models loaded in-process, not to a server");
        }
    }

    /// The kernels these flags ask for.
    pub fn kernels(&self) -> MatmulKernels {
        if self.dequantize {
            MatmulKernels::Dequantized
        } else if self.llama_cpp_activations {
            MatmulKernels::LlamaCppActivations
        } else {
            MatmulKernels::Auto
        }
    }
}

/// What every subcommand that loads a model says about loading it.
pub struct LoadArgs<'a> {
    /// `--lora` names (directories or hf:ORG/REPO).
    pub lora: &'a [String],
    pub quantize: Option<Quantize>,
    /// `--device`.
    pub device: &'a str,
    pub max_batch: usize,
    /// CPU threads for the forward pass (0: one per available core).
    pub threads: usize,
    pub kernels: MatmulKernels,
    /// `--models-dir`: extra model cards (else `UNITCODER_MODELS_DIR`).
    pub models_dir: Option<&'a Path>,
}

impl<'a> LoadArgs<'a> {
    /// `weights` with the other flags' defaults: the CPU, batches of 16, a thread per core and the
    /// engine's kernels (rounding activations as `weights` asks).
    pub fn new(weights: &'a WeightArgs) -> Self {
        let (lora, quantize) = (&weights.lora[..], weights.quantize);
        let models_dir = weights.models_dir.as_deref();
        LoadArgs { lora, quantize, device: "cpu", max_batch: 16, threads: 0, kernels: weights.kernels(), models_dir }
    }
}

/// Loads `model` through the library's one loader ([`unitcoder::engine::load`]): a server when it is
/// `openai:...` (`chat: false` makes the served model a base model), else the in-process engine,
/// fetching it into the cache if needed (progress to `reporter`).
pub fn load_model(
    model: &str,
    load: &LoadArgs,
    server: &super::server::ServerArgs,
    chat: bool,
    reporter: &dyn unitcoder::progress::Reporter,
) -> anyhow::Result<LoadedModel> {
    let mut options = LoadOptions::new(super::models::model_settings(load.models_dir.map(Path::to_path_buf), None)?);
    options.server = server.options(chat);
    options.lora = load.lora.to_vec();
    // The device means nothing to a server model, so it is not checked for one.
    if !unitcoder::engine::load::is_server(model) {
        let device = unitcoder::engine::device::parse_device(load.device)?;
        let (max_batch, threads, kernels, quantize) = (load.max_batch, load.threads, load.kernels, load.quantize);
        options.engine = EngineOptions { device, max_batch, threads, kernels, quantize, ..EngineOptions::default() };
    }
    Ok(unitcoder::engine::load(model, options, reporter)?)
}
