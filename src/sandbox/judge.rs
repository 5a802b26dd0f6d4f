//! The verdict, decided on the trusted side from what the fork server observed: the child's exit
//! status, the wall clock, the OOM counter, and the event stream. Events are only believed when they
//! carry this run's nonce, arrive once per test, end with `done`, and are followed by the harness's
//! own clean exit; every test must have executed an assertion (unless the job says, as benchmark
//! jobs do, that a test which raises nothing passes, as under `unittest`). Under strict rules
//! (`Job::strict_assertions`) a failed assertion fails its test even when the test caught it, and
//! assertions that cannot fail do not count. Pure logic, unit-tested below.

use super::worker::Report;
use super::{Coverage, Isolation, Status, TestOutcome, TestStatus, Verdict};
use serde::Deserialize;
use std::collections::HashSet;

const SIGKILL: i32 = 9;
const SIGXCPU: i32 = 24;
const MODULE: &str = "<module>";
const NO_ASSERTION: &str = "no assertion executed";

#[derive(Debug, Deserialize)]
struct Event {
    k: String,
    #[serde(default)]
    t: Option<String>,
    #[serde(default)]
    s: Option<String>,
    #[serde(default)]
    n: Option<u64>,
    #[serde(default)]
    m: Option<String>,
    #[serde(default)]
    r: Option<String>,
    /// Strict rules only: assertions that cannot fail, executed by this test.
    #[serde(default)]
    z: Option<u64>,
    /// Strict rules only: failed assertions (caught by the test or not), and the first one's message.
    #[serde(default)]
    c: Option<u64>,
    #[serde(default)]
    cm: Option<String>,
    /// A `cov` event's counts: lines, lines hit, branch outcomes, outcomes taken.
    #[serde(default)]
    lt: u64,
    #[serde(default)]
    lh: u64,
    #[serde(default)]
    bt: u64,
    #[serde(default)]
    bh: u64,
}

/// Why a test that raised nothing is not a pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vacuity {
    /// It executed an assertion that could fail, or it failed on its own.
    Meaningful,
    /// It executed no assertion at all.
    NoAssertion,
    /// It executed only assertions that cannot fail (strict rules).
    OnlyTautologies,
}

/// A test's outcome, the exception type it ended with, and whether it checked anything.
type Judged = (TestOutcome, Option<String>, Vacuity);

/// What the event stream says, once authenticated.
#[derive(Default)]
struct Stream {
    tests: Vec<Judged>,
    running: Option<String>,
    tamper: Vec<String>,
    /// Tests whose end was reported more than once (a forked copy of the harness running on), in
    /// order of first repetition: named once each rather than once per repetition.
    twice: Vec<String>,
    load: Option<(String, String)>,
    setup: Option<String>,
    coverage: Option<Coverage>,
    done: bool,
}

