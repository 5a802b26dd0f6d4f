//! The dataset card: `dataset/README.md`, rewritten with the derived files at every finalize. Its
//! YAML header makes the folder a Hugging Face dataset — `datasets.load_dataset(FOLDER, CONFIG)` and
//! the Hub read one configuration per non-empty file (the files do not share a schema, so without
//! the header the library tries to load them as one table and fails), with the derived files'
//! column types declared. Its text says what a row is, the settings and funnel that made the data,
//! and the licenses of the sources the programs derive from.
//!
//! The card is the run's own output, so it is written without timestamps (the same records give the
//! same bytes). A README.md without the card's marker line is the user's: it is left as it is.

use super::files::Format;
use super::formats::{Column, Derived};
use crate::pipeline::record::Record;
use crate::pipeline::run_dir::{OutputError, RunDir};
use crate::pipeline::stats::SynthStats;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The template (see its opening comment).
const TEMPLATE: &str = include_str!("dataset_card.md.j2");

/// The line that marks the card as unitcoder's to rewrite.
pub const MARKER: &str =
    "<!-- unitcoder dataset card: rewritten from the run's records and stats.json at every synth, \
     resume, merge and report. Delete this line to keep your own edits: unitcoder then leaves this file alone. -->";

/// Packages named in the card's text; the rest are counted.
const PACKAGES_SHOWN: usize = 20;

/// One configuration: a non-empty file of the folder.
#[derive(Debug, Serialize)]
struct Config {
    name: &'static str,
    file: String,
    rows: usize,
    default: bool,
    /// Declared column types (the derived formats); empty for the record journal, whose nested
    /// fields the loader infers.
    features: Vec<Feature>,
}

/// A declared column: a scalar `dtype`, or (none) the list of `{role, content}` chat messages.
#[derive(Debug, Serialize)]
struct Feature {
    name: &'static str,
    dtype: Option<&'static str>,
}

/// Where the accepted programs came from.
#[derive(Debug, Default, Serialize)]
struct Sources {
    files: usize,
    repos: usize,
    /// Records by the license (or licenses, joined) their source recorded, most first.
    licenses: Vec<(String, u64)>,
    /// Records whose source recorded none.
    unrecorded: u64,
    /// Accepted records by top-level package, most first, and how many packages are not shown.
    packages: Vec<(String, u64)>,
    more_packages: usize,
}

/// Writes `dir`'s `dataset/README.md` for the `accepted` records and `stats`, whose derived files
/// have `rows[k]` lines for `Derived::ALL[k]`, naming those files in the first of `formats` present.
/// Leaves a README.md without [`MARKER`] alone.
pub fn write(
    dir: &RunDir,
    stats: &SynthStats,
    accepted: &[Record],
    rows: &[usize],
    formats: &[Format],
) -> Result<(), OutputError> {
    let path = dir.dataset().join("README.md");
    match std::fs::read_to_string(&path) {
        Ok(text) if !text.contains(MARKER) => return Ok(()),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(OutputError::io(&path)(e)),
        _ => {}
    }
    let text = render(stats, accepted, rows, formats).map_err(|e| OutputError::other(&path, e))?;
    crate::atomic_file::write(&path, text.as_bytes()).map_err(OutputError::io(&path))
}

/// The card's text.
fn render(stats: &SynthStats, accepted: &[Record], rows: &[usize], formats: &[Format]) -> Result<String, String> {
    // Parquet when it is there: typed columns and the Hub's viewer reads it fastest.
    let format = [Format::Parquet, Format::Jsonl, Format::JsonlGz]
        .into_iter()
        .find(|f| formats.contains(f))
        .unwrap_or(Format::Jsonl);
    let mut configs = Vec::new();
    let mut empty = Vec::new();
    for (derived, &n) in Derived::ALL.iter().zip(rows) {
        if n == 0 {
            empty.push(derived.name());
            continue;
        }
        configs.push(Config {
            name: derived.name(),
            file: format!("{}.{}", derived.name(), format.extension()),
            rows: n,
            default: false,
            features: derived.columns().into_iter().map(feature).collect(),
        });
    }
    // The Hub's loader reads every configuration of a folder with one builder, chosen by the files'
    // extension, so JSONL records beside Parquet files are read as Parquet and fail: then the card
    // shows how to load them apart.
    let records_apart = !accepted.is_empty() && format == Format::Parquet;
    if accepted.is_empty() {
        empty.push("records");
    } else if !records_apart {
        configs.push(Config {
            name: "records",
            file: "records.jsonl".into(),
            rows: accepted.len(),
            default: false,
            features: Vec::new(),
        });
    }
    if let Some(first) = configs.first_mut() {
        first.default = true;
    }
    // A server model by the name it serves, not the address this run reached it at (a card is
    // published; the address means nothing elsewhere).
    let mut shown = stats.clone();
    if let Some(s) = shown.settings.as_mut() {
        let identity = crate::engine::remote::model_identity(&s.model);
        if let Some(name) = identity.strip_prefix("openai:#") {
            s.model = name.to_string();
        }
    }
    let stats = &shown;
    let model = stats.settings.as_ref().map(|s| format!(" ({})", s.model)).unwrap_or_default();
    let title = format!("unitcoder: {} verified Python programs{model}", accepted.len());
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("dataset_card.md.j2", TEMPLATE).map_err(|e| e.to_string())?;
    let template = env.get_template("dataset_card.md.j2").map_err(|e| e.to_string())?;
    template
        .render(minijinja::context! {
            marker => MARKER,
            version => env!("CARGO_PKG_VERSION"),
            title => title,
            accepted => accepted.len(),
            size_category => size_category(accepted.len()),
            configs => configs,
            empty => empty,
            records_apart => records_apart,
            settings => crate::pipeline::report::settings_text(stats),
            funnel => funnel(stats),
            unfinished => crate::pipeline::report::unfinished_text(stats),
            rejected => stats.funnel.iter().find(|s| s.step == "rejected").map_or(0, |s| s.count),
            stats => stats,
            sources => sources(accepted),
            corpus => corpus(stats),
        })
        .map_err(|e| format!("rendering the dataset card: {e:#}"))
}

