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

import ctypes as _ct
import marshal as _marshal
import select as _select
import shutil as _shutil
import signal as _signal
import socket as _socket
import time as _time
import resource as _resource

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
LL_WRITE_FILE, LL_TRUNCATE = 1 << 1, 1 << 14
LL_WRITE_DIR = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
LL_REFER = 1 << 13
LL_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read a file, read a directory
EVFD = 3
_IMPORT_RE = __import__("re").compile(r"^[ \t]*(?:import|from)[ \t]+([A-Za-z_][A-Za-z0-9_.]*)", __import__("re").M)
SYS = {"x86_64": (56, 444, 445, 446), "aarch64": (220, 444, 445, 446)}.get(_os.uname().machine)  # not `platform`: 6 ms of imports

_libc = _ct.CDLL(None, use_errno=True)
_pylibc = _ct.PyDLL(None, use_errno=True)  # keeps the GIL across clone(): the child resumes holding it


class _RulesetAttr(_ct.Structure):
    _fields_ = [("fs", _ct.c_uint64), ("net", _ct.c_uint64), ("scoped", _ct.c_uint64)]


class _PathBeneath(_ct.Structure):
    _pack_ = 1
    _fields_ = [("allowed", _ct.c_uint64), ("parent_fd", _ct.c_int32)]


def _landlock_abi():
    if SYS is None:
        return 0
    abi = _libc.syscall(SYS[1], None, 0, 1)
    return abi if abi > 0 else 0


def _landlock_ruleset(dirs, files, reads=None):
    """A Landlock ruleset fd: writes only beneath `dirs` and to `files`, and when `reads` is given,
    reads (and execution) only beneath those and `reads`; or a string saying why
    there is none. Built once by the server; the server and each
    child restrict themselves with it (the zygote stays unrestricted: a Landlock-restricted process
    may not mount, and each child mounts its own /proc before restricting itself)."""
    abi = _landlock_abi()
    if abi < 1:
        return "kernel has no Landlock"
    fs = LL_WRITE_DIR | (LL_REFER if abi >= 2 else 0) | (LL_TRUNCATE if abi >= 3 else 0)
    read = LL_READ if reads is not None else 0
    # Network access is not restricted here: the private network namespace has only loopback.
    attr = _RulesetAttr(fs | read, 0, 0)
    size = 8
    rfd = _libc.syscall(SYS[1], _ct.byref(attr), size, 0)
    if rfd < 0:
        return "landlock_create_ruleset: errno %d" % _ct.get_errno()
    file_access = LL_WRITE_FILE | (LL_TRUNCATE if abi >= 3 else 0) | (read & ~(1 << 3))
    for paths, allowed in ((dirs, fs | read), (files, file_access), (reads or (), read)):
        for p in paths:
            pfd = _os.open(p, _os.O_PATH | _os.O_CLOEXEC)
            try:
                rule = _PathBeneath(allowed, pfd)
                if _libc.syscall(SYS[2], rfd, 1, _ct.byref(rule), 0) != 0:
                    _os.close(rfd)
                    return "landlock_add_rule %s: errno %d" % (p, _ct.get_errno())
            finally:
                _os.close(pfd)
    return rfd


def _landlock_restrict(rfd):
    """Restricts this process and its future children with the ruleset `rfd`; None or why not."""
    if _libc.prctl(38, 1, 0, 0, 0) != 0:
        return "PR_SET_NO_NEW_PRIVS failed"
    if _libc.syscall(SYS[3], rfd, 0) != 0:
        return "landlock_restrict_self: errno %d" % _ct.get_errno()
    return None


def _landlock_scope_signals():
    """Per child (ABI >= 6): signals and abstract unix sockets only within the child's own domain."""
    if _landlock_abi() < 6:
        return False
    attr = _RulesetAttr(0, 0, 3)
    rfd = _libc.syscall(SYS[1], _ct.byref(attr), 24, 0)
    if rfd < 0:
        return False
    ok = _libc.syscall(SYS[3], rfd, 0) == 0
    _os.close(rfd)
    return ok


def _write(path, text):
    # os-level, not open(): in a child every buffered-IO object is fresh memory (page faults).
    fd = _os.open(path, _os.O_WRONLY | _os.O_CLOEXEC)
    try:
        _os.write(fd, text.encode())
    finally:
        _os.close(fd)


def _read_counter(path, key):
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == key:
                    return int(parts[1])
    except OSError:
        pass
    return 0


