//! Value parsers for numeric flags, so that nonsense (`--top-p 2`, `-k 0`, a negative temperature) is
//! a usage error from clap (exit 2, with the flag named) instead of a silent odd run, and the checks
//! that relate two flags (`--min-lines` <= `--max-lines`), which clap cannot express per value. Each
//! range is one `check_*` function on the parsed value, so a value read from a file (a `--prompts`
//! line's overrides) is held to the same rule as the flag.

use clap::error::ErrorKind;
use clap::CommandFactory;
use unitcoder::engine::models::linear::Quantize;
use unitcoder::pipeline::retrieve::Decontamination;

fn number<T: std::str::FromStr>(s: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    s.trim().parse::<T>().map_err(|e| format!("`{s}` is not a number: {e}"))
}

/// A `--quantize` type (q8_0).
pub fn quantize(s: &str) -> Result<Quantize, String> {
    Quantize::from_name(s.trim()).ok_or_else(|| {
        let all: Vec<&str> = Quantize::ALL.iter().map(|q| q.name()).collect();
        format!("unknown quantization `{s}` (supported: {})", all.join(", "))
    })
}

/// An integer of at least 1 (sample counts, k of pass@k, workers, batch sizes).
pub fn positive_usize(s: &str) -> Result<usize, String> {
    // A negative number is a number out of range, not "invalid digit" as usize's parser says.
    match s.trim().parse::<i64>() {
        Ok(n) if n < 1 => Err(format!("must be at least 1, got {n}")),
        _ => check_positive_usize(number(s)?),
    }
}

/// A count of at least 1 (`--limit`), said as such for 0 or a negative number (clap's own range
/// check says "0 is not in 1..18446744073709551615", and u64's parser "invalid digit" for `-1`).
pub fn positive_u64(s: &str) -> Result<u64, String> {
    positive_usize(s).map(|n| n as u64)
}

/// [`positive_u64`] for 32-bit counts (`--samples`, `--tests-samples`).
pub fn positive_u32(s: &str) -> Result<u32, String> {
    let n = positive_usize(s)?;
    u32::try_from(n).map_err(|_| format!("must be at most {}, got {n}", u32::MAX))
}

/// Why an empty stop string is refused.
pub const EMPTY_STOP: &str = "an empty stop string would stop every answer before its first token";

/// `--stop`: any string but the empty one.
pub fn stop_string(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err(EMPTY_STOP.into());
    }
    Ok(s.to_string())
}

/// The cores this process may use.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `--jobs`: sandbox workers, each a Python server with its own process tree. At least 1 and at
/// most 8 per core (16 at least): `--jobs 1000` started hundreds of interpreters on 2 cores and
/// stalled the machine for minutes before anything ran.
pub fn workers(s: &str) -> Result<usize, String> {
    let n = positive_usize(s)?;
    let most = (8 * cores()).max(16);
    if n > most {
        return Err(format!("at most {most} here (8 per core, {} cores), got {n}", cores()));
    }
    Ok(n)
}

/// `--threads`: compute threads of the forward pass. At least 1 and at most 4 per core: more only
/// contend for the same cores (`--threads 100000` never finished starting).
pub fn threads(s: &str) -> Result<usize, String> {
    let n = positive_usize(s)?;
    let most = 4 * cores();
    if n > most {
        return Err(format!("at most {most} here (4 per core, {} cores), got {n}", cores()));
    }
    Ok(n)
}

/// The first existing path among `path` and its ancestors that is not a directory, if any: the
/// place where creating `path` (or its parent directory) would fail with the OS's bare "File
/// exists" or "Not a directory".
fn file_in_the_way(path: &std::path::Path, including_self: bool) -> Option<std::path::PathBuf> {
    let mut at = if including_self { Some(path) } else { path.parent() };
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
        // `metadata` follows links, as creating a directory through one does.
        if let Ok(m) = std::fs::metadata(p) {
            return (!m.is_dir()).then(|| p.to_path_buf());
        }
        at = p.parent();
    }
    None
}

/// `--out DIR`: a directory, new or existing. A path that names a file, or lies under one, is a
/// usage error naming that file, before any work starts.
pub fn out_dir(s: &str) -> Result<std::path::PathBuf, String> {
    if s.is_empty() {
        return Err("an empty path".into());
    }
    let path = std::path::PathBuf::from(s);
    match file_in_the_way(&path, true) {
        Some(f) if f == path => Err(format!("{s} is a file, not a directory; name a new or existing directory")),
        Some(f) => Err(format!("{} is a file, so no directory can be made under it", f.display())),
        None => Ok(path),
    }
}

