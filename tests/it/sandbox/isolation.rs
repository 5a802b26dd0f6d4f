//! Isolation: each test passes only if the isolation holds (the program reports what it could do).

use super::*;

#[test]
fn full_isolation_is_in_force_here() {
    // CI and development machines run as root with namespaces, Landlock and cgroups (docs/sandbox.md).
    let iso = sandbox().isolation();
    assert_eq!(iso.level, "full", "{iso:#?}");
    for m in [
        "net-namespace",
        "ipc-namespace",
        "hidden-host",
        "pid-namespace",
        "private-proc",
        "private-tmp",
        "landlock",
        "uid",
        "memory-cgroup",
        "pids-cgroup",
    ] {
        assert!(iso.active.iter().any(|a| a == m), "{m} not active: {iso:#?}");
    }
}

#[test]
fn the_network_is_unreachable() {
    let program = "import socket\ndef probe(host, port):\n    try:\n        socket.create_connection((host, port), timeout=2).close()\n        return 'connected'\n    except OSError:\n        return 'blocked'\n";
    let tests = "assert probe('1.1.1.1', 53) == 'blocked'\nassert probe('127.0.0.1', 22) == 'blocked'\nassert probe('pypi.org', 443) == 'blocked'\n";
    assert_pass(&check(program, tests));
}

#[test]
fn localhost_works_inside_the_sandbox_only() {
    // A server and a client in the job (BigCodeBench/1040 does this) talk over the namespace's own
    // loopback; the host's listening ports are not there (checked above: 127.0.0.1:22 is refused).
    let program = "import socket, threading\n\ndef echo_once():\n    srv = socket.socket()\n    srv.bind(('127.0.0.1', 0))\n    srv.listen(1)\n    port = srv.getsockname()[1]\n    def serve():\n        conn, _ = srv.accept()\n        conn.sendall(conn.recv(100).upper())\n        conn.close()\n    t = threading.Thread(target=serve)\n    t.start()\n    c = socket.create_connection(('localhost', port), timeout=5)\n    c.sendall(b'ping')\n    reply = c.recv(100)\n    c.close()\n    t.join()\n    return reply\n";
    assert_pass(&check(program, "assert echo_once() == b'PING'\n"));
}

#[test]
fn writes_outside_the_working_dir_fail() {
    let program = "import os\ndef try_write(path):\n    try:\n        with open(path, 'w') as f:\n            f.write('x')\n        return 'written'\n    except OSError:\n        return 'blocked'\n";
    let tests = "assert try_write('/root/escape') == 'blocked'\nassert try_write('/etc/escape') == 'blocked'\nassert try_write('/usr/escape') == 'blocked'\nassert try_write('inside.txt') == 'written'\n";
    assert_pass(&check(program, tests));
}

#[test]
fn tmp_is_private_to_each_job() {
    // /tmp is the worker's own tmpfs (BigCodeBench/785 archives into /tmp/archive): a job may write
    // there, the host's /tmp neither sees the file nor shows its own files, and the next job on the
    // same worker starts with /tmp empty of the previous job's files.
    let marker = format!("unitcoder-escape-{}", std::process::id());
    let host_file = std::env::temp_dir().join(format!("unitcoder-host-secret-{}", std::process::id()));
    std::fs::write(&host_file, "secret").expect("writing a host file");
    let program = "import os\ndef write_tmp(name):\n    os.makedirs('/tmp/archive', exist_ok=True)\n    with open('/tmp/' + name, 'w') as f:\n        f.write('x')\n    return sorted(os.listdir('/tmp'))\ndef visible(path):\n    return os.path.exists(path)\n";
    let first = format!("names = write_tmp('{marker}')\nassert '{marker}' in names and 'archive' in names, names\nassert not visible('{}')\n", host_file.display());
    let second = format!("assert not visible('/tmp/{marker}')\nassert not visible('/tmp/archive')\n");
    let limits = Limits { timeout: Duration::from_secs(20), ..Limits::default() };
    // One worker, so both jobs run in the same server (the second must not see the first's files).
    let sb = Sandbox::new(crate::common::sandbox_config(1)).expect("sandbox");
    for tests in [&first, &second, &first] {
        let v = sb.run(&Job::new("tmp", program, tests.clone()).with_limits(limits.clone()));
        assert_pass(&v);
    }
    assert!(sb.isolation().active.iter().any(|a| a == "private-tmp"), "{:?}", sb.isolation());
    assert!(!std::env::temp_dir().join(&marker).exists(), "the job's file reached the host's /tmp");
    let _ = std::fs::remove_file(&host_file);
}

