# unitcoder sandbox: the worker's memory and pids cgroups, seen from the server (appended to
# harness.py; one module, server side). A mixin of Server (server.py). The Rust side makes the groups
# (src/sandbox/cgroup.rs); here the server moves its zygote in, sets each job's limits, reads the OOM
# counter and kills whatever a job left in the groups.


class _Cgroups:
    def _cg_dirs(self):
        return [self.cg["memory"]] + ([self.cg["pids"]] if self.cg["pids"] != self.cg["memory"] else [])

    def _origin_cgroups(self):
        """The groups this server started in, one per hierarchy of the worker's groups (the same
        order as _cg_dirs), or None when they cannot be read."""
        if not self.cg:
            return None
        try:
            with open("/proc/self/cgroup") as f:
                lines = [line.rstrip("\n").split(":", 2) for line in f]
        except OSError:
            return None
        origin = []
        for d, controller in zip(self._cg_dirs(), ("memory", "pids")):
            root = _os.path.dirname(_os.path.dirname(d))  # <hierarchy>/unitcoder/<worker>
            if self.cg["kind"] == "v2":
                path = next((p for h, c, p in lines if h == "0" and c == ""), None)
            else:
                path = next((p for _h, c, p in lines if controller in c.split(",")), None)
            if path is None:
                return None
            origin.append(root + path)
        return origin

    @staticmethod
    def _move(dirs, pid=0):
        """Moves process `pid` (0: the caller) into each of the groups `dirs`."""
        for d in dirs:
            _write(_os.path.join(d, "cgroup.procs"), str(pid))

    def _limit_cgroup(self, limits):
        if not self.cg or limits == self.last_limits:
            return
        self.last_limits = dict(limits)
        mem = limits["memory_mb"] * 1024 * 1024
        if self.cg["kind"] == "v1":
            m = self.cg["memory"]
            memsw = _os.path.join(m, "memory.memsw.limit_in_bytes")
            order = [("memory.limit_in_bytes", mem)] + ([("memory.memsw.limit_in_bytes", mem)] if _os.path.exists(memsw) else [])
            try:
                for f, v in order:
                    _write(_os.path.join(m, f), str(v))
            except OSError:
                for f, v in reversed(order):
                    _write(_os.path.join(m, f), str(v))
        else:
            _write(_os.path.join(self.cg["memory"], "memory.max"), str(mem))
            if _os.path.exists(_os.path.join(self.cg["memory"], "memory.swap.max")):
                _write(_os.path.join(self.cg["memory"], "memory.swap.max"), "0")
        # The zygote is one of the group's tasks: the job still gets max_procs.
        _write(_os.path.join(self.cg["pids"], "pids.max"), str(limits["max_procs"] + self.zygote_in_cg))

    def _oom_kills(self):
        if not self.cg:
            return 0
        name = "memory.oom_control" if self.cg["kind"] == "v1" else "memory.events"
        return _read_counter(_os.path.join(self.cg["memory"], name), "oom_kill")

    def _cgroup_procs(self):
        if not self.cg:
            return []
        pids = set()
        # Every process of a job is in both groups (the child joins both; forks inherit them), so
        # the memory group's list is enough.
        for d in (self.cg["memory"],):
            try:
                with open(_os.path.join(d, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
        pids.discard(self.zygote_pid)
        return sorted(pids)

    def _reap_leftovers(self, report):
        for attempt in range(50):
            pids = self._cgroup_procs()
            if not pids:
                return
            if attempt == 0:
                report["leftover"] = len(pids)
            for p in pids:
                try:
                    _os.kill(p, _signal.SIGKILL)
                except OSError:
                    pass
            _time.sleep(0.02)