/// `--out FILE`: a file to write, new or existing. An existing directory, or a path under a file,
/// is a usage error before any work starts.
pub fn out_file(s: &str) -> Result<std::path::PathBuf, String> {
    if s.is_empty() {
        return Err("an empty path".into());
    }
    let path = std::path::PathBuf::from(s);
    if path.is_dir() {
        return Err(format!(
            "{s} is a directory; name a file to write (for example {}/out.jsonl)",
            s.trim_end_matches('/')
        ));
    }
    match file_in_the_way(&path, false) {
        Some(f) => Err(format!("{} is a file, so no directory can be made under it", f.display())),
        None => Ok(path),
    }
}

/// The rule of [`positive_usize`] on a value already parsed.
pub fn check_positive_usize(n: usize) -> Result<usize, String> {
    match n {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A finite number above 0 (time limits, time factors).
pub fn positive_f64(s: &str) -> Result<f64, String> {
    let v = number::<f64>(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive number, got {v}"))
    }
}

/// The longest time limit a sandboxed run takes, in seconds: a day. The sandbox counts in
/// milliseconds that must fit a C int (24.8 days), and a longer limit is a typo, not a plan.
pub const MAX_TIMEOUT_SECS: f64 = 86_400.0;

/// A sandbox time limit in seconds: above 0 and at most [`MAX_TIMEOUT_SECS`].
pub fn timeout_secs(s: &str) -> Result<f64, String> {
    check_timeout_secs(number::<f64>(s)?)
}

/// [`timeout_secs`]'s rule, for limits read from files too.
pub fn check_timeout_secs(v: f64) -> Result<f64, String> {
    if !(v.is_finite() && v > 0.0) {
        Err(format!("must be a positive number of seconds, got {v}"))
    } else if v > MAX_TIMEOUT_SECS {
        Err(format!("must be at most {MAX_TIMEOUT_SECS} seconds (a day), got {v}"))
    } else {
        Ok(v)
    }
}

/// A finite number of at least 0 (temperatures: 0 is greedy).
pub fn non_negative_f32(s: &str) -> Result<f32, String> {
    check_non_negative_f32(number(s)?)
}

/// The rule of [`non_negative_f32`] on a value already parsed.
pub fn check_non_negative_f32(v: f32) -> Result<f32, String> {
    if !v.is_finite() {
        Err(format!("must be a finite number, got {v}"))
    } else if v >= 0.0 {
        Ok(v)
    } else {
        Err(format!("must be 0 or more, got {v}"))
    }
}

/// A nucleus mass: above 0 and at most 1 (0 would keep no token at all).
pub fn top_p(s: &str) -> Result<f32, String> {
    check_top_p(number(s)?)
}

/// The rule of [`top_p`] on a value already parsed.
pub fn check_top_p(v: f32) -> Result<f32, String> {
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("must be in (0, 1], got {v}"))
    }
}

/// A threshold in [0, 1] (Jaccard similarity).
pub fn unit_interval(s: &str) -> Result<f64, String> {
    let v = number::<f64>(s)?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between 0 and 1, got {v}"))
    }
}

/// A repetition penalty: positive and finite (1.0 is off; the logits are divided by it).
pub fn penalty(s: &str) -> Result<f32, String> {
    let v = number::<f32>(s)?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("must be a positive number (1.0 is off), got {v}"))
    }
}

/// One `--decontaminate` value: `none`, or a benchmark file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecontamArg {
    /// Turn decontamination off.
    None,
    /// A user's benchmark file or directory, checked besides the built-in benchmarks.
    Path(std::path::PathBuf),
}

/// Parses a `--decontaminate` value (`none` is spelled exactly so; `./none` is a path).
pub fn decontam_arg(s: &str) -> Result<DecontamArg, String> {
    match s {
        "" => Err("expected `none` or a benchmark file or directory".into()),
        "none" => Ok(DecontamArg::None),
        path => Ok(DecontamArg::Path(path.into())),
    }
}

/// The help of `--decontaminate`, the same for `retrieve` and `synth`.
pub const DECONTAMINATE_HELP: &str = "Benchmarks to decontaminate against: a function sharing word 13-grams with one \
is dropped (reason `contaminated`). Default: HumanEval(+), MBPP(+) and BigCodeBench, built into the binary as \
n-gram fingerprints. `none` turns decontamination off; a benchmark file or directory (JSONL, JSONL.gz, JSON \
array or Parquet with `prompt`, `complete_prompt`, `canonical_solution` or `code` fields) is checked as well \
as the built-in ones. Repeatable.";

