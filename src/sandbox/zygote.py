# unitcoder sandbox: the zygote and its spare child (appended to harness.py; one module, server
# side). A mixin of Server (server.py): the server forks the zygote once; the zygote imports heavy
# modules when told and keeps one spare child cloned ahead of the next job, reaps it and reports its
# exit; the server's side of that exchange (take the spare, drop it, await its exit) is here too.
# The messages are protocol.py's.

_IMPORT_RE = __import__("re").compile(r"^[ \t]*(?:import|from)[ \t]+([A-Za-z_][A-Za-z0-9_.]*)", __import__("re").M)


class _Zygote:
    def _warm_up(self, job):
        """Has the zygote import the allowed heavy modules this job imports, so this and every
        later child inherits them already loaded. Only names from the configured list: the job's
        text picks among them but never names what the trusted side imports."""
        wanted = set()
        for src in (job["code"], job["tests"]):
            for m in _IMPORT_RE.finditer(src):
                parts = m.group(1).split(".")
                for i in range(1, len(parts) + 1):
                    if ".".join(parts[:i]) in self.warmable:
                        wanted.add(".".join(parts[:i]))
        if wanted:
            self.warmable.difference_update(wanted)
            self._drop_spare()  # cloned before these imports
            _send(self.sock, ("warm", sorted(wanted)))
            _recv(self.sock)
            _send(self.sock, ("next",))

    def _start_zygote(self):
        """Forks the zygote, which from now on clones every child. The server keeps one end of a
        socket pair; the zygote dies with the server (PR_SET_PDEATHSIG).

        The server moves the zygote into the worker's memory and pids groups (and tells it so in
        the first message), so every child is born there. Why: a child that joins the groups
        itself writes cgroup.procs, and under cgroup v1 each such move may wait for an RCU grace
        period (cgroup_threadgroup_rwsem) while the other workers' moves queue on cgroup_mutex:
        ~2% of HumanEval jobs stalled 10-25 ms there, ~5% of the wall time (perf sched). The OOM
        killer picks a job's processes before the zygote (each child sets oom_score_adj 1000),
        the zygote counts as one of the group's tasks (pids.max is one higher), and it imports
        heavy modules outside the groups (_zygote_warm), so a job's limits are the job's own."""
        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        server_pid = _os.getpid()
        _sys.stdout.flush()
        # Give freed heap pages back first: each clone copies the page-table entries of every
        # resident page, used or not (compiling this module without the bytecode cache leaves ~3 MB
        # of free heap behind, a fifth of the zygote).
        trim = getattr(_libc, "malloc_trim", None)  # glibc only
        if trim is not None:
            trim(0)
        pid = _os.fork()
        if pid == 0:
            try:
                mine.close()
                _libc.prctl(1, _signal.SIGKILL, 0, 0, 0)
                _libc.prctl(15, b"uc-zygote", 0, 0, 0)  # PR_SET_NAME: tells the processes apart in ps/top
                if _os.getppid() != server_pid:
                    _os._exit(0)
                null = _os.open("/dev/null", _os.O_RDWR)
                _os.dup2(null, 0)  # the server's job and report streams are not the zygote's
                _os.dup2(null, 1)
                _os.close(null)
                self._zygote(theirs)
            finally:
                _os._exit(0)
        theirs.close()
        self.sock, self.zygote_pid = mine, pid
        if self.cg and self.origin:
            try:
                self._move(self._cg_dirs(), pid)
                self.zygote_in_cg = True
            except OSError as e:
                # Degraded, not unsafe: each child joins the groups itself, as it must then.
                self.notes.append("cannot move the zygote into the worker's cgroups (%s); each child joins them" % e)
        _send(mine, ("start", self.zygote_in_cg))

    def zygote_alive(self):
        try:
            return _os.waitpid(self.zygote_pid, _os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def stop(self):
        """Closes the spare's and the zygote's sockets (both exit) and reaps the zygote, so its
        children's CPU time is counted."""
        if self.spare is not None:
            self.spare[1].close()
        self.sock.close()
        _os.waitpid(self.zygote_pid, 0)

    def _zygote(self, sock):
        """Keeps one *spare* child cloned ahead of the next job: the spare sets itself up as far as
        it can without the job (PID and mount namespaces, its /proc) and waits on a socket whose
        other end goes to the server, which sends the job straight to it. Cloning, mounting and
        the namespaces' teardown thus happen while the server prepares and finishes jobs, not
        between them. Protocol: first ("start", in_cgroups) from the server; then, zygote to
        server, ("spare", pid) with [socket, pidfd] or ("error", why), then ("exit", status) when
        that child ends; then it waits for ("next",), or ("warm", modules) answered by ("ok",),
        before cloning the next spare."""
        import gc
        try:
            self.zygote_in_cg = _recv(sock)[0][1]  # ("start", in the worker's cgroups)
        except EOFError:
            return
        # Objects from before the fork stay untouched by the child's GC (less copy-on-write). No
        # collection first: the boot code ran with the collector off, and a full collection of
        # the start-up heap (~3 ms) found nothing to free.
        gc.freeze()
        gc.enable()
        while True:
            try:
                pid = self._clone_spare(sock)
            except OSError as e:
                _send(sock, ("error", "clone: %s" % e))
                pid = None
            if pid is not None:
                mntns = self._hold_mount_ns(pid)
                _, status = _os.waitpid(pid, 0)
                _send(sock, ("exit", status))
                if mntns is not None:
                    _os.close(mntns)  # the namespace's teardown, now that the exit is reported
            while True:
                try:
                    msg, _fds = _recv(sock)
                except EOFError:
                    return
                if msg[0] != "warm":
                    break  # "next"
                self._zygote_warm(msg[1])
                self.baseline = snapshot()  # as the child will find them, with the new modules loaded
                gc.collect()
                gc.freeze()
                _send(sock, ("ok",))

    def _zygote_warm(self, names):
        """Imports `names` in the zygote. Inside the worker's groups their memory (pandas: ~60 MB)
        would be charged to every later job; v1 and v2 both leave a charge where it was made, so
        the zygote imports from the server's groups and steps back in."""
        moved = False
        if self.zygote_in_cg:
            try:
                self._move(self.origin)
                moved = True
            except OSError:
                pass
        try:
            for name in names:
                try:
                    __import__(name)
                except Exception:
                    pass
        finally:
            if moved:
                self._move(self._cg_dirs())

    def _clone_spare(self, sock):
        """Clones the next spare child and hands its socket and pidfd to the server; returns its pid."""
        mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            pid = self._clone()
        except OSError:
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            mine.close()
            self._spare(theirs)
        theirs.close()
        pidfd = _os.pidfd_open(pid)
        try:
            _send(sock, ("spare", pid), [mine.fileno(), pidfd])
        finally:
            mine.close()
            _os.close(pidfd)
        return pid

    def _spare(self, conn):
        """In a fresh clone: what needs no job, then wait for the job. Never returns."""
        try:
            _libc.prctl(1, _signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the zygote
            _libc.prctl(15, b"uc-job", 0, 0, 0)
            if self.cpus:
                _os.sched_setaffinity(0, self.cpus)  # every CPU again (see _pin)
            # The OOM killer's first choice, in the worker's memory group (where the zygote lives
            # too) and on the host. Raising needs no privilege; lowering it would (CAP_SYS_RESOURCE,
            # which containers often lack, so the zygote cannot be exempted instead).
            _write("/proc/self/oom_score_adj", "1000")
            if self.own_proc and not self._mount_proc():
                raise OSError("mounting /proc failed: errno %d" % _ct.get_errno())
            msg, fds = _recv(conn)
        except BaseException:
            _os._exit(72)  # the server closed the socket (it stops, or it needs a new spare)
        # Handed over in a box that _child empties: this frame stays below the candidate's for the
        # rest of the process, and must not hold the job's nonce or tests (see _child).
        box = [msg[1]]
        del msg
        self._child(box, dict(zip(("ev", "out", "err"), fds)))

    def _hold_mount_ns(self, pid):
        """A reference to the child's own mount namespace, so that tearing it down is not part of
        the child's exit. Freeing a mount namespace waits for an RCU grace period, in the context of
        whoever drops the last reference: held here, the zygote pays it after reporting the exit,
        while the server finishes the job, instead of the child before its exit can be reported.
        (The per-job mount namespace costs ~10% of the wall time of HumanEval jobs; this and the
        spare child win back about half of it.)"""
        if not self.own_proc:
            return None
        try:
            return _os.open("/proc/%d/ns/mnt" % pid, _os.O_RDONLY | _os.O_CLOEXEC)
        except OSError:
            return None

    def _take_spare(self):
        """The zygote's spare child as (pid, socket, pidfd), or why there is none."""
        if self.spare is None:
            msg, fds = _recv(self.sock)
            if msg[0] != "spare":
                # The zygote now waits for "next" (or "warm"): see run() and _warm_up().
                return str(msg[1]) if msg[0] == "error" else "zygote: unexpected %r" % (msg[0],)
            self.spare = (msg[1], _socket.socket(fileno=fds[0]), fds[1])
        return self.spare

    def _drop_spare(self):
        """Ends the spare child (it has not run anything) and reads its exit."""
        spare = self._take_spare()
        if isinstance(spare, str):
            return
        _pid, conn, pidfd = spare
        self.spare, self.running = None, True
        conn.close()  # it exits on end of input
        _os.close(pidfd)
        self._await_exit()

    def _await_exit(self):
        """Reads messages up to the zygote's "exit" for the running child (whoever then wants the
        next spare sends "next")."""
        while True:
            msg, _fds = _recv(self.sock)
            if msg[0] == "exit":
                break
        self.running = False
        return msg[1]
