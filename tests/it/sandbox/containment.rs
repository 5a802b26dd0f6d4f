//! Containment: time, memory, processes, output, and that nothing outlives the verdict.

use super::*;

/// True when a process whose command line contains `marker` is alive on the host.
fn alive_with(marker: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).contains(marker)
    })
}

fn marker() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}.{}", 900 + std::process::id() % 90, nanos)
}

#[test]
fn an_endless_loop_times_out() {
    let started = std::time::Instant::now();
    let v = check_with("def add(a, b):\n    while True:\n        pass\n", ADD_CHECK, short(2));
    assert_eq!(v.status, Status::Timeout, "{v:#?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let v = check_with("import time\ndef add(a, b):\n    time.sleep(60)\n", ADD_CHECK, short(1));
    assert_eq!(v.status, Status::Timeout, "{v:#?}");
    // Every worker that killed a child goes on serving: its zygote reaped it and stays in step.
    for _ in 0..4 {
        assert_pass(&check(ADD, ADD_CHECK));
    }
}

#[test]
fn a_memory_bomb_is_reported_as_memory() {
    let limits = Limits { memory_mb: 256, ..Limits::default() };
    let v = check_with(
        "def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(16 << 20))\n",
        ADD_CHECK,
        limits.clone(),
    );
    assert_reason(&v, "memory");
    // Spread over several processes: the limit is on the tree, not per process.
    let tree = "import multiprocessing as mp, time\n\ndef hog(_):\n    x = bytearray(120 << 20)\n    for i in range(0, len(x), 4096):\n        x[i] = 1\n    time.sleep(2)\n    return 1\n\ndef add(a, b):\n    with mp.Pool(4) as p:\n        p.map(hog, range(4))\n    return a + b\n";
    let v = check_with(tree, ADD_CHECK, limits);
    assert_not_pass(&v);
}

#[test]
fn a_fork_bomb_is_contained_and_the_sandbox_recovers() {
    let bomb = "import os\ndef add(a, b):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n";
    let v = check_with(bomb, ADD_CHECK, short(3));
    assert_not_pass(&v);
    assert_pass(&check(ADD, ADD_CHECK));
}

#[test]
fn an_output_flood_costs_nothing_and_is_bounded() {
    let flood = "import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.stdout.write(chunk)\nsys.stdout.flush()\ndef add(a, b):\n    return a + b\n";
    let v = check_with(flood, ADD_CHECK, short(60));
    assert_pass(&v);
    assert!(v.stdout_tail.len() <= 4096, "tail not bounded: {}", v.stdout_tail.len());
}

#[test]
fn a_double_forked_daemon_does_not_survive() {
    let m = marker();
    let daemon = format!(
        "import os, signal\ndef add(a, b):\n    if os.fork() == 0:\n        os.setsid()\n        if os.fork() == 0:\n            signal.signal(signal.SIGTERM, signal.SIG_IGN)\n            os.execvp('sleep', ['sleep', '{m}'])\n        os._exit(0)\n    import time\n    time.sleep(0.5)\n    return a + b\n"
    );
    let v = check(&daemon, ADD_CHECK);
    assert_pass(&v);
    assert!(!alive_with(&m), "the daemon `sleep {m}` outlived the verdict");
}

#[test]
fn a_killed_run_leaves_no_process_behind() {
    let m = marker();
    let program = format!(
        "import subprocess\ndef add(a, b):\n    for _ in range(3):\n        subprocess.Popen(['sleep', '{m}'])\n    while True:\n        pass\n"
    );
    let v = check_with(&program, ADD_CHECK, short(2));
    assert_eq!(v.status, Status::Timeout, "{v:#?}");
    assert!(!alive_with(&m), "children of a timed-out run survived");
}

#[test]
fn stdin_is_empty() {
    let program = "import sys\ndef read():\n    return sys.stdin.read()\n";
    assert_pass(&check(program, "assert read() == ''\n"));
}

/// A one-worker sandbox of the test's own: its zygote's state (warm modules, pid) is the test's.
fn one_worker() -> Sandbox {
    Sandbox::new(crate::common::sandbox_config(1)).expect("start the sandbox")
}

/// Runs `program` with `ADD_CHECK` under `limits` on `sandbox`.
fn run_on(sandbox: &Sandbox, program: &str, limits: &Limits) -> Verdict {
    let job = Job::new("w", program, ADD_CHECK).with_limits(limits.clone());
    sandbox.run(&job)
}

/// The pids of `sandbox`'s zygotes: its processes whose parent (a server) is one too, and whose
/// grandparent (this test) is not.
fn zygotes(sandbox: &Sandbox) -> Vec<String> {
    let tag = sandbox.scratch_dir().to_string_lossy().to_string();
    let ours = |pid: &str| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&tag))
            .unwrap_or(false)
    };
    let parent = |pid: &str| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status.lines().find_map(|l| l.strip_prefix("PPid:")).map(|p| p.trim().to_string()).unwrap_or_default()
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        // A zygote's parent is its worker, whose own parent (this test) is not ours; a candidate
        // the zygote forked (still exiting on a loaded machine) is one generation further down.
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()) && ours(p) && ours(&parent(p)) && !ours(&parent(&parent(p))))
        .collect()
}

