//! The dataset card (`dataset/README.md`) against Hugging Face `datasets`, the library post-training
//! recipes load data with: every configuration the card lists loads, in each file format, with the
//! very rows of its file and the declared column order; the JSONL records stay loadable beside
//! Parquet files; the card is the same for the same records, says what a merge did, and a card
//! the user took over (its marker line deleted) is left alone.

use crate::common::datasets_python;
use crate::synth::{sandbox, scripted, settings, setup};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use unitcoder::pipeline::emit::{self, card, Derived, Format};
use unitcoder::pipeline::run_dir::RunDir;
use unitcoder::pipeline::synth::synthesize;
use unitcoder::progress::Silent;

/// What `datasets` makes of the folder: for each configuration it lists, the rows (every row for
/// the derived formats, the ids for the records) and columns; the default configuration's row
/// count; and `records.jsonl` loaded on its own with the JSON builder.
const LOAD: &str = r#"
import json, sys, datasets
datasets.disable_progress_bars()
folder = sys.argv[1]
out = {"configs": {}}
for name in datasets.get_dataset_config_names(folder):
    ds = datasets.load_dataset(folder, name, split="train")
    rows = [r["id"] for r in ds] if name == "records" else ds.to_list()
    out["configs"][name] = {"rows": rows, "columns": list(ds.features)}
out["default"] = datasets.load_dataset(folder, split="train").num_rows
records = datasets.load_dataset("json", data_files=folder + "/records.jsonl", split="train")
out["records"] = [r["id"] for r in records]
print(json.dumps(out))
"#;

pub(crate) fn load(folder: &Path, cache: &Path) -> Value {
    let out = Command::new(datasets_python())
        .args(["-c", LOAD])
        .arg(folder)
        // Offline, and nothing written outside the test's directory.
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HOME", cache)
        .env("HF_DATASETS_CACHE", cache.join("datasets"))
        .output()
        .expect("run python");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "datasets could not load {}:\n{stderr}", folder.display());
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn jsonl(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn card_text(dir: &RunDir) -> String {
    std::fs::read_to_string(dir.dataset().join("README.md")).expect("the dataset card")
}

#[test]
fn hugging_face_datasets_loads_each_configuration_the_card_lists_with_its_files_rows() {
    let s = setup();
    let dir = RunDir::new(&s.root.join("run"));
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &dir, &Silent).unwrap();
    emit::finalize_as(&dir, None, &[Format::Jsonl]).unwrap();
    let lines: Vec<Vec<Value>> =
        Derived::ALL.iter().map(|d| jsonl(&dir.dataset().join(format!("{}.jsonl", d.name())))).collect();
    // The scripted run has rows in every derived format: fixed records give `dpo` and `repair`.
    assert!(lines.iter().all(|l| !l.is_empty()), "{lines:?}");
    let ids: Vec<Value> = jsonl(&dir.records()).iter().map(|r| r["id"].clone()).collect();

    let first = card_text(&dir);
    for formats in [vec![Format::Jsonl], vec![Format::JsonlGz], vec![Format::Parquet, Format::Jsonl]] {
        emit::finalize_as(&dir, None, &formats).unwrap();
        let got = load(&dir.dataset(), &s.root.join("hf"));
        let configs = got["configs"].as_object().unwrap();
        for (derived, rows) in Derived::ALL.iter().zip(&lines) {
            let c = &configs[derived.name()];
            assert_eq!(&c["rows"].as_array().unwrap()[..], &rows[..], "{} in {formats:?}", derived.name());
            let columns: Vec<&str> = derived.columns().iter().map(|c| c.name()).collect();
            assert_eq!(c["columns"], serde_json::json!(columns), "{} in {formats:?}", derived.name());
        }
        // Beside Parquet files the JSONL records cannot be a configuration (one builder reads them
        // all); the card names the JSON builder instead, and that loads them.
        let parquet = formats.contains(&Format::Parquet);
        assert_eq!(configs.contains_key("records"), !parquet, "{formats:?}: {:?}", configs.keys());
        if !parquet {
            assert_eq!(configs["records"]["rows"], Value::Array(ids.clone()));
        }
        assert_eq!(got["records"], Value::Array(ids.clone()));
        assert_eq!(configs.len(), Derived::ALL.len() + usize::from(!parquet));
        // The default is the first configuration, prefix–completion pairs.
        assert_eq!(got["default"], lines[0].len());
        let text = card_text(&dir);
        let named = format!("prefix_completion.{}", if parquet { Format::Parquet } else { formats[0] });
        assert!(text.contains(&format!("path: \"{named}\"")), "{text}");
        assert_eq!(text.contains("load_dataset(\"json\", data_files="), parquet, "{text}");
    }

    // The same records give the same card, byte for byte.
    emit::finalize_as(&dir, None, &[Format::Jsonl]).unwrap();
    assert_eq!(card_text(&dir), first);
    assert!(first.contains(&format!("# unitcoder: {} verified Python programs", ids.len())), "{first}");
    for fact in ["Funnel: retrieved", "accepted", "## Sources and licenses", "arXiv:2502.11460"] {
        assert!(first.contains(fact), "{fact:?} missing from the card:\n{first}");
    }

    // A merge says what it joined.
    let merged = RunDir::new(&s.root.join("merged"));
    emit::merge(std::slice::from_ref(&dir), &merged, &[Format::Jsonl]).unwrap();
    assert!(card_text(&merged).contains("Merged from 1 shards"), "{}", card_text(&merged));

    // A card without the marker is the user's own: left as it is.
    let edited = first.replace(card::MARKER, "") + "\nOur notes.\n";
    std::fs::write(dir.dataset().join("README.md"), &edited).unwrap();
    emit::finalize(&dir, None).unwrap();
    assert_eq!(card_text(&dir), edited);
}
