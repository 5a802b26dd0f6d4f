//! The run loop: the model thread batching requests across records, a sandbox thread pool fed by a
//! channel, the caches, and the record files (see the parent module for the design).

use super::item::{Action, Ctx, Exec, Item};
use super::ticker::Ticker;
use super::{SynthError, SynthSettings};
use crate::engine::remote::model_identity;
use crate::engine::{Completion, Generator, Request};
use crate::pipeline::journal::{key, Cache, Journal};
use crate::pipeline::prompts::Template;
use crate::pipeline::quality::mutant_timeout;
use crate::pipeline::record::{AttemptKind, Record};
use crate::pipeline::run_dir::{RunDir, RunTimings};
use crate::progress::Reporter;
use crate::sandbox::{Job, Limits, Sandbox, Verdict};
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Least seconds between refreshes of `stats.json` during a run; a refresh reads the record files,
/// so the gap also grows to 20 times what the last refresh took.
const STATS_EVERY_S: f64 = 60.0;

const TASKS: [&str; 3] = ["synth: tests", "synth: run+fix", "synth: polish"];

struct Pending {
    item: usize,
    template: Template,
    round: u32,
    request: Request,
}

struct Run<'a> {
    ctx: Ctx<'a>,
    gen: &'a dyn Generator,
    reporter: &'a dyn Reporter,
    items: Vec<Item>,
    queue: VecDeque<Pending>,
    ready: VecDeque<(usize, Exec, Verdict)>,
    jobs: mpsc::Sender<(usize, Exec, Job, Option<String>)>,
    verdicts: mpsc::Receiver<(usize, Exec, Verdict)>,
    in_sandbox: usize,
    limits: Limits,
    model_cache: Cache<Vec<Completion>>,
    exec_cache: Cache<Verdict>,
    accepted: Journal,
    rejected: Journal,
    t: RunTimings,
    dir: &'a RunDir,
    ticker: &'a Ticker<'a>,
    next_stats: Instant,
}