fn parse(report: &Report, nonce: &str, assertions_optional: bool) -> Stream {
    let mut st = Stream::default();
    let mut ended = HashSet::new();
    let prefix = format!("{nonce} ");
    if report.events_truncated {
        st.tamper.push("the event stream overflowed".into());
    }
    for line in &report.events {
        let Some(ev) = line.strip_prefix(&prefix).and_then(|rest| serde_json::from_str::<Event>(rest).ok()) else {
            st.tamper.push("a forged or malformed event reached the verdict channel".into());
            continue;
        };
        if st.done {
            st.tamper.push("events after the run finished".into());
            continue;
        }
        match ev.k.as_str() {
            "start" => st.running = ev.t,
            "end" => {
                let name = ev.t.unwrap_or_default();
                if !ended.insert(name.clone()) {
                    if !st.twice.contains(&name) {
                        st.twice.push(name);
                    }
                    continue;
                }
                st.running = None;
                let status = match ev.s.as_deref() {
                    Some("pass") => TestStatus::Pass,
                    Some("fail") => TestStatus::Fail,
                    Some("skip") => TestStatus::Skip,
                    _ => TestStatus::Error,
                };
                let mut outcome = TestOutcome { name, status, message: ev.m };
                let mut vacuity = Vacuity::Meaningful;
                let caught = ev.c.unwrap_or(0);
                if matches!(status, TestStatus::Pass | TestStatus::Skip) && caught > 0 {
                    // The test caught its own failed assertion (strict rules): a failure all the same.
                    outcome.status = TestStatus::Fail;
                    let first = ev.cm.unwrap_or_else(|| "AssertionError".into());
                    outcome.message = Some(format!("a failed assertion was caught by the test: {first}"));
                } else if status == TestStatus::Pass && ev.n.unwrap_or(0) == 0 {
                    if outcome.name == MODULE && !report.expected.iter().any(|e| e == MODULE) {
                        continue; // module code of unittest-style tests: not a test by itself
                    }
                    if assertions_optional {
                        st.tests.push((outcome, ev.r, vacuity));
                        continue;
                    }
                    outcome.status = TestStatus::Fail;
                    if ev.z.unwrap_or(0) > 0 {
                        vacuity = Vacuity::OnlyTautologies;
                        outcome.message = Some(format!("{NO_ASSERTION} (only assertions that cannot fail)"));
                    } else {
                        vacuity = Vacuity::NoAssertion;
                        outcome.message = Some(NO_ASSERTION.into());
                    }
                }
                st.tests.push((outcome, ev.r, vacuity));
            }
            "tamper" => st.tamper.push(ev.m.unwrap_or_default()),
            "load" => st.load = Some((ev.r.unwrap_or_default(), ev.m.unwrap_or_default())),
            "setup" => st.setup = Some(ev.m.unwrap_or_default()),
            "cov" => {
                st.coverage = Some(Coverage {
                    tracer: ev.m.unwrap_or_default(),
                    lines: ev.lt,
                    lines_hit: ev.lh.min(ev.lt),
                    branches: ev.bt,
                    branches_hit: ev.bh.min(ev.bt),
                })
            }
            "done" => st.done = true,
            other => st.tamper.push(format!("unknown event kind {other:?}")),
        }
    }
    st
}

/// The longest tampering message: a forking program can emit thousands of stray events.
const TAMPER_MESSAGE_MAX: usize = 600;

/// The tampering findings, each once in order of first appearance with a count when repeated
/// ("events after the run finished (x 187)"), then the tests reported twice, cut to
/// [`TAMPER_MESSAGE_MAX`] bytes.
fn tamper_message(findings: &[String], twice: &[String]) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for f in findings {
        match counted.iter_mut().find(|(seen, _)| *seen == f.as_str()) {
            Some((_, n)) => *n += 1,
            None => counted.push((f.as_str(), 1)),
        }
    }
    let mut parts: Vec<String> =
        counted.iter().map(|&(f, n)| if n > 1 { format!("{f} (x {n})") } else { f.to_string() }).collect();
    match twice {
        [] => {}
        [one] => parts.push(format!("test {one} was reported twice")),
        _ => {
            let names = twice.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
            let more = if twice.len() > 5 { format!(" and {} more", twice.len() - 5) } else { String::new() };
            parts.push(format!("{} tests were reported twice: {names}{more}", twice.len()));
        }
    }
    let mut message = parts.join("; ");
    if message.len() > TAMPER_MESSAGE_MAX {
        let mut cut = TAMPER_MESSAGE_MAX;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str("...");
    }
    message
}

