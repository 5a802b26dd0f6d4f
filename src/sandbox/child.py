# unitcoder sandbox: the contained child's setup (appended to harness.py; one module, server side).
# A mixin of Server (server.py). In the spare child (zygote.py), once its job arrives and before any
# candidate code: Landlock, the cgroups (when the zygote is not in them), the file descriptors, the
# working directory, rlimits, the unprivileged uid, the signal scope; then run_child (harness.py).

EVFD = 3


class _Child:
    def _child(self, box, fds):
        """In the spare, with its job (the one item of `box`): contain, drop privileges, run the
        harness. Never returns.

        The frames below the candidate's (this one, the spare's) hold neither the run's nonce nor
        the tests' source once the harness runs: a frame that reached the program through a library
        (traceback's StackSummary with capture_locals shows every local's repr) would otherwise
        give it what forging a verdict, or reading the expected values, takes. They travel on in a
        list that run_child empties."""
        program_code, tests_code, tests, code, nonce, jobdir, limits, strict, coverage = box.pop()
        try:
            if self.ruleset is not None:
                err = _landlock_restrict(self.ruleset)
                if err:
                    raise OSError(err)
            if self.cg and not self.zygote_in_cg:
                self._move(self._cg_dirs())
            devnull = _os.open("/dev/null", _os.O_RDONLY)
            ev = _os.dup(fds["ev"])
            _os.dup2(devnull, 0)
            _os.dup2(fds["out"], 1)
            _os.dup2(fds["err"], 2)
            _os.dup2(ev, EVFD)
            _os.closerange(EVFD + 1, 65536)
            _os.chdir(jobdir)
            if "tempfile" in _sys.modules:
                _sys.modules["tempfile"].tempdir = None  # it caches the server's temp dir
            cpu = int(limits["timeout"]) + 1
            R = _resource
            rl = [(R.RLIMIT_CPU, cpu, cpu + 1), (R.RLIMIT_CORE, 0, 0),
                  (R.RLIMIT_FSIZE, limits["max_file_mb"] << 20, limits["max_file_mb"] << 20),
                  (R.RLIMIT_NOFILE, limits["max_open_files"], limits["max_open_files"]),
                  (R.RLIMIT_NPROC, limits["max_procs"], limits["max_procs"])]
            if not self.cg:
                rl.append((R.RLIMIT_AS, limits["memory_mb"] << 20, limits["memory_mb"] << 20))
            for res, soft, hard in rl:
                R.setrlimit(res, (soft, hard))
            if self.root:
                _os.setgroups([])
                _os.setgid(self.uid)
                _os.setuid(self.uid)
            if self.scope_signals:
                _landlock_scope_signals()
            _sys.argv = [_os.path.join(jobdir, "program.py")]
        except BaseException as e:
            try:
                _os.write(fds["ev"], ("%s %s\n" % (nonce, _json.dumps({"k": "setup", "m": repr(e)[:300]}))).encode())
            finally:
                _os._exit(71)
        secrets = [nonce, tests]
        del nonce, tests
        run_child(program_code, tests_code, secrets, code, EVFD, jobdir, self.baseline, strict, coverage)