#[test]
fn sysv_shared_memory_dies_with_its_job_and_never_reaches_the_host() {
    // SysV objects outlive the process that made them: in the host's IPC namespace a job could
    // leave memory that no cgroup counts, or hand data to a later job. A child interpreter (no
    // audit hook, so ctypes) makes a segment under a fixed key; the next job on the same worker
    // cannot find it, and the host never had it.
    let key = 0x5eed0000u32 + std::process::id() % 0xffff;
    let program = format!(
        "import subprocess, sys\ndef shm(flags):\n    code = 'import ctypes; print(ctypes.CDLL(None).shmget({key}, 1 << 20, {{}}))'.format(flags)\n    return int(subprocess.run([sys.executable, '-c', code], capture_output=True, text=True).stdout)\n"
    );
    let make = "assert shm(0o1600) >= 0\n"; // IPC_CREAT | 0600: made (or found)
    let find = "assert shm(0) == -1\n"; // no IPC_CREAT: only an existing segment answers
    let sb = Sandbox::new(crate::common::sandbox_config(1)).expect("sandbox");
    for tests in [make, find, make, find] {
        assert_pass(&sb.run(&Job::new("ipc", program.clone(), tests)));
    }
    assert!(sb.isolation().active.iter().any(|a| a == "ipc-namespace"), "{:?}", sb.isolation());
    let host = std::fs::read_to_string("/proc/sysvipc/shm").expect("the host's SysV segments");
    let keys: Vec<u64> = host.lines().skip(1).filter_map(|l| l.split_whitespace().next()?.parse().ok()).collect();
    assert!(!keys.contains(&(key as u64)), "the job's segment is in the host's namespace: {host}");
}

#[test]
fn temporary_files_go_to_the_private_tmp_as_under_the_benchmarks_harnesses() {
    // tempfile's directories look as they do under bigcodebench's harness (/tmp/tmpXXXXXXXX), so
    // a test that splits such a path on "-" (BigCodeBench/1127) finds no part of the sandbox's own
    // directory names in it.
    let program = "import os, tempfile\ndef temp():\n    d = tempfile.mkdtemp()\n    with tempfile.NamedTemporaryFile(delete=False) as f:\n        name = f.name\n    return os.environ['TMPDIR'], d, name\n";
    let tests = "import re\ntmp, d, name = temp()\nassert tmp == '/tmp', tmp\nassert re.fullmatch('/tmp/tmp[a-z0-9_]{8}', d), d\nassert re.fullmatch('/tmp/tmp[a-z0-9_]{8}', name), name\n";
    assert_pass(&check(program, tests));
}

#[test]
fn a_jobs_changes_to_its_directory_do_not_reach_the_next_job() {
    // The server keeps a job directory the job left exactly as made (most jobs write nothing) and
    // makes it afresh otherwise: a changed mode, time stamp or extended attribute counts as a change
    // even with no file left behind, and so does a file.
    let program = "import os\ndef meddle():\n    os.chmod('.', 0o700)\n    os.utime('tmp', (0, 0))\n    try:\n        os.setxattr('.', 'user.k', b'v')\n    except OSError:\n        pass\ndef leave_file():\n    open('left.txt', 'w').write('x')\ndef state():\n    try:\n        attrs = os.listxattr('.')\n    except OSError:\n        attrs = []\n    return sorted(os.listdir('.')), os.stat('.').st_mode & 0o777, os.stat('tmp').st_mtime > 0, attrs\n";
    let fresh = "names, mode, stamped, attrs = state()\nassert names == ['tmp'], names\nassert mode != 0o700, oct(mode)\nassert stamped\nassert attrs == [], attrs\n";
    let sb = Sandbox::new(crate::common::sandbox_config(1)).expect("sandbox");
    for tests in [
        fresh,
        "meddle()\nassert state()[1] == 0o700\n",
        fresh,
        "leave_file()\nassert 'left.txt' in state()[0]\n",
        fresh,
        fresh,
    ] {
        let v = sb.run(&Job::new("dir", program, tests));
        assert_pass(&v);
    }
}