/// Runs stages 2–4 on `records` (retrieved, in a deterministic order) into `dir`, resuming a run
/// that stopped: records whose id is already in the output files are skipped. Records that arrive
/// rejected (by decontamination, or for a library the sandbox lacks) go to `rejected.jsonl` as they are.
pub fn synthesize(
    records: Vec<Record>,
    gen: &dyn Generator,
    sandbox: &Sandbox,
    settings: &SynthSettings,
    dir: &RunDir,
    reporter: &dyn Reporter,
) -> Result<RunTimings, SynthError> {
    let started = Instant::now();
    let (accepted, done_a) = Journal::open::<Record>(&dir.records())?;
    let (mut rejected, done_r) = Journal::open::<Record>(&dir.rejected())?;
    let mut done: HashSet<String> = done_a.into_iter().chain(done_r).map(|r| r.id).collect();
    let (timings, _) = Journal::open::<RunTimings>(&dir.timings())?;
    let run_id = format!(
        "{}-{}",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis()),
        std::process::id()
    );
    let mut t = RunTimings { run: run_id, ended: false, ..RunTimings::default() };
    let mut items = Vec::new();
    for r in records {
        if !done.insert(r.id.clone()) {
            t.skipped_done += 1;
        } else if r.is_rejected() {
            // Dropped before stage 2 (decontamination, a missing library): saved with its reason, so
            // the statistics count it.
            rejected.append(&r)?;
            t.finished += 1;
        } else {
            items.push(Item::new(r));
        }
    }
    // The last field names the function whose coverage a traced run measures.
    let (job_tx, job_rx) = mpsc::channel::<(usize, Exec, Job, Option<String>)>();
    let (v_tx, v_rx) = mpsc::channel();
    let job_rx = Mutex::new(job_rx);
    let model_cache = Cache::open(&dir.model_cache())?;
    let exec_cache = Cache::open(&dir.exec_cache())?;
    warn_skipped(&model_cache, reporter);
    warn_skipped(&exec_cache, reporter);
    let idle_us = AtomicU64::new(0);
    let workers = sandbox.config().jobs.max(1);
    let ctx = Ctx { settings, model_id: gen.model_id(), chat: gen.has_chat_template() };
    let ticker = Ticker::new(t.clone(), timings, started, &idle_us);
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let result = std::thread::scope(|s| {
        let ticker = &ticker;
        // Snapshots at least every 50 ms apart, however small the setting.
        let every = Duration::from_secs_f64(settings.checkpoint_s.max(0.05));
        let ticking = s.spawn(move || ticker.tick(every, stop_rx));
        for _ in 0..workers {
            let (job_rx, v_tx, idle_us, cancel) = (&job_rx, v_tx.clone(), &idle_us, &settings.cancel);
            s.spawn(move || loop {
                let waiting = Instant::now();
                let next = match job_rx.lock() {
                    Ok(rx) => rx.recv(),
                    Err(_) => break,
                };
                idle_us.fetch_add(waiting.elapsed().as_micros() as u64, Ordering::Relaxed);
                let Ok((item, exec, job, traced)) = next else { break };
                // Queued jobs are not started once the run is stopped: nothing would take their verdicts.
                if cancel.load(Ordering::SeqCst) {
                    break;
                }
                let verdict = match traced {
                    Some(function) => sandbox.run_traced(&job, &function),
                    None => sandbox.run(&job),
                };
                if v_tx.send((item, exec, verdict)).is_err() {
                    break;
                }
            });
        }
        drop(v_tx);
        let mut run = Run {
            ctx,
            gen,
            reporter,
            items,
            queue: VecDeque::new(),
            ready: VecDeque::new(),
            jobs: job_tx,
            verdicts: v_rx,
            in_sandbox: 0,
            limits: sandbox.config().limits.clone(),
            model_cache,
            exec_cache,
            accepted,
            rejected,
            t,
            dir,
            ticker,
            next_stats: Instant::now() + Duration::from_secs_f64(STATS_EVERY_S),
        };
        let r = run.main();
        // The ticker stops before the last line, so no snapshot follows it.
        drop(stop_tx);
        let _ = ticking.join();
        ticker.publish(&run.t, false);
        // The last line is written also when the run fails, so its time is not lost.
        let last = ticker.write(true);
        // Dropping `run` closes the job channel, so the workers finish.
        r.and(last.map_err(SynthError::from))
    });
    let t = result?;
    for task in TASKS {
        reporter.end(task);
    }
    Ok(t)
}

/// One warning per cache file that had unreadable lines (each is redone, so none stops the run).
fn warn_skipped<V>(cache: &Cache<V>, reporter: &dyn Reporter)
where
    V: serde::Serialize + serde::de::DeserializeOwned + Clone,
{
    let skipped = cache.skipped();
    let Some(first) = skipped.first() else { return };
    let lines = match skipped.len() {
        1 => format!("line {}: {}", first.line, first.problem),
        n => {
            let shown: Vec<String> = skipped.iter().take(5).map(|s| s.line.to_string()).collect();
            let more = if n > 5 { format!(" and {} more", n - 5) } else { String::new() };
            format!("lines {}{more} are unreadable (line {}: {})", shown.join(", "), first.line, first.problem)
        }
    };
    reporter.note(&format!(
        "warning: {} {lines}; skipped: it is a cache, so what it held is asked or run again",
        cache.path().display()
    ));
}

