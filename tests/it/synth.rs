//! The synthesis pipeline with a scripted model and the real sandbox: every branch of stages 2–4
//! (original passes, fix in round k, vacuous tests both ways, signature change, special-casing,
//! polish that changes code, polish regression), resume after a failure part-way without lost or
//! duplicated records or redone model calls, and sharded runs that merge to the unsharded result.

use crate::common::{tempdir, Notes};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use unitcoder::engine::{Completion, EngineError, Generator, Prompt, Request, Scripted};
use unitcoder::pipeline::emit::{self, Format};
use unitcoder::pipeline::record::{AttemptKind, Stage};
use unitcoder::pipeline::retrieve::{self, Packages, RetrieveSettings, RetrieveStats, Shard};
use unitcoder::pipeline::run_dir::RunDir;
use unitcoder::pipeline::synth::{synthesize, SynthSettings};
use unitcoder::pipeline::Record;
use unitcoder::progress::Silent;
use unitcoder::sandbox::{Sandbox, SandboxConfig};

/// Function name → (source, tests reply, fix replies by round then sample, polish reply).
struct Case {
    src: &'static str,
    tests: &'static str,
    fixes: &'static [&'static [&'static str]],
    polish: &'static str,
}

const TESTS_PLUS_ONE: &str = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 3)\n    def test_b(self):\n        self.assertEqual(NAME(0.2), 1)\n";

fn cases() -> BTreeMap<&'static str, Case> {
    let mut m = BTreeMap::new();
    m.insert("good", Case {
        src: "def good(x):\n    y = math.floor(x)\n    return y + 1\n",
        tests: TESTS_PLUS_ONE,
        fixes: &[],
        polish: "```python\nimport math\n\ndef good(x):\n    \"\"\"Floor plus one.\n\n    Parameters:\n    - x (float): a number.\n    \"\"\"\n    # round down first\n    y = math.floor(x)\n    return y + 1\n```",
    });
    m.insert(
        "fixed",
        Case {
            src: "def fixed(x):\n    y = math.floor(x)\n    return y - 1\n",
            tests: TESTS_PLUS_ONE,
            fixes: &[
                // Sample 0 is the slow one: its verdict comes back after sample 1's.
                &[
                    "def fixed(x):\n    __import__(\"time\").sleep(0.4)\n    y = math.floor(x)\n    return y - 2\n",
                    "def fixed(x):\n    return None\n",
                ],
                &[
                    "```python\ndef fixed(x):\n    return -5\n```",
                    "```python\nimport math\ndef fixed(x):\n    y = math.floor(x)\n    return y + 1\n```",
                ],
            ],
            polish: "```python\ndef fixed(x):\n    y = math.floor(x)\n    return y + 100\n```",
        },
    );
    m.insert("hollow", Case {
        src: "def hollow(x):\n    y = math.floor(x)\n    return y + 1\n",
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        try:\n            hollow(1.5)\n        except Exception:\n            pass\n        self.assertTrue(True)\n",
        fixes: &[],
        polish: "",
    });
    m.insert(
        "silent",
        Case {
            src: "def silent(x):\n    y = math.floor(x)\n    return y + 1\n",
            tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        silent(1.5)\n",
            fixes: &[],
            polish: "",
        },
    );
    m.insert(
        "resigned",
        Case {
            src: "def resigned(x):\n    y = math.floor(x)\n    return y - 1\n",
            tests: TESTS_PLUS_ONE,
            fixes: &[&["def resigned(x, k=1):\n    return math.floor(x) + k\n"]],
            polish: "",
        },
    );
    m.insert("cheat", Case {
        src: "def cheat(x):\n    y = math.floor(x)\n    return y - 1\n",
        // Two checks (split from one test): one failing test alone is a thin suite, never fixed.
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(cheat(7.5), 42)\n        self.assertEqual(cheat(7.5) - 2, 40)\n",
        fixes: &[&["def cheat(x):\n    if x == 7.5:\n        return 42\n    return math.floor(x)\n"]],
        polish: "",
    });
    m.insert(
        "picky",
        Case { src: "def picky(x):\n    y = math.floor(x)\n    return y + 1\n", tests: "", fixes: &[], polish: "" },
    );
    m.insert(
        "stubborn",
        Case {
            src: "def stubborn(x):\n    y = math.floor(x)\n    return y - 1\n",
            tests: "",
            fixes: &[&["def stubborn(x):\n    y = math.floor(x)\n    return y + 1\n"]],
            polish: "",
        },
    );
    m.insert("arity", Case {
        src: "def arity(x):\n    z = math.floor(x)\n    z += 1\n    return z\n",
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 3)\n    def test_b(self):\n        self.assertEqual(NAME(2.5, 1), 4)\n",
        fixes: &[],
        polish: "",
    });
    // One of three expectations is wrong (floor(4.5) + 1 is 5): the real function is trusted and that
    // test is cut, not "fixed" into the code.
    m.insert("trusted", Case {
        src: "def trusted(x):\n    y = math.floor(x)\n    return y + 1\n",
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 3)\n        self.assertEqual(NAME(0.2), 1)\n        self.assertEqual(NAME(1.0), 2)\n        self.assertEqual(NAME(3.9), 4)\n    def test_c(self):\n        self.assertEqual(NAME(4.5), 9)  # nine\n    def test_d(self):\n        self.assertTrue(NAME(4.5) > 6)\n    def test_e(self):\n        with self.assertRaises(ValueError):\n            NAME(1.5)\n    def test_f(self):\n        half = NAME(0.5) / 4\n        self.assertEqual(half, 7)\n",
        fixes: &[&["def trusted(x):\n    return 9\n"]],
        polish: "",
    });
    m.insert("modular", Case {
        src: "def modular(x):\n    w = math.ceil(x)\n    return w * 2\n",
        tests: "import unittest\nw = NAME()\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 6)\n",
        fixes: &[],
        polish: "",
    });
    // Tests that Python will not compile (a bytes literal with a non-ASCII character): no fix of
    // the function could make them pass.
    m.insert("garbled", Case {
        src: "def garbled(x):\n    y = math.floor(x)\n    return y + 1\n",
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 3)\n    def test_b(self):\n        self.assertEqual(NAME(b'\u{e9}'), 1)\n",
        fixes: &[],
        polish: "",
    });
    m.insert("undocumented", Case {
        src: "def undocumented(x):\n    y = math.floor(x)\n    return y + 1\n",
        tests: "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(undocumented(2.5), 3)\n        self.assertIsNone(undocumented.__doc__)\n",
        fixes: &[],
        polish: "```python\ndef undocumented(x):\n    \"\"\"Floor plus one.\"\"\"\n    y = math.floor(x)\n    return y + 1\n```",
    });
    m
}

/// Functions whose tests samples differ: the tests reply by sample index.
fn sampled_tests(name: &str) -> Option<[&'static str; 3]> {
    let hollow = "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        try:\n            NAME(1.5)\n        except Exception:\n            pass\n        self.assertTrue(True)\n";
    match name {
        // No assertion; then a wrong expectation; then a suite the original passes.
        "picky" => Some([
            "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        NAME(1.5)\n",
            "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 7)\n",
            TESTS_PLUS_ONE,
        ]),
        // A suite the (wrong) original fails; one that passes even with the body stubbed; no code.
        "stubborn" => Some([TESTS_PLUS_ONE, hollow, "I am not sure."]),
        // Three suites Python does not compile, each in its own way.
        "garbled" => Some([
            "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(NAME(2.5), 3)\n    def test_b(self):\n        self.assertEqual(NAME(b'\u{e9}'), 1)\n",
            "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self, y=1, y=2):\n        self.assertEqual(NAME(2.5), 3)\n",
            "import unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        nonlocal x\n        self.assertEqual(NAME(2.5), 3)\n",
        ]),
        _ => None,
    }
}

