# unitcoder sandbox fork server (appended to harness.py; one module). Trusted: it never runs
# candidate code itself. It starts as root, moves into private network and mount namespaces,
# pivots into a root that hides the host (rootfs.py), with private tmpfs on /dev/shm, /tmp and its
# worker directory, applies Landlock (writes only there),
# pre-imports common libraries, then forks a *zygote* and serves jobs read as JSON lines on stdin.
# Per job the server compiles the program and the instrumented tests and hands them to the zygote,
# which clones a child into a fresh PID namespace (the child is its init, so every descendant dies
# with it) and born in the worker's cgroups, where the zygote lives; the child sets rlimits,
# drops to an unprivileged uid and runs the harness. The server watches the child through a pidfd
# (wall clock, exit status from the zygote, OOM counter), keeps bounded output tails, and answers
# one JSON report line per job.
#
# Why two processes: every fork write-protects all of the forking process's memory, so each page
# it then writes costs a fault (a copy while the child lives). The server's per-job Python work
# (compiling, supervising, JSON) touched ~490 pages per job; the zygote's loop touches ~30, and the
# server, which no longer forks, touches none twice. On HumanEval that is ~15% of the CPU per job.
#
# The Server class is assembled from one mixin per concern, each in its own file: _Namespaces
# (namespaces.py), _Cgroups (cgroups.py), _Zygote (zygote.py), _Child (child.py), _Supervise
# (supervise.py), _JobDir (jobdir.py); Landlock is landlock.py, the message stream protocol.py.
# This file holds the start-up, one job from end to end, and the serving loop.