#[test]
fn a_worker_whose_zygote_died_is_replaced() {
    // The zygote is root outside the candidate's PID namespace, so no candidate can signal it; if
    // it dies anyway (an administrator, the OOM killer in the worker's memory group), its server
    // exits and the job it was serving runs again on a fresh worker, as if nothing happened.
    let sandbox = one_worker();
    let limits = Limits::default();
    assert_pass(&run_on(&sandbox, ADD, &limits));
    let zygotes = zygotes(&sandbox);
    assert_eq!(zygotes.len(), 1, "one zygote for one worker");
    let status = std::process::Command::new("kill").args(["-9", &zygotes[0]]).status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    assert_pass(&run_on(&sandbox, ADD, &limits));
    assert_pass(&run_on(&sandbox, ADD, &limits));
}

#[test]
fn the_process_limit_is_the_jobs_own() {
    // Every child is born in its worker's pids group, where the zygote lives too: the group's
    // limit is one higher, so the job still gets exactly `max_procs` tasks (itself included).
    let limits = Limits { max_procs: 6, ..Limits::default() };
    let program = "import os, signal\n\ndef spawn():\n    n = 0\n    while n < 50:\n        try:\n            pid = os.fork()\n        except OSError:\n            return n\n        if pid == 0:\n            signal.pause()\n            os._exit(0)\n        n += 1\n    return n\n";
    assert_pass(&check_with(program, "assert spawn() == 5, spawn\n", limits));
}

#[test]
fn a_jobs_memory_limit_is_its_own_after_a_warm_up() {
    // The zygote imports heavy modules when a job first needs them. It does so outside the
    // worker's memory group: charged there, pandas (~60 MB) would count against every later job.
    let sandbox = one_worker();
    let limits = Limits { memory_mb: 128, ..Limits::default() };
    let run = |program: &str| run_on(&sandbox, program, &limits);
    assert_pass(&run(&format!("import pandas\n{ADD}")));
    let hog = "def add(a, b):\n    x = bytearray(96 << 20)\n    for i in range(0, len(x), 4096):\n        x[i] = 1\n    return a + b\n";
    assert_pass(&run(hog));
    // The limit still holds.
    assert_reason(&run(&hog.replace("96 << 20", "200 << 20")), "memory");
}

#[test]
fn a_job_that_fills_its_tmpfs_to_the_memory_limit_does_not_touch_the_next() {
    // Files on the private /tmp are charged to the job's memory group and stay there until the
    // server removes them. The zygote lives in that group: the OOM killer must take the job's
    // processes, never the zygote, and the zygote clones the next child only once the files are gone.
    let sandbox = one_worker();
    let limits = Limits { memory_mb: 128, ..Limits::default() };
    let run = |program: &str| run_on(&sandbox, program, &limits);
    assert_pass(&run(ADD));
    let zygote = zygotes(&sandbox);
    let fill = "def add(a, b):\n    chunk = b'x' * (1 << 20)\n    for i in range(400):\n        with open('/tmp/f%d' % i, 'wb') as f:\n            f.write(chunk)\n    return a + b\n";
    for _ in 0..3 {
        assert_reason(&run(fill), "memory");
        assert_pass(&run(ADD));
    }
    assert_eq!(zygotes(&sandbox), zygote, "the zygote was replaced");
    // The job is the OOM killer's first choice, and cannot make itself a lesser one.
    let adj = "def adj():\n    try:\n        open('/proc/self/oom_score_adj', 'w').write('0')\n    except PermissionError:\n        pass\n    return open('/proc/self/oom_score_adj').read().strip()\n";
    assert_pass(&check(adj, "assert adj() == '1000', adj()\n"));
}

#[test]
fn a_forking_test_program_gets_a_short_tampering_message() {
    // 32 copies of the harness run the remaining 40 tests each: hundreds of duplicate and late
    // events, which once made a 5.6 KB message repeating "events after the run finished".
    let mut tests = String::from(
        "import os\ndef test_a():\n    for _ in range(5):\n        os.fork()\n    assert add(1, 2) == 3\n",
    );
    for i in 0..40 {
        tests.push_str(&format!("def test_{i:02}():\n    assert add(1, 2) == 3\n"));
    }
    let v = check(ADD, &tests);
    assert_eq!((v.status, v.reason.as_deref()), (Status::Error, Some("tampering")), "{v:#?}");
    let message = v.tests.iter().find(|t| t.name == "<sandbox>").and_then(|t| t.message.clone()).expect("a message");
    assert!(message.len() <= 603, "{} bytes: {message}", message.len());
    let findings: Vec<&str> = message.split("; ").collect();
    let unique: std::collections::HashSet<&&str> = findings.iter().collect();
    assert_eq!(unique.len(), findings.len(), "a finding repeated: {message}");
}
