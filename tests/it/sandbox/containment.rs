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

#[test]
fn a_worker_whose_zygote_died_is_replaced() {
    // The zygote is root outside the candidate's PID namespace, so no candidate can kill it; if it
    // dies anyway, its server exits and the next job gets a fresh worker instead of errors forever.
    let sandbox = Sandbox::new(SandboxConfig { jobs: 1, ..SandboxConfig::default() }).expect("start the sandbox");
    let job = Job { id: "z".into(), program: ADD.into(), tests: ADD_CHECK.into(), limits: None };
    assert_pass(&sandbox.run(&job));
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
    let pids: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
        .collect();
    // The zygote: a process of this sandbox whose parent (the server) is one too.
    let zygotes: Vec<&String> = pids.iter().filter(|p| ours(p) && ours(&parent(p))).collect();
    assert_eq!(zygotes.len(), 1, "one zygote for one worker");
    let status = std::process::Command::new("kill").args(["-9", zygotes[0]]).status().unwrap();
    assert!(status.success());
    std::thread::sleep(Duration::from_millis(200));
    let first = sandbox.run(&job);
    assert_ne!(first.status, Status::Pass, "{first:#?}");
    let second = sandbox.run(&job);
    assert_pass(&second);
}