pub(crate) fn prompt_text(r: &Request) -> String {
    match &r.prompt {
        Prompt::Chat(m) => m.iter().map(|m| m.content.clone()).collect(),
        Prompt::Text(t) => t.clone(),
    }
}

/// The scripted model: finds the function a prompt is about and answers per template. A fix round
/// is recognized from the prompt (it shows the previous round's first failing sample), so answers do
/// not depend on call order or on which calls a resumed run takes from the cache.
pub(crate) fn scripted() -> Scripted {
    let cases = cases();
    Scripted::new(move |r, sample| {
        let text = prompt_text(r);
        let Some((name, case)) = cases.iter().find(|(n, _)| text.contains(&format!("def {n}("))) else {
            return "I cannot help".into();
        };
        if text.contains("Write unit tests") {
            // The greedy request is sample 0; the sampled one (temperature > 0) brings samples 1 and 2.
            let k = if r.params.temperature > 0.0 { sample + 1 } else { sample };
            let tests = sampled_tests(name).map_or(case.tests, |s| s[k.min(2)]);
            if !tests.starts_with("import") {
                return tests.to_string();
            }
            return format!("Here are tests:\n```python\n{}```\n", tests.replace("NAME", name));
        }
        if text.contains("fails its unit tests") {
            let round = case.fixes.iter().take_while(|s| s.first().is_some_and(|f| text.contains(f.trim()))).count();
            return case
                .fixes
                .get(round)
                .and_then(|s| s.get(sample).or(s.first()))
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no idea".into());
        }
        case.polish.to_string()
    })
}

pub(crate) fn write_corpus(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, case) in cases() {
        std::fs::write(dir.join(format!("{name}.py")), format!("import math\n\n\n{}", case.src)).unwrap();
    }
}

pub(crate) fn retrieve_all(corpus: &Path, packages: &Path, shard: Shard) -> Vec<Record> {
    let mut s = RetrieveSettings::new(vec![corpus.to_path_buf()]);
    s.packages = Packages::load(packages).unwrap();
    s.shard = shard;
    let mut out = Vec::new();
    retrieve::retrieve(&s, &mut RetrieveStats::default(), &Silent, &mut |r| {
        out.push(r);
        Ok(())
    })
    .unwrap();
    out
}

/// The records retrieved from a one-file corpus `src` (as `file`) under `root` that uses only `math`.
pub(crate) fn math_records(root: &Path, file: &str, src: &str) -> Vec<Record> {
    std::fs::create_dir_all(root.join("corpus")).unwrap();
    std::fs::write(root.join("corpus").join(file), src).unwrap();
    std::fs::write(root.join("packages.txt"), "math\n").unwrap();
    retrieve_all(&root.join("corpus"), &root.join("packages.txt"), Shard::ALL)
}

pub(crate) fn settings() -> SynthSettings {
    SynthSettings { rounds: 3, samples: 2, batch: 3, ..SynthSettings::default() }
}

pub(crate) fn sandbox() -> Sandbox {
    Sandbox::new(SandboxConfig { jobs: 2, preload: Vec::new(), ..SandboxConfig::default() })
        .expect("the sandbox needs python3")
}

