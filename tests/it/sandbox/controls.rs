//! Legitimate programs and every supported test style must pass.

use super::*;

#[test]
fn every_test_style_passes() {
    assert_pass(&check(ADD, ADD_CHECK));
    assert_pass(&check(ADD, ADD_UNITTEST));
    assert_pass(&check(ADD, "assert add(1, 2) == 3\nassert add(-1, 1) == 0\n"));
    assert_pass(&check(
        ADD,
        "def test_add():\n    assert add(1, 2) == 3\n\ndef test_neg():\n    assert add(-1, -1) == -2\n",
    ));
    let main_guard = format!("{ADD_UNITTEST}\nif __name__ == '__main__':\n    unittest.main()\n");
    assert_pass(&check(ADD, &main_guard));
}

#[test]
fn wrong_programs_fail_with_the_failing_line() {
    let wrong = "def add(a, b):\n    return a - b\n";
    let v = check(wrong, ADD_UNITTEST);
    assert_eq!(v.status, Status::Fail, "{v:#?}");
    assert_eq!(v.reason.as_deref(), Some("assertion"));
    let failed = v.tests.iter().find(|t| t.name == "TestCases.test_small").expect("test reported");
    let message = failed.message.as_deref().unwrap_or("");
    assert!(message.contains("-1 != 3") && message.contains("tests line 5"), "{message}");
    let v = check("def add(a, b):\n    return a / 0\n", ADD_CHECK);
    assert_eq!((v.status, v.reason.as_deref()), (Status::Error, Some("ZeroDivisionError")), "{v:#?}");
    let v = check("def add(a, b)\n    return a\n", ADD_CHECK);
    assert_eq!((v.status, v.reason.as_deref()), (Status::Error, Some("SyntaxError")), "{v:#?}");
}

#[test]
fn unittest_features_work() {
    let tests = "import unittest\n\nclass Base(unittest.TestCase):\n    @classmethod\n    def setUpClass(cls):\n        cls.offset = 10\n    def setUp(self):\n        self.x = 1\n    def test_sub(self):\n        for i in range(3):\n            with self.subTest(i=i):\n                self.assertEqual(add(i, self.x), i + 1)\n    def test_raises(self):\n        with self.assertRaises(TypeError):\n            add(1, None)\n    def test_offset(self):\n        self.assertTrue(add(self.offset, 0) == 10)\n\nclass More(Base):\n    pass\n";
    let v = check(ADD, tests);
    assert_pass(&v);
    assert_eq!(v.tests.len(), 6, "{v:#?}");
}

#[test]
fn file_io_tempfile_and_threads_work() {
    let program = "import os, tempfile, threading\n\ndef work():\n    with open('data.txt', 'w') as f:\n        f.write('hello')\n    with open('data.txt') as f:\n        a = f.read()\n    with tempfile.NamedTemporaryFile('w+', delete=False) as t:\n        t.write('world')\n        name = t.name\n    with open(name) as f:\n        b = f.read()\n    os.makedirs('sub/dir', exist_ok=True)\n    out = []\n    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n    [t.start() for t in ts]\n    [t.join() for t in ts]\n    return a, b, sorted(out), tempfile.gettempdir() in ('/tmp', os.path.join(os.getcwd(), 'tmp'))\n";
    let tests = "def test_work():\n    assert work() == ('hello', 'world', list(range(8)), True)\n";
    assert_pass(&check(program, tests));
}

#[test]
fn a_multiprocessing_pool_works() {
    let program = "from multiprocessing import Pool\n\ndef square(x):\n    return x * x\n\ndef squares(n):\n    with Pool(4) as pool:\n        return pool.map(square, range(n))\n";
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_pool(self):\n        self.assertEqual(squares(10), [i * i for i in range(10)])\n";
    assert_pass(&check(program, tests));
}

#[test]
fn numpy_and_pandas_work() {
    // The sandbox tests run on an interpreter with numpy and pandas (common::test_python).
    let program = "import numpy as np\nimport pandas as pd\n\ndef stats(xs):\n    df = pd.DataFrame({'x': xs})\n    return float(np.mean(xs)), df\n";
    let tests = "import unittest\nimport numpy as np\nimport pandas as pd\n\nclass TestCases(unittest.TestCase):\n    def test_stats(self):\n        m, df = stats([1, 2, 3])\n        self.assertAlmostEqual(m, 2.0)\n        pd.testing.assert_frame_equal(df, pd.DataFrame({'x': [1, 2, 3]}))\n        np.testing.assert_array_equal(df['x'].values, np.array([1, 2, 3]))\n        self.assertTrue((df['x'] == pd.Series([1, 2, 3])).all())\n";
    let v = check(program, tests);
    assert!(v.passed(), "numpy/pandas must import in the sandbox: {v:#?}");
}