class Server(_Namespaces, _Cgroups, _Zygote, _Child, _Supervise, _JobDir):
    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = cfg["worker_dir"]
        self.uid = cfg["uid"]
        self.cg = cfg.get("cgroup") or None
        self.active, self.missing, self.notes = [], [], []
        self.root = _os.geteuid() == 0
        # Heavy libraries are imported on first use (see `_warm_up`), not at start-up: a server
        # for HumanEval starts in milliseconds, one for BigCodeBench pays for pandas once.
        self.warmable = set(cfg.get("preload", []))
        self.last_limits = None
        self.running = False  # a child was handed its job and the zygote's "exit" is not read yet
        self.spare = None  # (pid, socket, pidfd) of the child cloned for the next job
        self.jobdir = _os.path.join(self.dir, "job")  # the same path for every job of this worker
        self.jobdir_ready = False  # tidy() ran since the last job
        self.jobdir_made = None  # how tidy() left the job directory and its tmp (see _untouched)
        self.want_spare = False  # the zygote waits for "next" (sent by finish())
        self.tmp_keep = set()
        self.cpus = self._pin(cfg.get("index", 0))
        self.read_paths = None  # where jobs may read, when no new root hides the host (_namespaces)
        self._namespaces()
        # Private tmpfs directories every job may write to, emptied after each job.
        self.emptied = [d for d, m in (("/dev/shm", "mount-namespace"), ("/tmp", "private-tmp"))
                        if m in self.active and _os.path.isdir(d)]
        ruleset = _landlock_ruleset(
            [self.dir] + (["/dev/shm"] if _os.path.isdir("/dev/shm") else []) + (self.cg["dirs"] if self.cg else [])
            + (["/tmp"] if "private-tmp" in self.active else []),
            ["/dev/null"],
            self.read_paths,
        )
        self.ruleset = ruleset if isinstance(ruleset, int) else None
        self.scope_signals = _landlock_abi() >= 6
        if self.scope_signals:
            # Defence in depth only (the PID namespace and the uid already stop signals going out),
            # so an older kernel without it does not lower the level.
            self.active.append("landlock-signal-scope")
        self.clone_ns = self.own_proc = False
        if self.root and SYS is not None:
            # One probe when the full set works (each clones and reaps a process): a child that
            # mounts its own /proc shows the PID namespace works too.
            self.own_proc = "mount-namespace" in self.active and self._probe_clone(proc=True)
            self.clone_ns = self.own_proc or self._probe_clone()
        self._mark("pid-namespace", self.clone_ns, "cannot clone into a new PID namespace")
        self._mark("private-proc", self.own_proc, "cannot mount a /proc for the child's PID namespace")
        self._mark("uid", self.root, "not root: cannot switch to an unprivileged uid")
        self._mark("memory-cgroup", bool(self.cg), "no writable memory cgroup")
        self._mark("pids-cgroup", bool(self.cg), "no writable pids cgroup")
        self.active.append("rlimits")
        self._child_environment()
        self.oom_seen = self._oom_kills()
        self.baseline = snapshot()
        self.origin = self._origin_cgroups()
        self.zygote_in_cg = False  # children are born in the worker's groups (see _start_zygote)
        self._start_zygote()
        err = ruleset if self.ruleset is None else _landlock_restrict(self.ruleset)
        self._mark("landlock", err is None, err)
        if self.read_paths is not None:
            # No new root (no mount namespace): Landlock hides the host instead, where it can.
            self._mark("hidden-host", err is None, "no mount namespace, and no Landlock to confine reads: "
                                                   "host directories are readable")
        if self.ruleset is not None:
            _os.close(self.ruleset)  # the zygote keeps its copy for the children

    def _pin(self, index):
        """Pins this server, and so its zygote, to one CPU of those allowed (worker i on the i-th,
        round robin); returns the allowed set, which each child takes back before any candidate code
        runs, so a program's own processes and threads may use every CPU as before.

        Why: a job is a chain of hand-offs (server -> zygote -> child -> zygote -> server). Unpinned,
        the scheduler's wake-up placement often stacks two workers' chains on one core while the
        other idles, and moves a fresh child away from the cache that holds the pages it shares with
        its zygote. Pinned, 984 HumanEval jobs took 4.3-4.6 s instead of 6.2-6.6 s on 2 cores while
        another process loaded them, and a few percent less on an idle machine."""
        try:
            cpus = sorted(_os.sched_getaffinity(0))
            if len(cpus) < 2:
                return None
            _os.sched_setaffinity(0, {cpus[index % len(cpus)]})
            return cpus
        except OSError as e:
            self.notes.append("cannot pin the worker to a CPU: %s" % e)
            return None

    def _child_environment(self):
        """Sets the allow-listed environment every child gets, once, in the server: the job
        directory is the same path for every job of this worker, and rewriting os.environ in each
        child cost it ~0.3 ms of copy-on-write faults. The server itself needs nothing from it."""
        jobdir = self.jobdir
        # Temporary files go to /tmp where it is the worker's own (emptied after every job), so
        # `tempfile.mkdtemp()` gives /tmp/tmpXXXXXXXX as under the benchmarks' harnesses: tests
        # that split such paths on "-" or "_" (BigCodeBench/1127) see no part of ours in them.
        tmp = "/tmp" if "private-tmp" in self.active else _os.path.join(jobdir, "tmp")
        env = {"PATH": _os.path.dirname(_sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
               "HOME": jobdir, "TMPDIR": tmp, "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        _os.environ.clear()
        _os.environ.update(env)

    def _mark(self, name, ok, why):
        (self.active if ok else self.missing).append(name)
        if not ok and why:
            self.notes.append("%s: %s" % (name, why))

    def ready(self):
        return {"ready": True, "active": self.active, "missing": self.missing, "notes": self.notes,
                "python": "%d.%d.%d" % _sys.version_info[:3], "executable": _sys.executable}

    def run(self, job):
        limits = job["limits"]
        start = _time.monotonic()
        report = {"exit_code": None, "signal": None, "timed_out": False, "oom": False, "events": [],
                  "events_truncated": False, "expected": [], "load_error": None, "setup_error": None,
                  "stdout_tail": "", "stderr_tail": "", "stdout_bytes": 0, "stderr_bytes": 0, "leftover": 0}
        try:
            prep = prepare(job["code"], job["tests"])
        except PrepareError as e:
            report["load_error"] = {"w": e.args[0], "r": e.args[1], "m": e.args[2]}
            report["wall_ms"] = int((_time.monotonic() - start) * 1000)
            return report
        report["expected"] = prep[2]
        self._warm_up(job)
        jobdir = self.jobdir
        if not self.jobdir_ready:
            self.tidy()
        self.jobdir_ready = False
        self._limit_cgroup(limits)
        pipes = {k: _os.pipe() for k in ("ev", "out", "err")}
        task = (prep[0], prep[1], job["tests"], job["code"], job["nonce"], jobdir, limits, bool(job.get("strict")),
                job.get("coverage"))
        spare = self._take_spare()
        pidfd, writers_open = None, True
        try:
            if isinstance(spare, str):
                report["setup_error"] = spare
                self.want_spare = True  # try again for the next job
            else:
                self.spare, self.running = None, True  # one "exit" will come for this child
                _pid, conn, pidfd = spare
                try:
                    _send(conn, ("run", task), [w for _r, w in pipes.values()])
                except OSError as e:
                    report["setup_error"] = "handing the job to its process: %s" % e
                finally:
                    conn.close()
                    for _r, w in pipes.values():
                        _os.close(w)
                    writers_open = False
                if report["setup_error"] is None:
                    self._supervise(pidfd, {r: k for k, (r, _w) in pipes.items()}, limits, start, report)
        finally:
            if self.running:
                # The child could not be given its job, or supervision failed: end it, and keep
                # the zygote protocol in step (one "exit" per child).
                try:
                    _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
                except OSError:
                    pass
                self._await_exit()
            fds = [r for r, _w in pipes.values()] + [w for _r, w in pipes.values() if writers_open]
            for fd in fds + ([pidfd] if pidfd is not None else []):
                try:
                    _os.close(fd)
                except OSError:
                    pass
            if not isinstance(spare, str):
                self._reap_leftovers(report)
                self.want_spare = True
        oom = self._oom_kills()
        report["oom"], self.oom_seen = oom > self.oom_seen, oom
        report["wall_ms"] = int((_time.monotonic() - start) * 1000)
        return report

    def finish(self):
        """After a report is sent: tidy, then have the zygote clone the next spare. In that order,
        because the zygote lives in the job's memory group: files a job left on its tmpfs stay
        charged there until removed, and a group still full of them could make the zygote's own
        next allocation fail. And only after the leftovers were reaped (run()): until the next
        spare exists, any task in the groups other than the zygote is the last job's."""
        try:
            self.tidy()
        finally:
            if self.want_spare:
                self.want_spare = False
                _send(self.sock, ("next",))


def serve(cfg):
    # Small modules most candidates use are loaded up front; bigger ones on first use (_warm_up):
    # every module loaded here makes each fork and exit a little more expensive. Not random and
    # threading: they register at-fork handlers (a reseed; threading's state reset) that run in
    # every child, ~170 page faults each time (HumanEval on Debian's python3: 2.35 s -> 2.29 s for 984
    # jobs); they are warmed like the heavy modules once a job imports them.
    for name in ("collections", "itertools", "functools", "math", "re", "string", "typing", "heapq",
                 "bisect", "copy", "operator"):
        try:
            __import__(name)
        except Exception:
            pass
    _libc.prctl(15, b"uc-server", 0, 0, 0)
    server = Server(cfg)
    import gc
    gc.freeze()  # see _zygote; the boot code turned the collector off while it loaded the modules
    gc.enable()
    out = _sys.stdout
    out.write(_json.dumps(server.ready()) + "\n")
    out.flush()
    pending = b""
    while True:
        while b"\n" not in pending:
            chunk = _os.read(0, 1 << 20)
            if not chunk:
                server.stop()
                # No interpreter teardown (modules, objects: milliseconds at the end of every run):
                # the zygote is reaped and nothing is left to flush but the log.
                _sys.stderr.flush()
                _os._exit(0)
            pending += chunk
        line, pending = pending.split(b"\n", 1)
        try:
            job = _json.loads(line)
            report = server.run(job)
        except (EOFError, OSError) as e:
            if server.zygote_alive():
                report = {"setup_error": "%s: %s" % (type(e).__name__, e)}
            else:
                # Without its zygote this server cannot run anything (a fresh zygote forked from
                # this Landlock-restricted server could not mount): exit, so the Rust side starts a
                # fresh worker, and runs this job again there ("lost"). The zygote is root outside
                # every job's namespaces, so no job can signal it; should the OOM killer take it
                # (each job's processes go first) or an administrator, a job that happened to be
                # next, or running, gets a fresh start instead of an error.
                why = "the zygote is gone (%s: %s)" % (type(e).__name__, e)
                _sys.stderr.write("unitcoder sandbox: %s\n" % why)
                out.write(_json.dumps({"lost": why}) + "\n")
                out.flush()
                _os._exit(3)
        except Exception as e:
            report = {"setup_error": "%s: %s" % (type(e).__name__, e)}
        out.write(_json.dumps(report) + "\n")
        out.flush()
        try:
            server.finish()
        except OSError as e:
            _sys.stderr.write("unitcoder sandbox: after the job (tidying, the next spare): %s\n" % e)


if __name__ == "__main__":
    serve(_json.loads(_sys.argv[2]))