pub(crate) fn read(dir: &RunDir) -> (Vec<Record>, Vec<Record>) {
    let lines = |p: std::path::PathBuf| -> Vec<Record> {
        std::fs::read_to_string(p).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    (lines(dir.records()), lines(dir.rejected()))
}

pub(crate) struct Setup {
    _tmp: tempfile::TempDir,
    pub(crate) root: std::path::PathBuf,
    pub(crate) records: Vec<Record>,
}

pub(crate) fn setup() -> Setup {
    let tmp = tempdir();
    let root = tmp.path().to_path_buf();
    write_corpus(&root.join("corpus"));
    std::fs::write(root.join("packages.txt"), "math\n").unwrap();
    let records = retrieve_all(&root.join("corpus"), &root.join("packages.txt"), Shard::ALL);
    assert_eq!(records.len(), cases().len(), "every scripted function is retrieved");
    Setup { _tmp: tmp, root, records }
}

#[test]
fn every_branch_of_tests_fix_and_polish_ends_as_scripted() {
    let s = setup();
    let dir = RunDir::new(&s.root.join("run"));
    let gen = scripted();
    let t = synthesize(s.records.clone(), &gen, &sandbox(), &settings(), &dir, &Silent).unwrap();
    assert_eq!(t.finished, 13);
    let (acc, rej) = read(&dir);
    let by = |v: &[Record], n: &str| v.iter().find(|r| r.function.name == n).cloned();
    let reason = |n: &str| by(&rej, n).and_then(|r| r.rejected).map(|j| j.reason);

    let good = by(&acc, "good").expect("good accepted");
    let v = good.verified.as_ref().unwrap();
    assert!(v.original_passed && v.round == 0);
    assert!(good.polished.as_ref().unwrap().code.contains("Floor plus one"));
    // Scored after polish: its suite pins `floor(x) + 1` down, so every mutant dies.
    let q = good.quality.as_ref().expect("accepted records carry their tests' quality");
    assert!(q.mutants >= 3 && q.killed == q.mutants && q.line_coverage == Some(1.0), "{q:?}");

    let fixed = by(&acc, "fixed")
        .unwrap_or_else(|| panic!("fixed accepted: {:?}", by(&rej, "fixed").map(|r| (r.rejected, r.discarded))));
    let v = fixed.verified.as_ref().unwrap();
    assert!(!v.original_passed);
    assert_eq!(v.round, 2, "round 1 fails, round 2 sample 1 passes");
    assert!(v.code.contains("y + 1"));
    assert!(fixed.polished.is_none(), "a polish that changes code is set aside");
    assert!(fixed.discarded.iter().any(|d| d.reason == "polish_changed_code"));
    // Listed by round and sample, whatever order the sandbox finished them in.
    let fixes: Vec<(u32, u32)> =
        fixed.attempts.iter().filter(|a| a.kind == AttemptKind::Fix).map(|a| (a.round, a.sample)).collect();
    assert_eq!(fixes, [(1, 0), (1, 1), (2, 0), (2, 1)]);

    let und = by(&acc, "undocumented").expect("accepted without polish");
    assert!(und.polished.is_none());
    assert!(und.discarded.iter().any(|d| d.reason == "polish_regression"));

    // Three tests samples: the first without assertions and the second (one failing test: too thin
    // to fix real code by) are set aside, the third (which the original passes and the stubbed body
    // fails) is kept.
    let picky = by(&acc, "picky").expect("picky accepted with its third tests sample");
    assert_eq!(picky.tests.as_ref().map(|t| t.sample), Some(2));
    assert!(picky.verified.as_ref().unwrap().original_passed);
    let set_aside = |r: &Record| -> Vec<(u32, String)> {
        r.discarded.iter().filter(|d| d.kind == AttemptKind::Tests).map(|d| (d.sample, d.reason.clone())).collect()
    };
    assert_eq!(set_aside(&picky), [(0, "vacuous_tests".to_string()), (1, "thin_suite".to_string())]);
    // No sample passes: the fix rounds start from the first suite the original failed (sample 0),
    // not from the stub-passing sample 1 nor the reply without code.
    let stubborn = by(&acc, "stubborn").expect("stubborn fixed against its first tests sample");
    assert_eq!(stubborn.tests.as_ref().map(|t| t.sample), Some(0));
    assert_eq!(stubborn.verified.as_ref().map(|v| (v.round, v.original_passed)), Some((1, false)));
    let mut aside = set_aside(&stubborn);
    aside.sort();
    assert_eq!(aside, [(1, "vacuous_tests".to_string()), (2, "no_tests_extracted".to_string())]);

    // A test calling the function with the wrong arguments errors in the tests' own code: it is cut
    // as broken, and the original passes the rest as written.
    let arity = by(&acc, "arity").expect("arity accepted without its broken test");
    let t = arity.tests.as_ref().unwrap();
    assert_eq!(t.dropped, ["TestCases.test_b"]);
    assert!(t.code.contains("test_a") && !t.code.contains("test_b"), "{}", t.code);
    assert!(arity.verified.as_ref().unwrap().original_passed);

    // Split to one assertion per test, the original meets four expectations and misses four: the
    // missed ones are suspected before the code, and no fix is asked for. Where the check compared
    // the function's value with a literal, the test keeps its input with the value the original
    // gives (a float compared to 7 significant digits, a comment that stated the old value
    // dropped); the flipped comparison, which would check almost nothing, and the expected
    // exception the original never raises are cut.
    let trusted = by(&acc, "trusted").expect("trusted accepted without its wrong expectations");
    let t = trusted.tests.as_ref().unwrap();
    assert_eq!(t.disagreeing, ["TestCases.test_d", "TestCases.test_e"]);
    assert_eq!(t.reconciled, ["TestCases.test_c", "TestCases.test_f"]);
    for kept in [
        "def test_a_1",
        "def test_a_4",
        "self.assertEqual(trusted(4.5), 5)\n",
        "assertAlmostEqual(half, 0.25, places=8)",
    ] {
        assert!(t.code.contains(kept), "{kept} in {}", t.code);
    }
    assert!(!t.code.contains("test_d") && !t.code.contains("test_e") && !t.code.contains("nine"), "{}", t.code);
    assert!(trusted.verified.as_ref().unwrap().original_passed);
    assert!(!trusted.attempts.iter().any(|a| a.kind == AttemptKind::Fix));

    // Suites that Python does not compile are set aside, each in turn, and no fix round starts
    // from them; the record is rejected with the compiler's message.
    let garbled = by(&rej, "garbled").expect("garbled rejected");
    let aside: Vec<(u32, String)> = set_aside(&garbled);
    let expected: Vec<(u32, String)> = (0..3).map(|k| (k, "tests_do_not_compile".to_string())).collect();
    assert_eq!(aside, expected);
    let why = garbled.rejected.as_ref().unwrap();
    assert_eq!((why.stage, why.reason.as_str()), (Stage::Tests, "tests_do_not_compile"));
    assert!(why.detail.contains("nonlocal"), "the last suite's error: {why:?}");
    assert!(!garbled.attempts.iter().any(|a| a.kind == AttemptKind::Fix));

    // An error in the tests' module code cannot be cut away: the record ends (no endless re-run).
    assert!(reason("modular").is_some(), "modular is rejected");

    assert_eq!(reason("hollow").as_deref(), Some("vacuous_tests"), "passes with the body stubbed");
    assert_eq!(reason("silent").as_deref(), Some("vacuous_tests"), "no assertion executed");
    assert_eq!(reason("resigned").as_deref(), Some("signature_changed"));
    assert_eq!(reason("cheat").as_deref(), Some("special_casing"));

    let stats = emit::finalize(&dir, None).unwrap();
    let step = |n: &str| stats.funnel.iter().find(|f| f.step == n).unwrap().count;
    assert_eq!((step("retrieved"), step("accepted"), step("polished")), (13, 7, 1));
    assert_eq!(step("tests_scored"), 7, "the quality step rejected none of the accepted records");
    assert_eq!((stats.quality.scored, stats.quality.mutation_score.iter().sum::<u64>()), (7, 7));
    assert_eq!(stats.pass_by_round.get(&2), Some(&1));
    assert_eq!(stats.pass_by_round.get(&1), Some(&1));
    assert_eq!(stats.pass_by_round.get(&0), Some(&5));
    assert_eq!(stats.cut_tests.get("disagreeing"), Some(&2));
    assert_eq!(
        (stats.cut_tests.get("reconciled"), stats.cut_tests.get("records_with_reconciled")),
        (Some(&2), Some(&1))
    );
    assert!(stats.failures.get("assertion").copied().unwrap_or(0) >= 3, "{:?}", stats.failures);
    let dpo = std::fs::read_to_string(dir.dataset().join("dpo.jsonl")).unwrap();
    assert_eq!(dpo.lines().count(), 2, "only `fixed` and `stubborn` have a failing attempt and a fix");
    let repair = std::fs::read_to_string(dir.dataset().join("repair.jsonl")).unwrap();
    let stubborn_steps = repair.lines().filter(|l| l.contains("def stubborn")).count();
    assert_eq!(stubborn_steps, 1, "only the original's failure against the kept tests is a repair step");
    let pc = std::fs::read_to_string(dir.dataset().join("prefix_completion.jsonl")).unwrap();
    assert!(pc.contains("Floor plus one") && pc.lines().count() == 1);
}

/// A generator that fails, like a crash in the middle of a run, at its first call after `dir` holds
/// two finished records.
pub(crate) struct Crashing {
    pub(crate) inner: Scripted,
    pub(crate) dir: RunDir,
}

impl Generator for Crashing {
    fn generate(&self, requests: &[Request]) -> Result<Vec<Vec<Completion>>, EngineError> {
        let lines = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap_or_default().lines().count();
        if lines(self.dir.records()) + lines(self.dir.rejected()) >= 2 {
            return Err(EngineError::Internal("simulated crash".into()));
        }
        self.inner.generate(requests)
    }
    fn model_id(&self) -> String {
        self.inner.model_id()
    }
    fn has_chat_template(&self) -> bool {
        true
    }
}

pub(crate) fn outcome(dir: &RunDir) -> BTreeMap<String, Option<String>> {
    let (acc, rej) = read(dir);
    let mut ids = BTreeMap::new();
    for r in acc.iter().chain(rej.iter()) {
        let prev = ids.insert(r.id.clone(), r.rejected.as_ref().map(|j| j.reason.clone()));
        assert!(prev.is_none(), "record {} written twice", r.id);
    }
    ids
}

#[test]
fn a_run_stopped_part_way_resumes_without_lost_duplicated_or_redone_work() {
    let s = setup();
    let full = RunDir::new(&s.root.join("full"));
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &full, &Silent).unwrap();

    let dir = RunDir::new(&s.root.join("resumed"));
    let crashing = Crashing { inner: scripted(), dir: dir.clone() };
    let err = synthesize(s.records.clone(), &crashing, &sandbox(), &settings(), &dir, &Silent);
    assert!(err.is_err());
    let partial = outcome(&dir);
    assert!(!partial.is_empty() && partial.len() < cases().len(), "{partial:?}");
    let cached_calls = crashing.inner.calls().len();

    let second = scripted();
    let t = synthesize(s.records.clone(), &second, &sandbox(), &settings(), &dir, &Silent).unwrap();
    assert_eq!(t.skipped_done as usize, partial.len());
    assert!(t.model_calls_cached > 0, "answers from before the crash are reused");
    let total_full = scripted_calls_of_full_run(&s);
    assert_eq!(second.calls().len() + cached_calls, total_full, "no model call is made twice");
    assert_eq!(outcome(&dir), outcome(&full));
}