/// The `datasets` type of a column, as the Parquet writer types it ([`super::files`]).
fn feature(c: Column) -> Feature {
    let dtype = match c {
        Column::Str(_) => Some("string"),
        Column::Int(_) => Some("int64"),
        Column::Score(_) => Some("float64"),
        Column::Messages(_) => None,
    };
    Feature { name: c.name(), dtype }
}

/// The Hub's size category of a dataset of `n` rows.
fn size_category(n: usize) -> &'static str {
    const BOUNDS: [(usize, &str); 6] = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
    ];
    BOUNDS.iter().find(|(bound, _)| n < *bound).map_or("100M<n<1B", |(_, name)| name)
}

/// The funnel's steps in one line: `retrieved 20 → … → accepted 13`.
fn funnel(stats: &SynthStats) -> String {
    let steps: Vec<String> =
        stats.funnel.iter().filter(|s| s.step != "rejected").map(|s| format!("{} {}", s.step, s.count)).collect();
    if steps.is_empty() {
        "nothing retrieved".into()
    } else {
        steps.join(" → ")
    }
}

/// Corpus paths named in the card's text; the rest are counted.
const CORPORA_SHOWN: usize = 5;

/// What the run retrieved from, as its retrieve counts recorded it: files in an HF cache by their
/// Hub name, the rest as paths; empty when unknown (a `--records` run).
fn corpus(stats: &SynthStats) -> String {
    let Some(paths) = stats.retrieve.as_ref().and_then(|r| r.get("corpus")).and_then(|c| c.as_array()) else {
        return String::new();
    };
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.as_str())
        .map(|p| crate::hub::hub_name(std::path::Path::new(p)).unwrap_or_else(|| p.to_string()))
        .collect();
    let mut text = names.iter().take(CORPORA_SHOWN).map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if names.len() > CORPORA_SHOWN {
        text.push_str(&format!(", and {} more", names.len() - CORPORA_SHOWN));
    }
    text
}