/// Decides the verdict for job `id` from the server's report.
/// `assertions_optional`: [`super::Job::assertions_optional`], already off under strict rules.
pub(crate) fn judge(
    id: &str,
    report: &Report,
    nonce: &str,
    isolation: &Isolation,
    duration_ms: u64,
    assertions_optional: bool,
) -> Verdict {
    let mut v = Verdict {
        id: id.to_string(),
        status: Status::Error,
        reason: None,
        tests: Vec::new(),
        duration_ms,
        stdout_tail: report.stdout_tail.clone(),
        stderr_tail: report.stderr_tail.clone(),
        isolation: isolation.clone(),
        coverage: None,
        running: None,
    };
    let verdict = |mut v: Verdict, status: Status, reason: &str| {
        v.status = status;
        v.reason = if status == Status::Pass { None } else { Some(reason.to_string()) };
        v
    };
    if let Some(e) = &report.setup_error {
        return verdict(v, Status::Error, &format!("sandbox: {e}"));
    }
    if let Some(e) = &report.load_error {
        v.tests.push(TestOutcome { name: format!("<{}>", e.w), status: TestStatus::Error, message: Some(e.m.clone()) });
        return verdict(v, Status::Error, &e.r);
    }
    let st = parse(report, nonce, assertions_optional);
    v.tests = st.tests.iter().map(|(t, _, _)| t.clone()).collect();
    // Only the harness sends it, after the last test and before `done`.
    v.coverage = st.coverage.clone().filter(|_| st.done);
    if report.timed_out || report.signal == Some(SIGXCPU) || report.oom {
        // The reason stays the bare limit (statistics count by it); the test goes beside it.
        v.running = st.running.clone();
    }
    if report.timed_out {
        return verdict(v, Status::Timeout, "timeout");
    }
    if report.signal == Some(SIGXCPU) {
        return verdict(v, Status::Timeout, "cpu limit");
    }
    if report.oom {
        return verdict(v, Status::Error, "memory");
    }
    if !st.tamper.is_empty() || !st.twice.is_empty() {
        let message = tamper_message(&st.tamper, &st.twice);
        v.tests.push(TestOutcome { name: "<sandbox>".into(), status: TestStatus::Error, message: Some(message) });
        return verdict(v, Status::Error, "tampering");
    }
    if let Some(m) = st.setup {
        return verdict(v, Status::Error, &format!("sandbox setup: {m}"));
    }
    if let Some((r, m)) = st.load {
        v.tests.push(TestOutcome { name: "<program>".into(), status: TestStatus::Error, message: Some(m) });
        let reason = if r == "MemoryError" { "memory".to_string() } else { r };
        return verdict(v, Status::Error, &reason);
    }
    if !st.done {
        let during = st.running.map(|t| format!(" during {t}")).unwrap_or_default();
        let reason = match (report.signal, report.exit_code) {
            (Some(SIGKILL), _) if report.leftover > 0 => format!("killed{during}"),
            (Some(sig), _) => format!("killed by signal {sig}{during}"),
            (None, code) => format!("early exit (status {}){during}", code.unwrap_or(-1)),
        };
        return verdict(v, Status::Error, &reason);
    }
    if report.exit_code != Some(0) {
        return verdict(v, Status::Error, "early exit after the tests");
    }
    let module_failed = st.tests.iter().any(|(t, _, _)| t.name == MODULE && t.status != TestStatus::Pass);
    if !module_failed {
        let seen: HashSet<&str> = st.tests.iter().map(|(t, _, _)| t.name.as_str()).collect();
        if let Some(missing) = report.expected.iter().find(|e| !seen.contains(e.as_str())) {
            let message = format!("test {missing} was defined but never ran");
            v.tests.push(TestOutcome { name: "<sandbox>".into(), status: TestStatus::Error, message: Some(message) });
            return verdict(v, Status::Error, "tampering");
        }
    }
    if st.tests.is_empty() {
        return verdict(v, Status::Fail, "no tests ran");
    }
    if st.tests.iter().all(|(t, _, _)| t.status == TestStatus::Skip) {
        return verdict(v, Status::Fail, "all tests skipped");
    }
    if let Some((_, r, _)) = st.tests.iter().find(|(t, _, _)| t.status == TestStatus::Error) {
        let r = r.clone().unwrap_or_else(|| "error".into());
        return verdict(v, Status::Error, if r == "MemoryError" { "memory" } else { &r });
    }
    if let Some((_, _, vacuity)) = st.tests.iter().find(|(t, _, _)| t.status == TestStatus::Fail) {
        // A suite in which no test checked anything, and some only with assertions that cannot
        // fail: `vacuous` (strict rules only report such assertions).
        let ran: Vec<Vacuity> = st.tests.iter().filter(|(t, _, _)| t.status != TestStatus::Skip).map(|x| x.2).collect();
        if !ran.contains(&Vacuity::Meaningful) && ran.contains(&Vacuity::OnlyTautologies) {
            return verdict(v, Status::Fail, "vacuous");
        }
        let reason = if *vacuity == Vacuity::Meaningful { "assertion" } else { NO_ASSERTION };
        return verdict(v, Status::Fail, reason);
    }
    verdict(v, Status::Pass, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(events: &[&str]) -> Report {
        Report {
            exit_code: Some(0),
            events: events.iter().map(|e| format!("N {e}")).collect(),
            expected: vec!["T.test_a".into()],
            ..Report::default()
        }
    }

    fn run(r: &Report) -> Verdict {
        judge("x", r, "N", &Isolation::default(), 1, false)
    }

    const PASS: &str = r#"{"k":"end","t":"T.test_a","s":"pass","n":1}"#;
    const DONE: &str = r#"{"k":"done"}"#;

    #[test]
    fn a_reported_pass_with_assertions_and_done_passes() {
        assert_eq!(run(&report(&[PASS, DONE])).status, Status::Pass);
    }

    #[test]
    fn a_missing_done_or_bad_exit_is_an_error() {
        assert_eq!(run(&report(&[PASS])).status, Status::Error);
        let mut r = report(&[PASS, DONE]);
        r.exit_code = Some(3);
        assert_eq!(run(&r).status, Status::Error);
    }

    #[test]
    fn events_without_the_nonce_or_duplicated_are_tampering() {
        let mut r = report(&[PASS, DONE]);
        r.events.insert(0, format!("M {PASS}"));
        assert_eq!(run(&r).reason.as_deref(), Some("tampering"));
        let r = report(&[PASS, PASS, DONE]);
        assert_eq!(run(&r).reason.as_deref(), Some("tampering"));
    }

    #[test]
    fn tests_without_assertions_or_all_skipped_or_none_do_not_pass() {
        let r = report(&[r#"{"k":"end","t":"T.test_a","s":"pass","n":0}"#, DONE]);
        assert_eq!(run(&r).reason.as_deref(), Some("no assertion executed"));
        let r = report(&[r#"{"k":"end","t":"T.test_a","s":"skip","n":0}"#, DONE]);
        assert_eq!(run(&r).reason.as_deref(), Some("all tests skipped"));
        let mut r = report(&[DONE]);
        r.expected.clear();
        assert_eq!(run(&r).reason.as_deref(), Some("no tests ran"));
    }

    #[test]
    fn with_optional_assertions_a_test_that_raises_nothing_passes_and_nothing_else_changes() {
        let optional = |r: &Report| judge("x", r, "N", &Isolation::default(), 1, true);
        let quiet = r#"{"k":"end","t":"T.test_a","s":"pass","n":0}"#;
        assert_eq!(optional(&report(&[quiet, DONE])).status, Status::Pass);
        // A failing or skipped test, no tests at all, or a missing `done` are judged as before.
        let fail = r#"{"k":"end","t":"T.test_a","s":"fail","n":1,"m":"AssertionError"}"#;
        assert_eq!(optional(&report(&[fail, DONE])).status, Status::Fail);
        let skip = r#"{"k":"end","t":"T.test_a","s":"skip","n":0}"#;
        assert_eq!(optional(&report(&[skip, DONE])).reason.as_deref(), Some("all tests skipped"));
        let mut none = report(&[DONE]);
        none.expected.clear();
        assert_eq!(optional(&none).reason.as_deref(), Some("no tests ran"));
        assert_ne!(optional(&report(&[quiet])).status, Status::Pass);
    }

    #[test]
    fn repeated_tampering_is_counted_once_and_bounded() {
        let findings: Vec<String> = std::iter::repeat_n("events after the run finished".to_string(), 200).collect();
        assert_eq!(
            tamper_message(&findings, &["T.test_a".to_string()]),
            "events after the run finished (x 200); test T.test_a was reported twice"
        );
        let twice: Vec<String> = (0..40).map(|i| format!("T.test_{i}")).collect();
        assert_eq!(
            tamper_message(&[], &twice),
            "40 tests were reported twice: T.test_0, T.test_1, T.test_2, T.test_3, T.test_4 and 35 more"
        );
        let many: Vec<String> = (0..100).map(|i| format!("the assertion method assert{i} was replaced")).collect();
        let m = tamper_message(&many, &[]);
        assert!(m.len() <= TAMPER_MESSAGE_MAX + 3 && m.ends_with("..."), "{m}");
    }

    #[test]
    fn an_expected_test_that_never_ran_is_tampering() {
        let mut r = report(&[PASS, DONE]);
        r.expected.push("T.test_b".into());
        assert_eq!(run(&r).reason.as_deref(), Some("tampering"));
    }

    #[test]
    fn under_strict_rules_a_caught_failed_assertion_fails_its_test() {
        let caught = r#"{"k":"end","t":"T.test_a","s":"pass","n":1,"z":0,"c":1,"cm":"AssertionError: 0 != 3"}"#;
        let v = run(&report(&[caught, DONE]));
        assert_eq!((v.status, v.reason.as_deref()), (Status::Fail, Some("assertion")));
        assert!(v.tests[0].message.as_deref().unwrap_or("").contains("caught by the test: AssertionError: 0 != 3"));
        // A skip after a failed assertion is no way out either.
        let skipped = r#"{"k":"end","t":"T.test_a","s":"skip","n":1,"z":0,"c":1}"#;
        assert_eq!(run(&report(&[skipped, DONE])).status, Status::Fail);
        // Without the strict fields (benchmark jobs) nothing changes.
        assert_eq!(run(&report(&[PASS, DONE])).status, Status::Pass);
    }

    #[test]
    fn a_suite_of_only_assertions_that_cannot_fail_is_vacuous() {
        let taut_a = r#"{"k":"end","t":"T.test_a","s":"pass","n":0,"z":2,"c":0}"#;
        let taut_b = r#"{"k":"end","t":"T.test_b","s":"pass","n":0,"z":1,"c":0}"#;
        let mut r = report(&[taut_a, taut_b, DONE]);
        r.expected.push("T.test_b".into());
        let v = run(&r);
        assert_eq!((v.status, v.reason.as_deref()), (Status::Fail, Some("vacuous")));
        assert!(v.tests[0].message.as_deref().unwrap_or("").contains("cannot fail"), "{v:#?}");
        // One test with a real assertion: the other is a test without one, as before.
        let real_b = r#"{"k":"end","t":"T.test_b","s":"pass","n":1,"z":1,"c":0}"#;
        let mut r = report(&[taut_a, real_b, DONE]);
        r.expected.push("T.test_b".into());
        assert_eq!(run(&r).reason.as_deref(), Some("no assertion executed"));
    }

    #[test]
    fn a_coverage_event_before_done_is_kept_and_bounded() {
        let cov = r#"{"k":"cov","m":"sys.settrace","lt":4,"lh":3,"bt":2,"bh":9}"#;
        let v = run(&report(&[PASS, cov, DONE]));
        assert_eq!(v.status, Status::Pass);
        let c = v.coverage.expect("coverage");
        assert_eq!((c.tracer.as_str(), c.lines, c.lines_hit, c.branches, c.branches_hit), ("sys.settrace", 4, 3, 2, 2));
        assert!(run(&report(&[PASS, cov])).coverage.is_none(), "a run that did not finish has no coverage");
    }

    #[test]
    fn timeouts_and_memory_are_reported_as_such() {
        let mut r = report(&[PASS, DONE]);
        r.timed_out = true;
        assert_eq!(run(&r).status, Status::Timeout);
        let mut r = report(&[]);
        r.oom = true;
        r.signal = Some(9);
        assert_eq!(run(&r).reason.as_deref(), Some("memory"));
        assert_eq!(run(&r).running, None, "no test had started");
        // The test that started and never ended is named beside the bare reason.
        let mut r = report(&[PASS, r#"{"k":"start","t":"T.test_b"}"#]);
        r.timed_out = true;
        let v = run(&r);
        assert_eq!((v.reason.as_deref(), v.running.as_deref()), (Some("timeout"), Some("T.test_b")));
    }
}