#[test]
fn a_garbage_line_in_the_answer_cache_is_skipped_with_one_warning_and_the_run_goes_on() {
    let s = setup();
    let dir = RunDir::new(&s.root.join("run"));
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &dir, &Silent).unwrap();
    let before = outcome(&dir);
    // Without the finished records every record is redone, its answers from the cache.
    std::fs::remove_file(dir.records()).unwrap();
    std::fs::remove_file(dir.rejected()).unwrap();
    let cache = dir.model_cache();
    let mut lines: Vec<String> = std::fs::read_to_string(&cache).unwrap().lines().map(String::from).collect();
    assert!(lines.len() > 3, "{}", lines.len());
    lines[1] = "\u{0}\u{0}{\"k\": garbage".to_string();
    std::fs::write(&cache, lines.join("\n") + "\n").unwrap();

    let (notes, model) = (Notes::default(), scripted());
    synthesize(s.records.clone(), &model, &sandbox(), &settings(), &dir, &notes)
        .expect("a bad cache line does not stop the run");
    let notes = notes.0.into_inner().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].starts_with(&format!("warning: {} line 2:", cache.display())) && notes[0].contains("cache"),
        "{notes:?}"
    );
    assert_eq!(model.calls().len(), 1, "only the lost answer is asked again");
    assert_eq!(outcome(&dir), before);
    // The answer asked again was appended: the next open still skips the bad line, nothing else.
    let notes = Notes::default();
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &dir, &notes).unwrap();
    assert_eq!(notes.0.into_inner().unwrap().len(), 1);
}

/// How many requests an uninterrupted run sends.
fn scripted_calls_of_full_run(s: &Setup) -> usize {
    let g = scripted();
    let dir = RunDir::new(&s.root.join("count"));
    synthesize(s.records.clone(), &g, &sandbox(), &settings(), &dir, &Silent).unwrap();
    g.calls().len()
}

#[test]
fn sharded_runs_merge_to_the_unsharded_result() {
    let s = setup();
    let full = RunDir::new(&s.root.join("full"));
    synthesize(s.records.clone(), &scripted(), &sandbox(), &settings(), &full, &Silent).unwrap();
    let mut shards = Vec::new();
    let mut seen = BTreeSet::new();
    for i in 0..3 {
        let shard = Shard { index: i, count: 3 };
        let recs = retrieve_all(&s.root.join("corpus"), &s.root.join("packages.txt"), shard);
        for r in &recs {
            assert!(seen.insert(r.id.clone()), "shards are disjoint");
        }
        let dir = RunDir::new(&s.root.join(format!("shard{i}")));
        synthesize(recs, &scripted(), &sandbox(), &settings(), &dir, &Silent).unwrap();
        shards.push(dir);
    }
    let merged = RunDir::new(&s.root.join("merged"));
    emit::merge(&shards, &merged, &[Format::Jsonl]).unwrap();
    // Merging twice adds nothing.
    emit::merge(&shards, &merged, &[Format::Jsonl]).unwrap();
    assert_eq!(outcome(&merged), outcome(&full));
}

#[test]
fn a_prompt_that_fails_to_render_stops_the_run_naming_the_template() {
    // An override that compiles but fails when rendered (an unknown filter is a render-time error
    // in minijinja) is refused when loaded, before any model; one that renders the sample values
    // but not a record's still stops the run, naming itself, without sending the model anything.
    let s = setup();
    let prompts = s.root.join("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let file = prompts.join("synth_tests.j2");
    std::fs::write(&file, "Write unit tests for {{ function | no_such_filter }}\n").unwrap();
    let err = unitcoder::pipeline::prompts::Prompts::load(Some(&prompts)).unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()) && err.contains("no_such_filter"), "{err}");
    // The sample code has no `floor`; every record here does.
    std::fs::write(&file, "Tests for {{ code }}{% if 'floor' in code %}{{ code | no_such_filter }}{% endif %}\n")
        .unwrap();
    let mut settings = settings();
    settings.prompts = unitcoder::pipeline::prompts::Prompts::load(Some(&prompts)).expect("renders the samples");
    let model = scripted();
    let dir = RunDir::new(&s.root.join("run"));
    let err = synthesize(s.records.clone(), &model, &sandbox(), &settings, &dir, &Silent).unwrap_err().to_string();
    assert!(err.contains(&file.display().to_string()) && err.contains("no_such_filter"), "{err}");
    assert!(model.calls().is_empty(), "no request reached the model: {:?}", model.calls().len());
}

