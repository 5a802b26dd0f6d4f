# unitcoder sandbox: the server's namespaces and mounts (appended to harness.py; one module,
# server side). A mixin of Server (server.py): private network, mount and IPC namespaces, loopback, the
# hidden host root (rootfs.py) or, failing that, private tmpfs on /tmp, /dev/shm and the worker
# directory; and the clone into fresh PID and IPC (and mount) namespaces that every child is born by.


class _Namespaces:
    def _namespaces(self):
        ok = self.root and _libc.unshare(CLONE_NEWNS | CLONE_NEWNET) == 0
        self._mark("net-namespace", ok, "unshare(CLONE_NEWNET) failed")
        self._mark("mount-namespace", ok, "unshare(CLONE_NEWNS) failed")
        # SysV shared memory, semaphores and message queues (and POSIX queues) outlive the process
        # that made them: in the host's namespace a job could leave memory no cgroup counts, or
        # pass data to a later job. Each child also gets a namespace of its own (`_clone`), which
        # the kernel empties when the child's last process ends; this one keeps the host's out of
        # reach where that cannot be had.
        ipc = self.root and _libc.unshare(CLONE_NEWIPC) == 0
        self._mark("ipc-namespace", ipc, "unshare(CLONE_NEWIPC) failed")
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
            self.tmp_keep = hide_host(self.dir, expose, dir_opts, self._tmp_opts(), "size=256m,mode=1777")
        except (OSError, ValueError) as e:
            self._mark("hidden-host", False, "%s; host directories stay readable" % e)
            return False
        self._mark("hidden-host", True, None)
        self._mark("private-tmpfs", True, None)
        self._mark("private-tmp", True, None)
        return True

    def _tmp_opts(self):
        # The private /tmp is where TMPDIR points (server.py): as large as the worker directory,
        # where temporary files went before.
        return "size=%dm,mode=1777" % self.cfg.get("dir_mb", 1024)

    def _private_tmp(self):
        """Covers /tmp with this worker's own tmpfs, emptied after every job: programs that write
        to fixed paths such as /tmp/archive (BigCodeBench/785) work, the host's /tmp is neither
        readable nor writable, and jobs never see each other's files. The worker directory usually
        lives under the host's /tmp, and the interpreter may too (a venv made in /tmp): they are
        bound back at the same paths inside the new one, and tidying keeps them."""
        real = _os.path.realpath(self.dir)
        back = [real] if real.startswith("/tmp/") else []
        back += sorted(p for p in map(_os.path.realpath, self._interpreter_dirs())
                       if p.startswith("/tmp/") and not any(p == b or p.startswith(b + "/") for b in back))
        fds = [(p, _os.open(p, _os.O_PATH)) for p in back]
        try:
            if _libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, self._tmp_opts().encode()) != 0:
                return False
            for path, fd in fds:
                _os.makedirs(path, 0o755, exist_ok=True)
                if _libc.mount(("/proc/self/fd/%d" % fd).encode(), path.encode(), None, MS_BIND | MS_REC, None) != 0:
                    return False
                if path != real:  # the interpreter's: read-only, as in the hidden root (best effort)
                    _libc.mount(None, path.encode(), None, _RF_MS_REMOUNT | _RF_MS_BIND | _RF_MS_RDONLY, None)
                self.tmp_keep.add(path.split("/")[2])  # the top directory that leads to it
            return True
        finally:
            for _, fd in fds:
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
        flags = CLONE_NEWPID | CLONE_NEWIPC | (CLONE_NEWNS if self.own_proc else 0)
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
