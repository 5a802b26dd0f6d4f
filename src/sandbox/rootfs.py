# unitcoder sandbox: the file system a job sees (appended to harness.py; one module).
#
# Why: Landlock confines writes, not reads, and a program that can list the host can find the
# tests it is judged by (a benchmark's data file, the directory `check` read the tests from), the
# user's home, run and data directories, the project checkout. So the fork server, in its private
# mount namespace, builds a fresh root and pivots into it: a tmpfs holding the system directories
# (/usr, /etc, the /lib links, ... read-only), the kernel's (/dev, /proc, /sys, as before), the
# interpreter's own prefixes and sys.path directories, a private /tmp and the worker directory.
# Nothing else of the host exists there; the directories created only to lead to a bound one
# (/root on the way to a pyenv prefix, /work on the way to a venv) can be crossed, not listed.
# The zygote and every child inherit this root. See docs/sandbox.md.

import ctypes as _rf_ct
import stat as _rf_stat

_RF_MS_RDONLY, _RF_MS_REMOUNT, _RF_MS_BIND, _RF_MS_REC = 1, 32, 4096, 16384
_RF_MS_NOSUID, _RF_MS_NODEV = 2, 4
_RF_MNT_DETACH = 2
_RF_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}

# Shown read-only: programs, shared libraries, and the configuration libraries read (time zones,
# /etc/hosts for localhost, fonts). Nix and Guix keep every library in their store.
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/nix", "/gnu")
# Bound whole, as the host has them: each child mounts its own /proc over /proc, the server writes
# its cgroup files under /sys, /dev has /dev/null and friends (the job's /dev/shm is a fresh tmpfs).
KERNEL_DIRS = ("/dev", "/proc", "/sys")


class _RootBuilder:
    """A new root being built on a tmpfs mounted at `staging` (a host directory nobody else uses)."""

    def __init__(self, staging):
        self.libc = _rf_ct.CDLL(None, use_errno=True)
        self.root = staging.rstrip("/")
        self.bound = []  # host paths bound into the new root, each shown with all beneath it

    def mount(self, source, target, fstype, flags, data):
        if self.libc.mount(source and source.encode(), target.encode(), fstype and fstype.encode(), flags,
                           data and data.encode()) != 0:
            raise OSError("mount %s on %s: errno %d" % (source, target, _rf_ct.get_errno()))

    def covered(self, host):
        return any(host == b or host.startswith(b + "/") for b in self.bound)

    def bind(self, host, read_only):
        inner = self.root + host
        if _os.path.isdir(host):
            _os.makedirs(inner, exist_ok=True)
        else:
            _os.makedirs(_os.path.dirname(inner), exist_ok=True)
            _os.close(_os.open(inner, _os.O_CREAT | _os.O_WRONLY, 0o644))
        self.mount(host, inner, None, _RF_MS_BIND | _RF_MS_REC, None)
        if read_only:
            # Best effort: Landlock already forbids writes; this also holds where it is missing.
            self.libc.mount(None, inner.encode(), None, _RF_MS_REMOUNT | _RF_MS_BIND | _RF_MS_RDONLY, None)
        self.bound.append(host)

    def graft(self, path, read_only=True):
        """Makes `path` resolve in the new root as it does on the host: symbolic links on the way
        are copied, directories on the way are created crossable but not listable (0711), and
        what `path` names is bound, read-only. Paths that do not exist are skipped."""
        parts = [p for p in path.split("/") if p]
        cur, hops = "", 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                cur = _os.path.dirname(cur) if cur else ""
                continue
            host = cur + "/" + name
            if self.covered(host):
                return
            try:
                st = _os.lstat(host)
            except OSError:
                return
            inner = self.root + host
            if _rf_stat.S_ISLNK(st.st_mode):
                target = _os.readlink(host)
                if not _os.path.lexists(inner):
                    _os.symlink(target, inner)
                hops += 1
                if hops > 40:
                    return
                parts = [p for p in target.split("/") if p] + parts
                if target.startswith("/"):
                    cur = ""
                continue
            if not parts:
                self.bind(host, read_only)
                return
            if not _os.path.isdir(inner):
                _os.mkdir(inner, 0o711)
            cur = host

    def pivot(self):
        """Makes the new root this mount namespace's root and lets go of the old one."""
        number = _RF_PIVOT_ROOT.get(_os.uname().machine)  # not `platform`: 2-6 ms of imports
        if number is None:
            raise OSError("pivot_root: unknown system call number on this machine")
        _os.chdir(self.root)
        # pivot_root(".", "."): the old root ends up mounted over the new one, then is detached.
        if self.libc.syscall(number, b".", b".") != 0:
            raise OSError("pivot_root: errno %d" % _rf_ct.get_errno())
        if self.libc.umount2(b".", _RF_MNT_DETACH) != 0:
            raise OSError("detaching the host's root: errno %d" % _rf_ct.get_errno())
        _os.chdir("/")