/// A scripted model for three functions: a one-test suite with `tests(name)`'s body to the tests
/// prompt, and `polish(name)` to every other prompt.
fn per_function(
    names: [&'static str; 3],
    tests: fn(&str) -> &'static str,
    polish: fn(&str) -> &'static str,
) -> Scripted {
    Scripted::new(move |r, _| {
        let text = prompt_text(r);
        let name = names.into_iter().find(|n| text.contains(&format!("def {n}("))).unwrap_or("none");
        if text.contains("Write unit tests") {
            return format!(
                "```python\nimport unittest\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        {}\n```",
                tests(name)
            );
        }
        polish(name).to_string()
    })
}

/// The polish reply's docstring examples, as a code model writes them: one right, one with a wrong
/// result, one that raises; output less indented than its example, which doctest refuses; and an
/// escaped newline in a plain docstring, which splits its example until the docstring is made raw.
const EXAMPLES_CORPUS: &str = "import math\n\n\ndef halve_up(x):\n    y = math.ceil(x / 2)\n    return y\n\n\ndef floor_sum(a, b):\n    s = math.floor(a) + math.floor(b)\n    return s\n\n\ndef count_breaks(text):\n    n = text.count('\\n') + math.floor(0.5)\n    return n\n";
const HALVE_UP_POLISH: &str = "```python\nimport math\n\ndef halve_up(x):\n    \"\"\"\n    Half, rounded up.\n\n    Example:\n    >>> halve_up(4)\n    2\n    >>> halve_up(5)\n    2\n    >>> halve_up('a')\n    1\n    \"\"\"\n    # ceil of the half\n    y = math.ceil(x / 2)\n    return y\n```";
const FLOOR_SUM_POLISH: &str = "```python\nimport math\n\ndef floor_sum(a, b):\n    \"\"\"\n    Sum of floors.\n\n    Example:\n    >>> floor_sum(1.5, 2.5)\n  3\n    >>> floor_sum(0, 0)\n    0\n    \"\"\"\n    s = math.floor(a) + math.floor(b)\n    return s\n```";
const COUNT_BREAKS_POLISH: &str = "```python\nimport math\n\ndef count_breaks(text):\n    \"\"\"\n    Line breaks.\n\n    Example:\n    >>> count_breaks('a\\nb\\nc')\n    2\n    \"\"\"\n    n = text.count('\\n') + math.floor(0.5)\n    return n\n```";

#[test]
fn polished_docstring_examples_are_corrected_or_dropped_until_doctest_passes_them() {
    let tmp = tempdir();
    let records = math_records(tmp.path(), "ex.py", EXAMPLES_CORPUS);
    assert_eq!(records.len(), 3);
    let gen = per_function(
        ["halve_up", "floor_sum", "count_breaks"],
        |name| match name {
            "halve_up" => "self.assertEqual(halve_up(4), 2)\n        self.assertEqual(halve_up(5), 3)",
            "floor_sum" => "self.assertEqual(floor_sum(1.5, 2.5), 3)\n        self.assertEqual(floor_sum(-0.5, 0), -1)",
            _ => "self.assertEqual(count_breaks('a\\nb'), 1)\n        self.assertEqual(count_breaks('x'), 0)",
        },
        |name| match name {
            "halve_up" => HALVE_UP_POLISH,
            "floor_sum" => FLOOR_SUM_POLISH,
            _ => COUNT_BREAKS_POLISH,
        },
    );
    let dir = RunDir::new(&tmp.path().join("run"));
    synthesize(records, &gen, &sandbox(), &settings(), &dir, &Silent).unwrap();
    let (acc, rej) = read(&dir);
    assert!(rej.is_empty(), "{:?}", rej.iter().map(|r| &r.rejected).collect::<Vec<_>>());
    let by = |n: &str| acc.iter().find(|r| r.function.name == n).unwrap_or_else(|| panic!("{n} accepted"));
    let counts = |n: &str| {
        let p = by(n).polished.as_ref().unwrap_or_else(|| panic!("{n} keeps its polish"));
        let c = p.examples.clone().unwrap_or_else(|| panic!("{n}'s examples were checked"));
        ((c.found, c.kept, c.corrected, c.dropped), p.code.clone())
    };

    let (c, code) = counts("halve_up");
    assert_eq!(c, (3, 1, 1, 1), "{code}");
    assert!(code.contains(">>> halve_up(4)\n    2\n    >>> halve_up(5)\n    3\n    \"\"\""), "{code}");
    assert!(!code.contains("halve_up('a')") && code.contains("# ceil of the half"), "{code}");

    // doctest refused the whole docstring: every example goes, the rest of the docstring stays.
    let (c, code) = counts("floor_sum");
    assert_eq!(c, (2, 0, 0, 2), "{code}");
    assert!(code.contains("    Sum of floors.\n    \"\"\"\n    s = math.floor(a)"), "{code}");

    // Made raw, the escaped newline reads as written, and the example holds.
    let (c, code) = counts("count_breaks");
    assert_eq!(c, (1, 1, 0, 0), "{code}");
    assert!(
        code.contains("    r\"\"\"\n    Line breaks.") && code.contains(">>> count_breaks('a\\nb\\nc')\n    2\n"),
        "{code}"
    );

    // The check that accepted them ran doctest and the tests together, and passed.
    for r in &acc {
        let check = r.attempts.iter().find(|a| a.kind == AttemptKind::Examples).expect("a check attempt");
        let names: Vec<&str> = check.verdict.tests.iter().map(|t| t.name.as_str()).collect();
        assert!(check.verdict.passed() && names.len() >= 2, "{:?}", check.verdict);
        assert!(names.contains(&"DocstringExamplesHold.test_docstring_examples_hold"), "{names:?}");
        assert_eq!(Some(&check.code), r.polished.as_ref().map(|p| &p.code));
    }
    let stats = emit::finalize(&dir, None).unwrap();
    let e = &stats.docstring_examples;
    assert_eq!((e.docstrings, e.found, e.kept, e.corrected, e.dropped), (3, 6, 2, 1, 3));
    let pc = std::fs::read_to_string(dir.dataset().join("prefix_completion.jsonl")).unwrap();
    assert!(pc.contains(">>> halve_up(5)\\n    3\\n") && !pc.contains("halve_up('a')"), "{pc}");
}

/// Functions whose polished docstrings list exceptions, as a code model writes them: one raised by
/// name in the code, one only a test shows (through a base class), one shown by an example; and
/// claims nothing shows (`TypeError`), a subclass where only the base was seen, and `None`. Their
/// return types: `int` for a float (wrong), NumPy's `int` (right), Sphinx's `str` for an int. Their
/// parameter types: `str` for an int (wrong), NumPy's `int` and `float` for ints (right: an int is
/// fine where a float is expected), Sphinx's `int` for a string (wrong).
const RAISES_CORPUS: &str = "import math\n\n\ndef safe_sqrt(x):\n    if x < 0:\n        raise ValueError('negative')\n    return math.sqrt(x)\n\n\ndef floor_div(a, b):\n    q = math.floor(a / b)\n    return q\n\n\ndef int_floor(s):\n    n = math.floor(int(s))\n    return n\n";
const SAFE_SQRT_POLISH: &str = "```python\nimport math\n\ndef safe_sqrt(x):\n    \"\"\"\n    Square root of a non-negative number.\n\n    Args:\n        x (str): The number.\n\n    Returns:\n        int: The root.\n\n    Raises:\n        ValueError: If x is negative.\n        TypeError: If x is not a number.\n    \"\"\"\n    if x < 0:\n        raise ValueError('negative')\n    return math.sqrt(x)\n```";
const FLOOR_DIV_POLISH: &str = "```python\nimport math\n\ndef floor_div(a, b):\n    \"\"\"\n    Floor of a / b.\n\n    Parameters\n    ----------\n    a : int\n        Dividend.\n    b : float\n        Divisor.\n\n    Raises\n    ------\n    ArithmeticError\n        When b is zero.\n    OverflowError\n        When the quotient is too large.\n\n    Returns\n    -------\n    int\n    \"\"\"\n    q = math.floor(a / b)\n    return q\n```";
const INT_FLOOR_POLISH: &str = "```python\nimport math\n\ndef int_floor(s):\n    \"\"\"\n    The integer a string spells.\n\n    Raises:\n    - None: No exceptions are raised.\n\n    :raises ValueError: if s spells no integer.\n    :rtype: str\n    :param int s: the string.\n\n    >>> int_floor('x')\n    Traceback (most recent call last):\n    ValueError: invalid literal for int() with base 10: 'x'\n    \"\"\"\n    n = math.floor(int(s))\n    return n\n```";

#[test]
fn polished_docstring_raises_entries_and_types_hold_against_what_the_function_did() {
    let tmp = tempdir();
    let records = math_records(tmp.path(), "raises.py", RAISES_CORPUS);
    assert_eq!(records.len(), 3);
    let gen = per_function(
        ["safe_sqrt", "floor_div", "int_floor"],
        |name| match name {
            "safe_sqrt" => "self.assertEqual(safe_sqrt(4), 2.0)\n        self.assertEqual(safe_sqrt(0), 0.0)",
            "floor_div" => {
                "self.assertEqual(floor_div(7, 2), 3)\n        self.assertEqual(floor_div(-7, 2), -4)\n        \
                 with self.assertRaises(ZeroDivisionError):\n            floor_div(1, 0)"
            }
            _ => "self.assertEqual(int_floor('3'), 3)\n        self.assertEqual(int_floor('-2'), -2)",
        },
        |name| match name {
            "safe_sqrt" => SAFE_SQRT_POLISH,
            "floor_div" => FLOOR_DIV_POLISH,
            _ => INT_FLOOR_POLISH,
        },
    );
    let dir = RunDir::new(&tmp.path().join("run"));
    synthesize(records, &gen, &sandbox(), &settings(), &dir, &Silent).unwrap();
    let (acc, rej) = read(&dir);
    assert!(rej.is_empty(), "{:?}", rej.iter().map(|r| &r.rejected).collect::<Vec<_>>());
    let polished = |n: &str| {
        let r = acc.iter().find(|r| r.function.name == n).unwrap_or_else(|| panic!("{n} accepted"));
        let p = r.polished.clone().unwrap_or_else(|| panic!("{n} keeps its polish"));
        let c = p.raises.clone().unwrap_or_else(|| panic!("{n}'s Raises entries were checked"));
        ((c.found, c.kept, c.dropped), p.code)
    };

    // Raised by name in the code: kept; TypeError was never seen.
    let (c, code) = polished("safe_sqrt");
    assert_eq!(c, (2, 1, 1), "{code}");
    assert!(code.contains("    Raises:\n        ValueError: If x is negative.\n    \"\"\""), "{code}");
    // It returned floats: the claimed int is corrected.
    assert!(code.contains("    Returns:\n        float: The root.\n"), "{code}");
    assert!(code.contains("    Args:\n        x (int): The number.\n"), "{code}");
    assert!(!code.contains("TypeError"), "{code}");

    // The test saw ZeroDivisionError, an ArithmeticError; nothing showed an overflow.
    let (c, code) = polished("floor_div");
    assert_eq!(c, (2, 1, 1), "{code}");
    assert!(code.contains("    ArithmeticError\n        When b is zero.\n\n    Returns\n"), "{code}");
    assert!(!code.contains("OverflowError"), "{code}");

    // The example's traceback shows the ValueError; `None` claims nothing and goes with its heading.
    let (c, code) = polished("int_floor");
    assert_eq!(c, (2, 1, 1), "{code}");
    assert!(!code.contains("Raises:") && !code.contains("None"), "{code}");
    assert!(
        code.contains(
            "    The integer a string spells.\n\n    :raises ValueError: if s spells no integer.\n    :rtype: int\n"
        ),
        "{code}"
    );
    let r = acc.iter().find(|r| r.function.name == "int_floor").unwrap();
    assert_eq!(r.polished.as_ref().and_then(|p| p.examples.clone()).map(|e| (e.found, e.kept)), Some((1, 1)));

    // Each rewrite was checked, tests and doctest together, and passed.
    for r in &acc {
        let check = r.attempts.iter().find(|a| a.kind == AttemptKind::Examples).expect("a check attempt");
        assert!(check.verdict.passed(), "{:?}", check.verdict);
        assert_eq!(Some(&check.code), r.polished.as_ref().map(|p| &p.code));
    }
    let returns = |n: &str| {
        let r = acc.iter().find(|r| r.function.name == n).unwrap();
        let c = r.polished.as_ref().and_then(|p| p.returns.clone()).unwrap_or_else(|| panic!("{n}'s return type"));
        (c.claimed, c.outcome, c.to)
    };
    use unitcoder::pipeline::code::types::ReturnsOutcome::{Corrected, Held};
    assert_eq!(returns("safe_sqrt"), ("int".into(), Corrected, Some("float".into())));
    assert_eq!(returns("floor_div"), ("int".into(), Held, None));
    assert_eq!(returns("int_floor"), ("str".into(), Corrected, Some("int".into())));
    let params = |n: &str| {
        let r = acc.iter().find(|r| r.function.name == n).unwrap();
        let c = r.polished.as_ref().and_then(|p| p.params.clone()).unwrap_or_else(|| panic!("{n}'s parameters"));
        (c.found, c.held, c.corrected, c.unchecked)
    };
    assert_eq!(params("safe_sqrt"), (1, 0, 1, 0));
    assert_eq!(params("floor_div"), (2, 2, 0, 0));
    assert_eq!(params("int_floor"), (1, 0, 1, 0));
    let floor_div = &acc.iter().find(|r| r.function.name == "floor_div").unwrap().polished.as_ref().unwrap().code;
    assert!(floor_div.contains("    a : int\n        Dividend.\n    b : float\n"), "{floor_div}");
    let int_floor = &acc.iter().find(|r| r.function.name == "int_floor").unwrap().polished.as_ref().unwrap().code;
    assert!(int_floor.contains("    :rtype: int\n    :param str s: the string.\n"), "{int_floor}");
    let p = &emit::finalize(&dir, None).unwrap().docstring_params;
    assert_eq!((p.docstrings, p.found, p.held, p.corrected, p.unchecked), (3, 4, 2, 2, 0));
    let stats = emit::finalize(&dir, None).unwrap();
    let t = &stats.docstring_returns;
    assert_eq!((t.claims, t.held, t.corrected, t.unchecked), (3, 1, 2, 0));
    let e = &stats.docstring_raises;
    assert_eq!((e.docstrings, e.found, e.kept, e.dropped), (3, 6, 3, 3));
    let report = unitcoder::pipeline::report::write_report(&dir).unwrap();
    assert_eq!(report.docstring_raises, stats.docstring_raises);
    let md = std::fs::read_to_string(tmp.path().join("run").join("report.md")).unwrap();
    assert!(md.contains("The `Raises` entries of 3 accepted docstrings: 6 found, 3 kept"), "{md}");
    assert!(md.contains("The return types 3 accepted docstrings claim") && md.contains("1 held, 2 corrected"), "{md}");
}

/// The probe watches the function through a stand-in: the tests still reach what the function has
/// of its own (an lru_cache's `cache_info`), and a test that fails because of the stand-in (it looks
/// at the function's type) does not fail the probe, whose report is then read all the same.
#[test]
fn the_probe_watches_an_lru_cached_function_and_reports_beside_a_test_that_fails_under_it() {
    use unitcoder::pipeline::code::examples::{probe_tests, read_probe};
    use unitcoder::pipeline::code::{
        raises::raised_in_code,
        types::{param_claims_of, returns_claim},
    };
    let program = "import functools\n\n\n@functools.lru_cache(maxsize=None)\ndef twice(x):\n    \"\"\"Twice x.\n\n    Args:\n        x (str): a value.\n\n    Returns:\n        str: the double.\n\n    Raises:\n        TypeError: if x is None.\n    \"\"\"\n    if x is None:\n        raise TypeError('none')\n    return 2 * x\n";
    let suite = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(twice(2), 4)\n        self.assertEqual(twice.cache_info().misses, 1)\n        with self.assertRaises(TypeError):\n            twice(None)\n\n    def test_its_type(self):\n        self.assertEqual(type(twice).__name__, '_lru_cache_wrapper')\n";
    let claim = returns_claim(program, "twice");
    assert_eq!(claim.as_deref(), Some("str"));
    let params = param_claims_of(program, "twice");
    assert_eq!(params, [("x".to_string(), "str".to_string())]);
    let tests = probe_tests(suite, "twice", &raised_in_code(program, "twice"), claim.as_deref(), &params);
    let job = unitcoder::sandbox::Job::new("probe", program.to_string(), tests).with_strict_assertions();
    let verdict = sandbox().run(&job);
    let status = |name: &str| verdict.tests.iter().find(|t| t.name.ends_with(name)).map(|t| t.status);
    use unitcoder::sandbox::TestStatus;
    assert_eq!(status("test_a"), Some(TestStatus::Pass), "{verdict:?}");
    assert_eq!(status("test_its_type"), Some(TestStatus::Fail), "{verdict:?}");
    assert_eq!(status("test_docstring_examples"), Some(TestStatus::Pass), "{verdict:?}");
    let probe = read_probe(&verdict.stdout_tail).unwrap_or_else(|| panic!("no report: {verdict:?}"));
    assert!(probe.raised.iter().any(|c| c.first().map(String::as_str) == Some("TypeError")), "{:?}", probe.raised);
    let returns = probe.returns.expect("the return type was checked");
    assert!(!returns.holds && returns.returned == ["int"], "{returns:?}");
    // Through the lru_cache, the call that returned passed an int; the one that raised is not counted.
    assert_eq!(probe.params.len(), 1);
    assert!(!probe.params[0].holds && probe.params[0].seen == ["int"], "{:?}", probe.params);

    // A recursive function calls itself through its global name, that is, through the stand-in:
    // only the outermost call is watched, and what leaves it is noted all the same.
    let program = "def fib(n):\n    \"\"\"Fibonacci.\n\n    Returns:\n        int: F(n).\n    \"\"\"\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n";
    let suite = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(fib(22), 17711)\n        with self.assertRaises(TypeError):\n            fib('x')\n";
    let tests = probe_tests(suite, "fib", &[], returns_claim(program, "fib").as_deref(), &[]);
    let verdict =
        sandbox().run(&unitcoder::sandbox::Job::new("fib", program.to_string(), tests).with_strict_assertions());
    assert!(verdict.passed(), "{verdict:?}");
    let probe = read_probe(&verdict.stdout_tail).unwrap_or_else(|| panic!("no report: {verdict:?}"));
    assert_eq!(probe.raised.first().and_then(|c| c.first()).map(String::as_str), Some("TypeError"));
    let returns = probe.returns.expect("checked");
    assert!(returns.holds && returns.returned == ["int"], "{returns:?}");
}

/// The probe's report comes back through the verdict's bounded stdout tail: a docstring with many
/// examples, long outputs among them, still gets a whole report, which names the ones that failed
/// (the last ones' outputs left out, so those are dropped rather than corrected); one with far too
/// many examples gets a report that says so, and loses its examples.
#[test]
fn the_examples_probe_reports_thirty_examples_whole_through_the_stdout_tail() {
    use unitcoder::pipeline::code::examples::{probe_tests, read_probe};
    let mut doc = String::from("    \"\"\"\n    Repeats.\n\n");
    for i in 0..30 {
        // Every third shows a wrong result; all print 200 characters or more.
        let want = if i % 3 == 0 { "'no'".to_string() } else { format!("'{}'", "ab".repeat(100 + i)) };
        doc.push_str(&format!("    >>> rep({})\n    {want}\n", 100 + i));
    }
    let program = format!("def rep(n):\n{doc}    \"\"\"\n    return 'ab' * n\n");
    let job =
        unitcoder::sandbox::Job::new("probe", program, probe_tests("", "rep", &[], None, &[])).with_strict_assertions();
    let verdict = sandbox().run(&job);
    assert!(verdict.passed(), "{verdict:?}");
    let probe = read_probe(&verdict.stdout_tail).unwrap_or_else(|| panic!("no whole report: {}", verdict.stdout_tail));
    assert_eq!(probe.examples.len(), 30);
    let failed: Vec<usize> = probe.examples.iter().enumerate().filter(|(_, e)| !e.ok).map(|(i, _)| i).collect();
    assert_eq!(failed, (0..30).step_by(3).collect::<Vec<_>>());
    assert!(probe.examples.iter().all(|e| e.stable && !e.unordered && e.exception.is_none()));
    assert_eq!(probe.examples[3].got.as_deref(), Some(format!("'{}'\n", "ab".repeat(103)).as_str()));
    assert!(probe.examples[1].got.is_none(), "a held example sends no output");
    assert!(probe.examples[27].got.is_none(), "the last outputs are left out to fit");

    let many: String = (0..400).map(|i| format!("    >>> rep({i})\n    'x'\n")).collect();
    let program = format!("def rep(n):\n    \"\"\"\n    Repeats.\n\n{many}    \"\"\"\n    return 'ab' * n\n");
    let job =
        unitcoder::sandbox::Job::new("probe", program, probe_tests("", "rep", &[], None, &[])).with_strict_assertions();
    let verdict = sandbox().run(&job);
    let probe = read_probe(&verdict.stdout_tail).unwrap_or_else(|| panic!("no whole report: {verdict:?}"));
    assert_eq!(probe.parse_error.as_deref(), Some("400 examples: too many to report"));

    // Thirty exception classes with long names, each deriving from the one before: the evidence for
    // `Raises` entries alone would be some 20 KB. It is cut from the last class seen up to fit (the deepest are
    // seen first here).
    let program = "class ErrorWithAVeryLongNameThatGoesOnAndOnToFillTheReport0(ValueError):\n    pass\n\n\n\
                   for _i in range(1, 30):\n    globals()['ErrorWithAVeryLongNameThatGoesOnAndOnToFillTheReport%d' % _i] = \
                   type('ErrorWithAVeryLongNameThatGoesOnAndOnToFillTheReport%d' % _i, \
                   (globals()['ErrorWithAVeryLongNameThatGoesOnAndOnToFillTheReport%d' % (_i - 1)],), {})\n\n\n\
                   def fail(i):\n    \"\"\"Fails.\n\n    Raises:\n        ValueError: always.\n    \"\"\"\n    \
                   raise globals()['ErrorWithAVeryLongNameThatGoesOnAndOnToFillTheReport%d' % i]('no')\n";
    let suite = "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        for i in reversed(range(30)):\n            with self.assertRaises(ValueError):\n                fail(i)\n";
    let job = unitcoder::sandbox::Job::new("probe", program.to_string(), probe_tests(suite, "fail", &[], None, &[]));
    let verdict = sandbox().run(&job.with_strict_assertions());
    assert!(verdict.passed(), "{verdict:?}");
    let probe = read_probe(&verdict.stdout_tail).unwrap_or_else(|| panic!("no whole report: {}", verdict.stdout_tail));
    assert!(!probe.raised.is_empty() && probe.raised.len() < 24, "{}", probe.raised.len());
    // However deep, a class keeps the bases next to Exception, where the names docstrings use are.
    assert!(
        probe.raised.iter().all(|c| c.len() <= 12 && c.ends_with(&["ValueError".into(), "Exception".into()])),
        "{:?}",
        probe.raised
    );
}

/// Placeholders of the prompts left in a reply, as small models leave them: a test whose expected value
/// is the literal `...` is cut before the first run; a polish that copies the placeholders into the
/// docstring ("what it is.") is set aside: the record is accepted as verified, without that
/// docstring, which would have become a training prompt.
#[test]
fn the_prompts_placeholders_left_in_tests_or_a_docstring_are_set_aside() {
    let tmp = tempdir();
    let src = "import math\n\n\ndef echoed(x):\n    y = math.floor(x)\n    return y + 1\n";
    let records = math_records(tmp.path(), "echoed.py", src);
    let echo = "```python\nimport math\n\ndef echoed(x):\n    \"\"\"\n    One or two sentences on what the function does.\n\n    Parameters:\n    - x (float): what it is.\n    \"\"\"\n    y = math.floor(x)\n    return y + 1\n```";
    let gen = Scripted::new(move |r, _| {
        let text = prompt_text(r);
        if text.contains("Write unit tests") {
            // One test keeps the prompt's `...` for its expected value: cut before the first run.
            let placeholder = "    def test_c(self):\n        self.assertEqual(NAME(4.5), ...)\n";
            format!("```python\n{}{placeholder}```\n", TESTS_PLUS_ONE).replace("NAME", "echoed")
        } else {
            echo.to_string()
        }
    });
    let dir = RunDir::new(&tmp.path().join("run"));
    synthesize(records, &gen, &sandbox(), &settings(), &dir, &Silent).unwrap();
    let (acc, rej) = read(&dir);
    assert!(rej.is_empty(), "{rej:?}");
    let r = &acc[0];
    let tests = r.tests.as_ref().unwrap();
    assert_eq!(tests.dropped, ["TestCases.test_c"]);
    assert!(!tests.code.contains("...") && tests.code.contains("test_b"), "{}", tests.code);
    assert!(r.polished.is_none(), "{:?}", r.polished);
    let d = r.discarded.iter().find(|d| d.kind == AttemptKind::Polish).expect("the polish is kept as discarded");
    assert_eq!(d.reason, "template_echo");
    assert!(d.code.contains("what it is."), "{}", d.code);
}

/// A cached verdict is reused only under the environment (interpreter and library versions) it was
/// found in: a run's cache carried to another `--python`, or kept across a `pip install`, runs its
/// programs again.
#[test]
fn cached_verdicts_are_reused_only_under_the_environment_they_were_found_in() {
    let s = setup();
    let records: Vec<Record> = s.records.iter().filter(|r| r.function.name == "good").cloned().collect();
    let run = |name: &str, environment: &str| {
        let dir = RunDir::new(&s.root.join(name));
        let settings = SynthSettings { environment: environment.into(), ..settings() };
        synthesize(records.clone(), &scripted(), &sandbox(), &settings, &dir, &Silent).unwrap()
    };
    let first = run("first", "python 3.11, digest a");
    assert!(first.executions > 0 && first.executions_cached == 0, "{first:?}");
    let carry = |to: &str| {
        std::fs::create_dir_all(s.root.join(to).join("cache")).unwrap();
        for f in std::fs::read_dir(s.root.join("first/cache")).unwrap() {
            let f = f.unwrap().path();
            std::fs::copy(&f, s.root.join(to).join("cache").join(f.file_name().unwrap())).unwrap();
        }
    };
    carry("same");
    let same = run("same", "python 3.11, digest a");
    assert_eq!((same.executions, same.executions_cached), (0, first.executions), "{same:?}");
    carry("other");
    let other = run("other", "python 3.11, digest b");
    assert_eq!((other.executions, other.executions_cached), (first.executions, 0), "{other:?}");
}

/// The probe that reads what the original returns where a failing check expected something else,
/// run in the real sandbox on NumPy code that shadows `bool` and `any` (`from numpy import *`): a
/// NumPy scalar (in a list too) is read as its plain value, a float compared to 7 significant
/// digits; an array, a value that changes from run to run, a set, and a list whose order follows
/// the hash seed (the same in both runs of one interpreter: fresh interpreters under other seeds
/// find it) are left out. An `assertIsNone` of a value becomes an equality check, and a variable
/// that holds the expected value takes it. The rewritten checks pass against the original.
#[test]
fn the_expected_values_probe_reads_numpy_scalars_and_leaves_out_what_a_literal_cannot_state() {
    use unitcoder::pipeline::code::{self, expected};
    use unitcoder::sandbox::Job;
    let program = "import random\nimport numpy as np\nfrom numpy import *\n\n\ndef stat(kind):\n    if kind == 'words':\n        return list({'pear', 'apple', 'fig', 'kiwi'})\n    if kind == 'mean':\n        return np.mean([1, 2, 4])\n    if kind == 'count':\n        return np.int64(3)\n    if kind == 'list':\n        return [np.int64(1), np.int64(2)]\n    if kind == 'array':\n        return np.array([1, 2])\n    if kind == 'random':\n        return random.random()\n    if kind == 'set':\n        return {'a', 'b'}\n    if kind == 'label':\n        return 'ok'\n    return np.bool_(True)\n";
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_mean(self):\n        self.assertEqual(stat('mean'), 2)\n\n    def test_count(self):\n        self.assertEqual(4, stat('count'))\n\n    def test_list(self):\n        self.assertEqual(stat('list'), [0])\n\n    def test_array(self):\n        self.assertEqual(stat('array'), [0])\n\n    def test_random(self):\n        self.assertEqual(stat('random'), 0.5)\n\n    def test_set(self):\n        self.assertEqual(stat('set'), {'a'})\n\n    def test_flag(self):\n        self.assertFalse(stat('flag'))\n\n    def test_words(self):\n        self.assertEqual(stat('words'), [])\n\n    def test_label(self):\n        self.assertIsNone(stat('label'))\n\n    def test_expected(self):\n        expected = [9]\n        result = stat('list')\n        self.assertEqual(result, expected)\n";
    let names = code::test_names(tests);
    let targets = expected::expectations(tests, "stat", &names);
    assert_eq!(targets.len(), 10);
    let sandbox = Sandbox::new(crate::common::sandbox_config(1)).expect("a sandbox");
    let v = sandbox.run(&Job::new("probe", program, expected::probe_tests(tests, program, &targets)));
    let values = expected::read_probe(&v.stdout_tail).unwrap_or_else(|| panic!("no report in {v:?}"));
    let read: Vec<(&str, &str)> =
        values.iter().map(|(k, v)| (k.trim_start_matches("TestCases.test_"), v.as_str())).collect();
    assert_eq!(
        read,
        [
            ("count", "3"),
            ("expected", "[1, 2]"),
            ("flag", "True"),
            ("label", "'ok'"),
            ("list", "[1, 2]"),
            ("mean", "2.3333333333333335")
        ]
    );
    let (rewritten, done) = expected::reconcile(tests, &targets, &values).unwrap();
    assert_eq!(done.len(), 6);
    assert!(rewritten.contains("self.assertAlmostEqual(stat('mean'), 2.3333333333333335)\n"), "{rewritten}");
    assert!(rewritten.contains("self.assertEqual(3, stat('count'))"), "{rewritten}");
    assert!(rewritten.contains("self.assertTrue(stat('flag'))"), "{rewritten}");
    // A `None` expected where the function gives a value; a variable that holds the expected value.
    assert!(rewritten.contains("self.assertEqual(stat('label'), 'ok')"), "{rewritten}");
    assert!(rewritten.contains("expected = [1, 2]\n        result = stat('list')\n"), "{rewritten}");
    let rest: Vec<String> = names.into_iter().filter(|n| !done.contains(n)).collect();
    let kept = code::without_tests(&rewritten, &rest).unwrap();
    let v = sandbox.run(&Job::new("rewritten", program, kept.clone()));
    assert!(v.passed(), "{kept}\n{v:?}");
    assert_eq!(v.tests.len(), 6);
}