#[test]
fn logging_tracebacks_and_custom_equality_work() {
    let program = "import logging, traceback\nfrom dataclasses import dataclass\n\n@dataclass\nclass Point:\n    x: int\n    y: int\n\ndef shift(p):\n    logging.getLogger('t').warning('shifting %s', p)\n    try:\n        1 / 0\n    except ZeroDivisionError:\n        text = traceback.format_exc()\n    assert 'ZeroDivisionError' in text\n    return Point(p.x + 1, p.y)\n";
    let tests = "def test_shift():\n    assert shift(Point(1, 2)) == Point(2, 2)\n    assert shift(Point(1, 2)) != Point(9, 9)\n    assert Point(2, 2) in [shift(Point(1, 2))]\n";
    let v = check(program, tests);
    assert_pass(&v);
    assert!(v.stderr_tail.contains("shifting"), "{v:#?}");
}

#[test]
fn stdout_and_stderr_tails_are_kept() {
    let v = check(
        "print('hello out')\nimport sys\nprint('hello err', file=sys.stderr)\ndef add(a, b):\n    return a + b\n",
        ADD_CHECK,
    );
    assert_pass(&v);
    assert!(v.stdout_tail.contains("hello out") && v.stderr_tail.contains("hello err"), "{v:#?}");
}

#[test]
fn a_batch_streams_one_verdict_per_job() {
    let jobs: Vec<Job> = (0..6)
        .map(|i| {
            Job::new(format!("job-{i}"), if i % 2 == 0 { ADD } else { "def add(a, b):\n    return 0\n" }, ADD_CHECK)
        })
        .collect();
    let mut seen = Vec::new();
    sandbox().run_batch(jobs, &mut |v| seen.push((v.id.clone(), v.passed())));
    seen.sort();
    let expected: Vec<(String, bool)> = (0..6).map(|i| (format!("job-{i}"), i % 2 == 0)).collect();
    assert_eq!(seen, expected);
}

#[test]
fn large_programs_and_tests_pass_whole() {
    // The server hands each job to its zygote over a socket in one framed message; a program and
    // tests of several hundred kB cross it in many partial sends and must arrive intact.
    let table: String = (0..20_000).map(|i| format!("    {i}: {},\n", i * 7 % 1000)).collect();
    let program = format!("TABLE = {{\n{table}}}\n\ndef lookup(k):\n    return TABLE[k]\n");
    let checks: String =
        (0..5_000).map(|i| format!("        self.assertEqual(lookup({i}), {})\n", i * 7 % 1000)).collect();
    let tests = format!("import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_all(self):\n{checks}");
    assert!(program.len() + tests.len() > 400_000);
    let v = check(&program, &tests);
    assert_pass(&v);
    // The same worker keeps serving small jobs afterwards.
    assert_pass(&check(ADD, ADD_CHECK));
}

#[test]
fn a_program_may_use_every_cpu() {
    // Workers are pinned to one CPU each for speed, but the candidate gets the whole set back.
    let cpus: usize = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let program = "import os\ndef cpus():\n    return len(os.sched_getaffinity(0))\n";
    assert_pass(&check(program, &format!("assert cpus() == {cpus}, cpus()\n")));
}

/// An "interpreter" that never answers when started (a wrapper script waiting on something) fails
/// the sandbox's start once `start_timeout` has passed, naming it, instead of hanging the run; and
/// what it started is killed with it.
#[test]
fn an_interpreter_that_never_answers_fails_the_start_instead_of_hanging() {
    use std::os::unix::fs::PermissionsExt;
    use unitcoder::sandbox::{SandboxConfig, SandboxError};
    let dir = crate::common::tempdir();
    let pid_file = dir.path().join("sleeper.pid");
    // Asked which interpreter it runs (`-I -S ...`), as a launcher is, one fails at once and the
    // other hangs there too; started as a fork server, both hang in a child that holds its pipes.
    for (name, when_asked) in [("fails-when-asked", "exit 1"), ("hangs-when-asked", "")] {
        let script = dir.path().join(name);
        let text = format!(
            "#!/bin/sh\ncase \"$2\" in -S) {when_asked};; esac\nsleep 1000 &\necho $! > '{}'\nwait\n",
            pid_file.display()
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::fs::remove_file(&pid_file);
        let config = SandboxConfig {
            python: script.clone(),
            jobs: 1,
            start_timeout: Duration::from_secs(1),
            ..crate::common::sandbox_config(1)
        };
        let started = std::time::Instant::now();
        let err = match Sandbox::new(config) {
            Ok(_) => panic!("{name}: a sandbox started on a script that never answers"),
            Err(e) => e,
        };
        let waited = started.elapsed();
        assert!(matches!(err, SandboxError::StartTimeout { .. }), "{name}: {err}");
        let message = err.to_string();
        assert!(message.contains(name) && message.contains("no answer within 1 s"), "{name}: {message}");
        // One wait, not one per way of starting it.
        assert!(waited < Duration::from_secs(10), "{name}: took {waited:?}");
        // The script's own child was killed with it (it is gone, or a zombie awaiting its reaper).
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{name}: no pid file: {e}"));
        let stat = format!("/proc/{}/stat", pid.trim());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let alive = || std::fs::read_to_string(&stat).is_ok_and(|s| !s.contains(") Z "));
        while alive() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(), "{name}: its child {} still runs", pid.trim());
    }
}