def _mapped_dirs():
    """Directories of the files this process has mapped (its shared libraries): a library outside
    the usual places (a custom build's libpython) must stay reachable."""
    dirs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(None, 5)
                if len(fields) == 6 and fields[5].startswith("/") and not fields[5].rstrip().endswith("(deleted)"):
                    dirs.add(_os.path.dirname(fields[5].rstrip("\n")))
    except OSError:
        pass
    return dirs


def hide_host(worker_dir, expose, dir_opts, tmp_opts, shm_opts):
    """In a private mount namespace, as root: builds the job's root (see the top of this file) and
    pivots into it. `worker_dir` (a host directory only this server uses) is the staging point and
    gets its own tmpfs (`dir_opts`) at the same path inside; `expose` are the interpreter's
    directories. Returns the names of the top directories under /tmp that tidying keeps (the way
    to the worker directory, and to interpreter directories that live under /tmp). Raises OSError
    when the root cannot be built; the namespace is then left as it was, but for a tmpfs mounted
    over the staging directory."""
    real = _os.path.realpath(worker_dir)
    b = _RootBuilder(real)
    b.mount("tmpfs", real, "tmpfs", _RF_MS_NOSUID | _RF_MS_NODEV, "size=16m,mode=0755")
    for d in KERNEL_DIRS:
        if _os.path.isdir(d):
            _os.mkdir(b.root + d, 0o755)
            b.mount(d, b.root + d, None, _RF_MS_BIND | _RF_MS_REC, None)
            b.bound.append(d)
    _os.mkdir(b.root + "/tmp", 0o1777)
    b.bound.append("/tmp")  # never bind anything of the host's /tmp: tidying empties the private one
    for d in SYSTEM_DIRS:
        b.graft(d)
    for p in sorted(expose | _mapped_dirs()):
        b.graft(p)
    if _os.path.isdir(b.root + "/dev/shm"):
        b.mount("tmpfs", b.root + "/dev/shm", "tmpfs", _RF_MS_NOSUID | _RF_MS_NODEV, shm_opts)
    b.mount("tmpfs", b.root + "/tmp", "tmpfs", _RF_MS_NOSUID | _RF_MS_NODEV, tmp_opts)
    # An interpreter or venv that lives under the host's /tmp (a CI checkout, a throwaway venv) was
    # skipped above; it is grafted into the private /tmp now, read-only, and tidying keeps it.
    b.bound.remove("/tmp")
    for p in sorted(expose | _mapped_dirs()):
        if _under_tmp(p):
            b.graft(p)
    keep = {h.split("/")[2] for h in b.bound if h.startswith("/tmp/")}
    inner = b.root + real
    parts = real.split("/")
    for i in range(2, len(parts) + 1):  # the way to it: crossable, not listable
        step = b.root + "/".join(parts[:i])
        if not _os.path.isdir(step):
            _os.mkdir(step, 0o711)
    b.mount("tmpfs", inner, "tmpfs", _RF_MS_NOSUID | _RF_MS_NODEV, dir_opts)
    b.pivot()
    if real.startswith("/tmp/"):
        keep.add(real.split("/")[2])
    return keep


def _under_tmp(path):
    """Whether `path` leads to something inside the host's /tmp, through symbolic links too. /tmp
    itself never: the job's /tmp is its own."""
    return _os.path.realpath(path).startswith("/tmp/") or path.startswith("/tmp/")