impl Run<'_> {
    /// Publishes the counters for the ticker and refreshes `stats.json` when due.
    fn checkpoint(&mut self) -> Result<(), SynthError> {
        self.ticker.publish(&self.t, false);
        if Instant::now() >= self.next_stats {
            let took = Instant::now();
            crate::pipeline::emit::write_stats(self.dir, None)?;
            let gap = STATS_EVERY_S.max(20.0 * took.elapsed().as_secs_f64());
            self.next_stats = Instant::now() + Duration::from_secs_f64(gap);
        }
        Ok(())
    }

    fn main(&mut self) -> Result<(), SynthError> {
        let n = self.items.len() as u64;
        for task in TASKS {
            self.reporter.begin(task, Some(n));
        }
        for i in 0..self.items.len() {
            let actions = self.items[i].start(&self.ctx);
            self.act(i, actions)?;
        }
        loop {
            self.check_cancel()?;
            while let Some((i, exec, v)) = self.ready.pop_front() {
                self.on_verdict(i, exec, v)?;
            }
            while let Ok((i, exec, v)) = self.verdicts.try_recv() {
                self.in_sandbox -= 1;
                self.remember(i, exec, v)?;
            }
            if !self.ready.is_empty() {
                continue;
            }
            self.checkpoint()?;
            self.check_cancel()?;
            if !self.queue.is_empty() {
                let take = self.ctx.settings.batch.max(1).min(self.queue.len());
                let batch: Vec<Pending> = self.queue.drain(..take).collect();
                self.generate(batch)?;
                continue;
            }
            if self.in_sandbox == 0 {
                return Ok(());
            }
            let waiting = Instant::now();
            let got = self.verdicts.recv();
            self.t.model_waited_s += waiting.elapsed().as_secs_f64();
            let (i, exec, v) = got.map_err(|_| SynthError::SandboxStopped)?;
            self.in_sandbox -= 1;
            self.remember(i, exec, v)?;
        }
    }

    fn exec_key(&self, i: usize, exec: &Exec) -> String {
        let tests = exec.tests.as_deref().or(self.items[i].rec.tests.as_ref().map(|t| t.code.as_str()));
        let env = &self.ctx.settings.environment;
        // Keys made before the environment was part of them stay valid where none is given.
        let env: &[&str] = if env.is_empty() { &[] } else { &[env.as_str()] };
        match exec.kind {
            // A traced run's verdict carries coverage; the same program's plain verdict does not.
            AttemptKind::Coverage => {
                key(&[&[exec.program.as_str(), tests.unwrap_or(""), "coverage"][..], env].concat())
            }
            _ => key(&[&[exec.program.as_str(), tests.unwrap_or("")][..], env].concat()),
        }
    }

    /// Stops the run when the caller asked.
    fn check_cancel(&self) -> Result<(), SynthError> {
        if self.ctx.settings.cancel.load(Ordering::SeqCst) {
            return Err(SynthError::Interrupted);
        }
        Ok(())
    }

    /// Caches a fresh verdict, then handles it.
    fn remember(&mut self, i: usize, exec: Exec, v: Verdict) -> Result<(), SynthError> {
        // A verdict that ends after the stop is not trusted: the signal that stopped the run may
        // have reached the program too (a terminal's Ctrl-C goes to its whole process group).
        self.check_cancel()?;
        self.t.executions += 1;
        let seconds = v.duration_ms as f64 / 1000.0;
        self.t.exec_s += seconds;
        if matches!(exec.kind, AttemptKind::Mutant | AttemptKind::Coverage) {
            self.t.quality_executions += 1;
            self.t.quality_exec_s += seconds;
        }
        let k = self.exec_key(i, &exec);
        self.exec_cache.put(k, v.clone())?;
        self.on_verdict(i, exec, v)
    }

    fn on_verdict(&mut self, i: usize, exec: Exec, v: Verdict) -> Result<(), SynthError> {
        let kind = exec.kind;
        let actions = self.items[i].on_verdict(&self.ctx, exec, v);
        if kind == AttemptKind::Vacuity && self.items[i].rec.rejected.is_none() {
            self.reporter.advance(TASKS[1], 1);
        }
        self.act(i, actions)
    }

    fn generate(&mut self, batch: Vec<Pending>) -> Result<(), SynthError> {
        // Answers are keyed by what the model is, not where it was asked: a server restarted on
        // another port, or another node's server, still finds them. Caches written before were
        // keyed by the model id as given, which is looked up too.
        let identity = model_identity(&self.ctx.model_id);
        let keys_for = |model: &str| -> Vec<String> {
            let keys = batch.iter().map(|p| {
                let request = serde_json::to_string(&p.request).unwrap_or_default();
                key(&[model, &self.ctx.settings.prompts.hash(p.template), &request])
            });
            keys.collect()
        };
        let keys = keys_for(&identity);
        let legacy = (identity != self.ctx.model_id).then(|| keys_for(&self.ctx.model_id));
        for (j, k) in keys.iter().enumerate() {
            let old = legacy.as_ref().map(|l| &l[j]);
            if let Some(samples) =
                old.filter(|_| self.model_cache.get(k).is_none()).and_then(|o| self.model_cache.get(o))
            {
                let samples = samples.clone();
                self.model_cache.put(k.clone(), samples)?;
            }
        }
        let missing: Vec<usize> = (0..batch.len()).filter(|&j| self.model_cache.get(&keys[j]).is_none()).collect();
        self.t.model_calls_cached += (batch.len() - missing.len()) as u64;
        if !missing.is_empty() {
            let requests: Vec<Request> = missing.iter().map(|&j| batch[j].request.clone()).collect();
            let started = Instant::now();
            self.ticker.publish(&self.t, true);
            let answers = self.gen.generate(&requests)?;
            self.t.model_s += started.elapsed().as_secs_f64();
            self.t.model_calls += missing.len() as u64;
            for (&j, samples) in missing.iter().zip(answers) {
                self.t.tokens += samples.iter().map(|c| c.generated_tokens as u64).sum::<u64>();
                self.model_cache.put(keys[j].clone(), samples)?;
            }
        }
        for (p, k) in batch.into_iter().zip(keys) {
            let replies = self.model_cache.get(&k).cloned().unwrap_or_default();
            let actions = self.items[p.item].on_reply(&self.ctx, p.template, p.round, &replies);
            if p.template == Template::Tests && p.round == 0 {
                self.reporter.advance(TASKS[0], 1);
            }
            self.act(p.item, actions)?;
        }
        Ok(())
    }

    fn act(&mut self, i: usize, actions: Vec<Action>) -> Result<(), SynthError> {
        for a in actions {
            match a {
                Action::Generate { template, round, request } => {
                    let p = Pending { item: i, template, round, request };
                    // Later stages first, so records finish (and are saved) early.
                    if template == Template::Tests && round == 0 {
                        self.queue.push_back(p);
                    } else {
                        self.queue.push_front(p);
                    }
                }
                Action::Execute(exec) => {
                    let k = self.exec_key(i, &exec);
                    if let Some(v) = self.exec_cache.get(&k) {
                        self.t.executions_cached += 1;
                        self.ready.push_back((i, exec, v.clone()));
                        continue;
                    }
                    let rec = &self.items[i].rec;
                    let limits = (exec.kind == AttemptKind::Mutant).then(|| {
                        // A mutant's time limit follows the verified program's run time.
                        let verified_ms =
                            rec.attempts.iter().filter(|a| a.verdict.passed()).map(|a| a.verdict.duration_ms);
                        let timeout = mutant_timeout(verified_ms.max().unwrap_or(0), self.limits.timeout);
                        Limits { timeout, ..self.limits.clone() }
                    });
                    let traced = (exec.kind == AttemptKind::Coverage).then(|| rec.function.name.clone());
                    let job = Job::new(
                        format!("{}/{:?}/{}/{}", rec.id, exec.kind, exec.round, exec.sample),
                        exec.program.clone(),
                        exec.tests.clone().or(rec.tests.as_ref().map(|t| t.code.clone())).unwrap_or_default(),
                    )
                    .with_limits(limits)
                    // Model-written tests: caught and tautological assertions do not verify.
                    .with_strict_assertions();
                    self.jobs.send((i, exec, job, traced)).map_err(|_| SynthError::SandboxStopped)?;
                    self.in_sandbox += 1;
                }
                Action::Finish => self.finish(i)?,
                Action::Abort(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn finish(&mut self, i: usize) -> Result<(), SynthError> {
        let rec = &self.items[i].rec;
        if rec.is_rejected() {
            self.rejected.append(rec)?;
        } else {
            self.accepted.append(rec)?;
            self.reporter.advance(TASKS[2], 1);
        }
        self.t.finished += 1;
        // Free the memory of a finished record's attempts.
        self.items[i].rec.attempts.clear();
        Ok(())
    }
}