def _send(sock, obj, fds=()):
    """One message on the server-zygote stream: 8-byte length, marshal body, fds with the first byte."""
    data = _marshal.dumps(obj)
    frame = len(data).to_bytes(8, "little") + data
    sent = _socket.send_fds(sock, [frame], list(fds)) if fds else sock.send(frame)
    if sent < len(frame):
        sock.sendall(frame[sent:])


def _recv_exact(sock, n, fds):
    buf = bytearray()
    while len(buf) < n:
        if fds is not None and not buf:
            data, got, _flags, _addr = _socket.recv_fds(sock, n, 8)
            fds.extend(got)
        else:
            data = sock.recv(n - len(buf))
        if not data:
            raise EOFError("the other end of the zygote socket closed")
        buf += data
    return bytes(buf)


def _recv(sock):
    fds = []
    n = int.from_bytes(_recv_exact(sock, 8, fds), "little")
    return _marshal.loads(_recv_exact(sock, n, None)), fds


class Server:
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
        self.tmp_keep = None
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
        env = {"PATH": _os.path.dirname(_sys.executable) + ":/usr/local/bin:/usr/bin:/bin",
               "HOME": jobdir, "TMPDIR": _os.path.join(jobdir, "tmp"), "LANG": "C.UTF-8",
               "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
               "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        _os.environ.clear()
        _os.environ.update(env)

    def _mark(self, name, ok, why):
        (self.active if ok else self.missing).append(name)
        if not ok and why:
            self.notes.append("%s: %s" % (name, why))

    def _namespaces(self):
        ok = self.root and _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) == 0
        self._mark("net-namespace", ok, "unshare(CLONE_NEWNET) failed")
        self._mark("mount-namespace", ok, "unshare(CLONE_NEWNS) failed")
        if not ok:
            # Degraded (not root): Landlock confines reads to what a new root would have shown.
            wanted = set(SYSTEM_DIRS + KERNEL_DIRS) | self._interpreter_dirs() | _mapped_dirs()
            self.read_paths = sorted(p for p in wanted if _os.path.exists(p))
            return
        _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        self._loopback_up()
        if self._hide_host():
            return
        if _os.path.isdir("/dev/shm"):
            _libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=256m,mode=1777")
        self._expose_python()
        opts = ("size=%dm,mode=0755" % self.cfg.get("dir_mb", 1024)).encode()
        ok = _libc.mount(b"tmpfs", self.dir.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts) == 0
        self._mark("private-tmpfs", ok, "mounting a tmpfs on the worker dir failed")
        self._mark("private-tmp", ok and self._private_tmp(), "mounting a private /tmp failed")

    @staticmethod
    def _interpreter_dirs():
        """What the interpreter needs: its prefixes, its executable's directory, sys.path."""
        dirs = {_sys.prefix, _sys.base_prefix, _sys.exec_prefix, _os.path.dirname(_sys.executable),
                _os.path.dirname(_os.path.realpath(_sys.executable))}
        dirs.update(p for p in _sys.path if p and _os.path.isabs(p) and _os.path.isdir(p))
        return dirs

    def _hide_host(self):
        """Moves this server into a root that shows only the system, the interpreter and its own
        directories (rootfs.py). True when done (with a private /tmp, /dev/shm and worker tmpfs);
        otherwise the host stays visible, which is reported, and _namespaces goes on as before."""
        expose = self._interpreter_dirs()
        # The worker directory's parents can be crossed but not listed, and so can it (mode 0711):
        # a job lists its own directory and /tmp, not the way there.
        dir_opts = "size=%dm,mode=0711" % self.cfg.get("dir_mb", 1024)
        try:
            self.tmp_keep = hide_host(self.dir, expose, dir_opts, "size=512m,mode=1777", "size=256m,mode=1777")
        except (OSError, ValueError) as e:
            self._mark("hidden-host", False, "%s; host directories stay readable" % e)
            return False
        self._mark("hidden-host", True, None)
        self._mark("private-tmpfs", True, None)
        self._mark("private-tmp", True, None)
        return True

    def _private_tmp(self):
        """Covers /tmp with this worker's own tmpfs, emptied after every job: programs that write
        to fixed paths such as /tmp/archive (BigCodeBench/785) work, the host's /tmp is neither
        readable nor writable, and jobs never see each other's files. The worker directory usually
        lives under the host's /tmp; its tmpfs is bound back at the same path inside the new one."""
        real = _os.path.realpath(self.dir)
        inside = real.startswith("/tmp/")
        fd = _os.open(real, _os.O_PATH) if inside else None
        try:
            if _libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, b"size=512m,mode=1777") != 0:
                return False
            if inside:
                _os.makedirs(real, 0o755)
                if _libc.mount(("/proc/self/fd/%d" % fd).encode(), real.encode(), None, MS_BIND, None) != 0:
                    return False
                self.tmp_keep = real.split("/")[2]  # the top directory that leads to the worker dir
            return True
        finally:
            if fd is not None:
                _os.close(fd)

    def _loopback_up(self):
        """Brings up `lo` in this private network namespace: programs may serve and connect on
        localhost (BigCodeBench/1040 does), while no other interface exists, so nothing outside
        the namespace is reachable."""
        import fcntl
        import struct
        try:
            with _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM) as s:
                flags = 0x1 | 0x8 | 0x40  # IFF_UP | IFF_LOOPBACK | IFF_RUNNING
                fcntl.ioctl(s, 0x8914, struct.pack("16sH14s", b"lo", flags, b"\0" * 14))  # SIOCSIFFLAGS
        except OSError as e:
            self.notes.append("loopback: cannot bring up lo (%s); localhost is unreachable" % e)

    def _expose_python(self):
        """The interpreter may live under a directory other users cannot enter (pyenv in /root).
        In this private mount namespace, cover such a directory with an empty tmpfs and bind back
        only the parts Python needs, so the unprivileged uid can import and nothing else shows."""
        needed = {_sys.prefix, _sys.base_prefix, _sys.exec_prefix, _os.path.dirname(_sys.executable)}
        needed.update(p for p in _sys.path if p and _os.path.isdir(p))
        hidden = {}
        for path in sorted(needed):
            parts = _os.path.realpath(path).split("/")
            for i in range(2, len(parts)):
                ancestor = "/".join(parts[:i])
                if not _os.stat(ancestor).st_mode & 0o001:
                    hidden.setdefault(ancestor, set()).add(parts[i])
                    break
        for ancestor, children in hidden.items():
            fds = {c: _os.open(_os.path.join(ancestor, c), _os.O_PATH) for c in children}
            if _libc.mount(b"tmpfs", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=1m,mode=0755") != 0:
                self.notes.append("cannot expose %s to the unprivileged uid" % ancestor)
                continue
            for child, fd in fds.items():
                target = _os.path.join(ancestor, child)
                _os.mkdir(target)
                _libc.mount(("/proc/self/fd/%d" % fd).encode(), target.encode(), None, MS_BIND | MS_REC, None)
                _os.close(fd)

    def _clone(self):
        if not self.clone_ns:
            return _os.fork()
        api = _ct.pythonapi
        api.PyOS_BeforeFork()
        # With its own mount namespace the child can mount a /proc that shows only its PID
        # namespace (no host processes to read; psutil and friends see the right PIDs).
        flags = CLONE_NEWPID | (CLONE_NEWNS if self.own_proc else 0)
        pid = _pylibc.syscall(SYS[0], flags | _signal.SIGCHLD, 0, 0, 0, 0)
        if pid == 0:
            api.PyOS_AfterFork_Child()
        else:
            api.PyOS_AfterFork_Parent()
        return pid

    def _probe_clone(self, proc=False):
        saved, self.clone_ns, self.own_proc = (self.clone_ns, self.own_proc), True, proc
        try:
            pid = self._clone()
        except Exception:
            self.clone_ns, self.own_proc = saved
            return False
        if pid == 0:
            ok = _os.getpid() == 1 and (not proc or self._mount_proc())
            _os._exit(0 if ok else 1)
        self.clone_ns, self.own_proc = saved
        if pid < 0:
            return False
        _, status = _os.waitpid(pid, 0)
        return status == 0

    def _mount_proc(self):
        """In a child (its own mount and PID namespaces): a fresh proc on /proc."""
        return _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=0") == 0

    def ready(self):
        return {"ready": True, "active": self.active, "missing": self.missing, "notes": self.notes,
                "python": "%d.%d.%d" % _sys.version_info[:3], "executable": _sys.executable}

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

    # ------------------------------------------------------------ the zygote

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
        self._child(msg[1], dict(zip(("ev", "out", "err"), fds)))

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

    # ------------------------------------------------------------ one job

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

    def _child(self, task, fds):
        """In the spare, with its job: contain, drop privileges, run the harness. Never returns."""
        program_code, tests_code, tests, code, nonce, jobdir, limits, strict, coverage = task
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
        run_child(program_code, tests_code, tests, code, nonce, EVFD, jobdir, self.baseline, strict, coverage)

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

    def tidy(self):
        """Empties what a job could write (its directory, /tmp, /dev/shm) and makes a fresh job
        directory. Called after each report is sent, so it overlaps the caller's handling of it;
        no job starts before it is done."""
        jobdir = self.jobdir
        untouched = self._untouched()
        if not untouched:
            _shutil.rmtree(jobdir, ignore_errors=True)
        for shared in self.emptied:
            for name in _os.listdir(shared):
                if name == self.tmp_keep and shared == "/tmp":
                    continue
                p = _os.path.join(shared, name)
                _shutil.rmtree(p, ignore_errors=True) if _os.path.isdir(p) and not _os.path.islink(p) else _os.unlink(p)
        if not untouched:
            _os.makedirs(_os.path.join(jobdir, "tmp"))
            if self.root:
                for d in (jobdir, _os.path.join(jobdir, "tmp")):
                    _os.chown(d, self.uid, self.uid)
            try:
                self.jobdir_made = self._jobdir_state()
            except OSError:
                self.jobdir_made = None  # e.g. no extended attributes here: always made afresh
        self.jobdir_ready = True

    def _jobdir_state(self):
        """What a job could change about its directory and its tmp without leaving a file there:
        entries, inode, owner, mode, modification time, extended attributes (ACLs among them)."""
        state = []
        for d in (self.jobdir, _os.path.join(self.jobdir, "tmp")):
            st = _os.lstat(d)
            state.append((sorted(_os.listdir(d)), st.st_ino, st.st_uid, st.st_gid, st.st_mode, st.st_mtime_ns,
                          sorted(_os.listxattr(d, follow_symlinks=False))))
        return state

    def _untouched(self):
        """Whether the last job left its directory exactly as tidy() made it (most jobs write
        nothing): then it is kept instead of removed and made again, ~0.1 ms per job. Anything
        else, or any doubt, and it is made afresh."""
        if self.jobdir_made is None:
            return False
        try:
            return self._jobdir_state() == self.jobdir_made
        except OSError:
            return False

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

    def _supervise(self, pidfd, readers, limits, start, report):
        tail = self.cfg.get("tail_bytes", 4096)
        ev_cap = 4 << 20
        bufs = {"ev": bytearray(), "out": bytearray(), "err": bytearray()}
        # poll(), not the selectors module: no epoll descriptor to make and close, no key objects
        # per wake-up (~0.1 ms of the server's Python per job).
        poller, watch = _select.poll(), dict(readers)
        # The child's end arrives as the zygote's "exit" message (it reaps the child and reports
        # at once): one wake-up, where the pidfd would add a second. The pidfd is for SIGKILL.
        watch[self.sock.fileno()] = "exit"
        for fd in watch:
            poller.register(fd, _select.POLLIN)
        deadline = start + limits["timeout"]
        exited, drain_until, open_pipes = False, None, len(readers)
        while True:
            now = _time.monotonic()
            if not exited and now >= deadline and not report["timed_out"]:
                report["timed_out"] = True
                try:
                    _signal.pidfd_send_signal(pidfd, _signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if exited and (open_pipes == 0 or now >= drain_until):
                break
            wait = (drain_until - now) if exited else max(0.0, deadline - now) + 0.01
            wait = max(0.0, wait) if not report["timed_out"] or exited else 1.0
            for fd, _mask in poller.poll(int(wait * 1000) + 1):
                kind = watch[fd]
                if kind == "exit":
                    poller.unregister(fd)
                    status = self._await_exit()
                    if _os.WIFSIGNALED(status):
                        report["signal"] = _os.WTERMSIG(status)
                    else:
                        report["exit_code"] = _os.WEXITSTATUS(status)
                    exited, drain_until = True, _time.monotonic() + 1.0
                    continue
                chunk = _os.read(fd, 1 << 16)
                if not chunk:
                    poller.unregister(fd)
                    open_pipes -= 1
                    continue
                buf = bufs[kind]
                if kind == "ev":
                    if len(buf) + len(chunk) > ev_cap:
                        report["events_truncated"] = True
                    else:
                        buf += chunk
                else:
                    counter = "stdout_bytes" if kind == "out" else "stderr_bytes"
                    report[counter] += len(chunk)
                    buf += chunk
                    if len(buf) > 4 * tail:
                        del buf[: len(buf) - tail]
        report["events"] = bytes(bufs["ev"]).decode("utf-8", "replace").splitlines()
        for kind, key in (("out", "stdout_tail"), ("err", "stderr_tail")):
            data = bytes(bufs[kind][-tail:])
            report[key] = data.decode("utf-8", "replace")

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