fn sources(accepted: &[Record]) -> Sources {
    let mut files = BTreeSet::new();
    let mut repos = BTreeSet::new();
    let mut licenses: BTreeMap<String, u64> = BTreeMap::new();
    let mut packages: BTreeMap<String, u64> = BTreeMap::new();
    let mut unrecorded = 0;
    for r in accepted {
        files.insert(r.source.file_id.as_str());
        if let Some(repo) = &r.source.repo {
            repos.insert(repo.as_str());
        }
        if r.source.license.is_empty() {
            unrecorded += 1;
        } else {
            // A cell of a Markdown table: a `|` in a corpus's license string would end it.
            *licenses.entry(r.source.license.join(", ").replace('|', "/")).or_default() += 1;
        }
        for p in &r.function.packages {
            *packages.entry(p.clone()).or_default() += 1;
        }
    }
    let most_first = |m: BTreeMap<String, u64>| {
        let mut v: Vec<(String, u64)> = m.into_iter().collect();
        // Stable: ties stay in name order.
        v.sort_by_key(|e| std::cmp::Reverse(e.1));
        v
    };
    let mut packages = most_first(packages);
    let more_packages = packages.len().saturating_sub(PACKAGES_SHOWN);
    packages.truncate(PACKAGES_SHOWN);
    Sources {
        files: files.len(),
        repos: repos.len(),
        licenses: most_first(licenses),
        unrecorded,
        packages,
        more_packages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_categories_follow_the_hubs_bins() {
        assert_eq!(size_category(0), "n<1K");
        assert_eq!(size_category(999), "n<1K");
        assert_eq!(size_category(1_000), "1K<n<10K");
        assert_eq!(size_category(500_000), "100K<n<1M");
        assert_eq!(size_category(2_000_000_000), "100M<n<1B");
    }

    fn record(id: &str, license: &[&str], packages: &[&str]) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": id,
            "source": {"file_id": format!("f{id}"), "corpus_file": "c.jsonl", "license": license,
                       "repo": "o/r", "start_line": 1, "end_line": 2},
            "function": {"name": "f", "signature": "def f(x):", "code": "def f(x):\n    return x\n",
                         "imports": [], "modules": packages, "packages": packages},
        }))
        .expect("a record")
    }

    #[test]
    fn sources_count_licenses_and_packages_most_first() {
        let rs = [
            record("1", &["mit"], &["numpy"]),
            record("2", &["apache-2.0", "mit"], &["numpy", "pandas"]),
            record("3", &["mit"], &["re"]),
            record("4", &[], &["pandas"]),
            record("5", &["a|b"], &[]),
        ];
        let s = sources(&rs);
        assert_eq!((s.files, s.repos, s.unrecorded), (5, 1, 1));
        let licenses: Vec<(&str, u64)> = s.licenses.iter().map(|(l, n)| (l.as_str(), *n)).collect();
        assert_eq!(licenses, [("mit", 2), ("a/b", 1), ("apache-2.0, mit", 1)]);
        let packages: Vec<(&str, u64)> = s.packages.iter().map(|(p, n)| (p.as_str(), *n)).collect();
        assert_eq!(packages, [("numpy", 2), ("pandas", 2), ("re", 1)]);
        let stats = SynthStats {
            retrieve: Some(serde_json::json!({"corpus": ["/h/hub/datasets--o--r/snapshots/c0/d/a.parquet", "/src/x"]})),
            ..SynthStats::default()
        };
        let text = render(&stats, &rs, &[5, 5, 0, 0], &[Format::Jsonl]).unwrap();
        assert!(text.contains("Retrieved from `hf:o/r@c0:d/a.parquet`, `/src/x`."), "{text}");
        assert!(text.contains("| mit | 2 |\n| a/b | 1 |\n| apache-2.0, mit | 1 |"), "{text}");
        assert!(text.contains("The programs come from 5 source files from 1 repository."), "{text}");
        assert!(text.contains("(1 record without one)"), "{text}");
        assert!(text.contains("`source.license` in\nthe `records` configuration names it"), "{text}");
        // Beside Parquet files the records are no configuration: the card names their file.
        let text = render(&stats, &rs, &[5, 5, 0, 0], &[Format::Parquet, Format::Jsonl]).unwrap();
        assert!(text.contains("`source.license` in\n`records.jsonl` names it"), "{text}");
        assert!(!text.contains("the `records` configuration"), "{text}");
    }

    #[test]
    fn a_server_model_is_named_by_the_model_it_serves_not_its_address() {
        let settings = crate::pipeline::synth::SynthSettings::default();
        let stats = SynthStats {
            settings: Some(settings.run_settings(
                "openai:http://10.0.0.5:8000/v1#Qwen/Qwen2.5-Coder-7B-Instruct",
                true,
                vec![],
            )),
            ..SynthStats::default()
        };
        let text = render(&stats, &[], &[0, 0, 0, 0], &[Format::Jsonl]).unwrap();
        assert!(text.contains("programs (Qwen/Qwen2.5-Coder-7B-Instruct)") && !text.contains("10.0.0.5"), "{text}");
    }

    #[test]
    fn a_run_not_finished_says_how_much_is_left() {
        let mut stats = SynthStats {
            funnel: vec![crate::pipeline::stats::Step { step: "retrieved".into(), count: 1 }],
            retrieve: Some(serde_json::json!({"synth_functions": 4})),
            ..SynthStats::default()
        };
        let text = render(&stats, &[], &[0, 0, 0, 0], &[Format::Jsonl]).unwrap();
        assert!(text.contains("**Not finished:** 1 of the 4 functions this run took have a record"), "{text}");
        // Said first, under the title, before anything a reader might take for the whole run.
        let at = text.find("**Not finished:**").unwrap();
        assert!(at < text.find("Python programs, each").unwrap() && at > text.find("\n# ").unwrap(), "{text}");
        stats.funnel[0].count = 4;
        assert!(!render(&stats, &[], &[0, 0, 0, 0], &[Format::Jsonl]).unwrap().contains("Not finished"));
    }

    #[test]
    fn a_run_with_nothing_accepted_has_a_card_with_no_configuration() {
        let text = render(&SynthStats::default(), &[], &[0, 0, 0, 0], &[Format::Jsonl]).unwrap();
        assert!(text.starts_with("---\npretty_name: \"unitcoder: 0 verified Python programs\"\n"), "{text}");
        assert!(!text.contains("configs:") && !text.contains("dataset_info:"), "{text}");
        assert!(text.contains("there is no configuration to load"), "{text}");
        assert!(!text.contains("load_dataset("), "nothing to load: {text}");
        assert!(text.contains("`dpo`, `repair`, `records`."), "{text}");
        assert!(text.contains(MARKER));
    }
}