#[test]
fn the_environment_is_an_allow_list() {
    // Whatever this test process has (CARGO_*, HOME, secrets...) must not be visible.
    let program = "import os\ndef env():\n    return sorted(os.environ)\n";
    let tests = "allowed = {'PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'MPLBACKEND', 'PYTHONDONTWRITEBYTECODE', 'LC_CTYPE'}\nassert set(env()) <= allowed, env()\nassert 'CARGO_MANIFEST_DIR' not in env()\n";
    // The point needs a variable outside the allow-list in this process: cargo sets this one.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some(), "run under cargo test, which sets CARGO_MANIFEST_DIR");
    assert_pass(&check(program, tests));
}

#[test]
fn nothing_outside_can_be_signalled() {
    let host = std::process::id();
    let program = "import os, signal\ndef try_kill(pid, sig=0):\n    try:\n        os.kill(pid, sig)\n        return 'sent'\n    except OSError:\n        return 'blocked'\n";
    let tests = format!(
        "assert try_kill({host}) == 'blocked'\nassert try_kill({host}, signal.SIGKILL) == 'blocked'\nassert os.getpid() == 1\n"
    );
    assert_pass(&check(program, &tests));
    // kill(-1) reaches only the sandbox's own processes; this test process is still here.
    let v = check("import os, signal\ndef add(a, b):\n    try:\n        os.kill(-1, signal.SIGKILL)\n    except OSError:\n        pass\n    return a + b\n", ADD_CHECK);
    assert_pass(&v);
}

#[test]
fn the_candidate_runs_unprivileged_in_a_fresh_empty_dir() {
    let program = "import os, tempfile\ndef where():\n    return os.getuid() != 0, os.listdir('.'), [n for n in os.listdir(tempfile.gettempdir()) if n.startswith('left')]\ndef leave():\n    open('left-behind.txt', 'w').write('x')\n    open(os.path.join(tempfile.gettempdir(), 'left-in-tmp.txt'), 'w').write('x')\n    return True\n";
    assert_pass(&check(program, "assert leave()\nassert where()[0]\n"));
    // The next run starts empty: nothing from the previous run in its directory or its temporary
    // directory, no test file on disk.
    assert_pass(&check(program, "assert where() == (True, ['tmp'], [])\n"));
}

#[test]
fn proc_shows_only_the_candidates_own_processes() {
    // /proc is mounted per job for the job's PID namespace: no host process can be read, and
    // PIDs mean what they mean to the candidate (BigCodeBench/461 asks psutil about its child).
    let program = "import os, subprocess, time\n\ndef seen():\n    child = subprocess.Popen(['sleep', '5'])\n    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n    for _ in range(200):  # until the child has exec'd\n        with open('/proc/%d/cmdline' % child.pid, 'rb') as f:\n            cmd = f.read().split(b'\\0')[0]\n        if cmd == b'sleep':\n            break\n        time.sleep(0.01)\n    child.kill()\n    return os.getpid(), child.pid, pids, cmd\n";
    let tests = "def test_seen():\n    me, child, pids, cmd = seen()\n    assert me == 1\n    assert pids == [1, child], pids\n    assert cmd == b'sleep'\n";
    assert_pass(&check(program, tests));
}