/// Resolves the `--decontaminate` values of `command`: none given is the built-in benchmarks,
/// paths add to them, and `none` (alone) turns decontamination off. Exits with a usage error when
/// `none` is combined with paths.
pub fn decontamination(command: &str, values: &[DecontamArg], ngram: usize) -> Decontamination {
    let paths: Vec<std::path::PathBuf> = values
        .iter()
        .filter_map(|v| match v {
            DecontamArg::Path(p) => Some(p.clone()),
            DecontamArg::None => None,
        })
        .collect();
    let off = values.contains(&DecontamArg::None);
    if off && !paths.is_empty() {
        usage_error(
            &[command],
            "--decontaminate none turns decontamination off; it cannot be combined with benchmark paths",
        );
    }
    Decontamination { builtin: !off, paths, ngram }
}

/// Exits with clap's usage error (exit 2, the subcommand's usage line) when two flags disagree.
pub fn usage_error(path: &[&str], message: impl std::fmt::Display) -> ! {
    let mut cmd = super::Cli::command();
    // Building gives every subcommand its full name ("unitcoder retrieve") for the usage line.
    cmd.build();
    let mut sub = cmd;
    for name in path {
        match sub.find_subcommand(name) {
            Some(s) => sub = s.clone(),
            None => break,
        }
    }
    sub.error(ErrorKind::ArgumentConflict, message).exit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_and_threads_are_bounded_by_the_cores() {
        assert!(workers("0").is_err() && threads("0").is_err());
        assert_eq!(workers("16"), Ok(16));
        assert!(workers("100000").unwrap_err().contains("at most"));
        assert_eq!(threads(&cores().to_string()), Ok(cores()));
        assert!(threads("100000").unwrap_err().contains("per core"));
    }

    #[test]
    fn ranges_reject_what_they_should() {
        assert_eq!(positive_usize("3"), Ok(3));
        assert!(positive_usize("0").is_err() && positive_usize("-1").is_err());
        assert_eq!((positive_u64("20"), positive_u32("3")), (Ok(20), Ok(3)));
        assert_eq!(positive_u64("-1"), Err("must be at least 1, got -1".into()));
        assert_eq!(positive_u32("0"), Err("must be at least 1, got 0".into()));
        assert!(positive_u32("5000000000").unwrap_err().contains("at most 4294967295"));
        assert!(top_p("1").is_ok() && top_p("0.5").is_ok());
        assert!(top_p("2").is_err() && top_p("0").is_err() && top_p("NaN").is_err());
        assert!(non_negative_f32("0").is_ok() && non_negative_f32("-0.1").is_err());
        assert_eq!(non_negative_f32("inf"), Err("must be a finite number, got inf".into()));
        assert_eq!(positive_usize("-5"), Err("must be at least 1, got -5".into()));
        assert!(positive_f64("0").is_err() && positive_f64("inf").is_err() && positive_f64("0.5").is_ok());
        assert!(unit_interval("0").is_ok() && unit_interval("1.5").is_err());
        assert!(penalty("1.1").is_ok() && penalty("0").is_err());
    }

    #[test]
    fn out_paths_name_the_file_in_the_way() {
        let dir = std::env::temp_dir().join(format!("uc-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f.txt");
        std::fs::write(&file, "x").unwrap();
        let (d, f) = (dir.to_str().unwrap(), file.to_str().unwrap());
        assert!(out_dir(d).is_ok() && out_dir(&format!("{d}/new/deeper")).is_ok());
        assert!(out_dir(f).unwrap_err().contains("is a file, not a directory"));
        let under = out_dir(&format!("{f}/run")).unwrap_err();
        assert!(under.contains("f.txt is a file, so no directory"), "{under}");
        assert!(out_file(f).is_ok() && out_file(&format!("{d}/new/x.jsonl")).is_ok());
        assert!(out_file(d).unwrap_err().contains("is a directory"));
        assert!(out_file(&format!("{f}/x.jsonl")).unwrap_err().contains("f.txt is a file"));
        assert!(out_dir("").is_err() && out_file("").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn decontaminate_values() {
        assert_eq!(decontam_arg("none"), Ok(DecontamArg::None));
        assert_eq!(decontam_arg("./none"), Ok(DecontamArg::Path("./none".into())));
        assert!(decontam_arg("").is_err());
        let d = decontamination("synth", &[], 13);
        assert!(d.builtin && d.paths.is_empty());
        assert!(decontamination("synth", &[DecontamArg::None], 13).is_off());
        let mine = decontamination("retrieve", &[DecontamArg::Path("b".into())], 9);
        assert_eq!((mine.builtin, mine.paths.len(), mine.ngram), (true, 1, 9));
    }
}