#[test]
fn host_directories_are_absent_or_unlistable() {
    // The tests' source directory, this process's home and data directories, the project checkout,
    // /work and /root (where the interpreter may live), and the way to the job's directory: each is
    // absent (FileNotFoundError) or cannot be listed (PermissionError). A file the tests could
    // special-case on cannot be read either.
    let data = tempfile::Builder::new().tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a data dir");
    let secret = data.path().join("expected_outputs.json");
    std::fs::write(&secret, "[3, 4]").expect("writing the data file");
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let hidden = [
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it").to_string(),
        env!("CARGO_MANIFEST_DIR").to_string(),
        data.path().display().to_string(),
        home,
        "/work".into(),
        "/root".into(),
        "/home".into(),
        "..".into(),
        "../..".into(),
    ];
    let program = "import os\n\ndef listing(path):\n    try:\n        return sorted(os.listdir(path))\n    except (FileNotFoundError, PermissionError) as e:\n        return type(e).__name__\n\ndef readable(path):\n    try:\n        with open(path) as f:\n            return f.read()\n    except OSError as e:\n        return type(e).__name__\n";
    let mut tests = String::new();
    for path in &hidden {
        tests.push_str(&format!(
            "assert listing({path:?}) in ('FileNotFoundError', 'PermissionError'), ({path:?}, listing({path:?}))\n"
        ));
    }
    let secret = secret.display().to_string();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    tests.push_str(&format!("assert readable({secret:?}) == 'FileNotFoundError', readable({secret:?})\n"));
    tests.push_str(&format!("assert readable({manifest:?}) == 'FileNotFoundError', readable({manifest:?})\n"));
    // What a job needs is still there: its own directory, /tmp, the system and the interpreter.
    tests.push_str("open('mine.txt', 'w').write('x')\nassert listing('.') == ['mine.txt', 'tmp'], listing('.')\n");
    tests.push_str("open('/tmp/t.txt', 'w').write('y')\nassert 't.txt' in listing('/tmp')\n");
    tests.push_str(
        "import sys, numpy\nassert os.path.isfile(sys.executable) and listing('/usr/bin') != 'PermissionError'\n",
    );
    tests.push_str("assert readable('/etc/hosts') not in ('FileNotFoundError', 'PermissionError')\n");
    assert_pass(&check(program, &tests));
}

#[test]
fn a_subprocess_of_the_interpreter_still_starts_in_the_hidden_root() {
    // multiprocessing's spawn and `sys.executable -c` start the interpreter afresh: its prefix,
    // standard library and site-packages must resolve inside the job's root.
    let program = "import subprocess, sys\n\ndef child():\n    return subprocess.run([sys.executable, '-c', 'import json, numpy; print(json.dumps(1))'], capture_output=True, text=True, timeout=20).stdout.strip()\n";
    assert_pass(&check_with(program, "assert child() == '1', child()\n", short(30)));
}

#[test]
fn an_interpreter_under_the_hosts_tmp_keeps_its_packages_while_tmp_stays_private() {
    // A throwaway venv in /tmp (or a checkout cloned there, whose test venv sits in its build
    // directory) must import its own site-packages inside the job, across jobs (tidying empties the
    // private /tmp after each), while the rest of the host's /tmp stays out of sight.
    let (venv, python) = crate::common::venv_with_module(std::path::Path::new("/tmp"), "tmp_only_lib", "VALUE = 41\n");
    let neighbour = tempfile::Builder::new().prefix("unitcoder-neighbour-").tempdir_in("/tmp").expect("a dir in /tmp");
    std::fs::write(neighbour.path().join("secret.txt"), "s").expect("writing the neighbour's file");
    let top = |p: &std::path::Path| p.components().nth(2).map(|c| c.as_os_str().to_string_lossy().into_owned());
    let (venv_top, neighbour_top) = (top(venv.path()).unwrap(), top(neighbour.path()).unwrap());
    let program = "import os\nimport tmp_only_lib\n\ndef value():\n    return tmp_only_lib.VALUE + 1\n";
    let secret = neighbour.path().join("secret.txt").display().to_string();
    let tests = format!(
        "assert value() == 42\nassert {venv_top:?} in os.listdir('/tmp')\nassert {neighbour_top:?} not in os.listdir('/tmp'), os.listdir('/tmp')\nassert not os.path.exists({secret:?})\nopen('/tmp/job.txt', 'w').write('x')\n"
    );
    let sandbox = Sandbox::new(unitcoder::sandbox::SandboxConfig { python, ..crate::common::sandbox_config(1) })
        .expect("a sandbox on a venv under /tmp");
    assert_eq!(sandbox.isolation().level, "full", "{:#?}", sandbox.isolation());
    for round in 0..3 {
        let v = sandbox.run(&Job::new(format!("tmp-venv-{round}"), program, tests.clone()));
        assert_pass(&v);
    }
    // The job's file went with its private /tmp; the host's /tmp never saw it.
    assert!(!std::path::Path::new("/tmp/job.txt").exists());
}
