# unitcoder sandbox: Landlock through raw syscalls (appended to harness.py; one module, server
# side). The server builds one ruleset (writes only beneath the worker's directories, and in degraded
# mode reads only beneath the system's and the interpreter's); the server and every child restrict
# themselves with it, and each child adds a signal scope (ABI 6). See docs/sandbox.md.

LL_WRITE_FILE, LL_TRUNCATE = 1 << 1, 1 << 14
LL_WRITE_DIR = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12)
LL_REFER = 1 << 13
LL_READ = (1 << 0) | (1 << 2) | (1 << 3)  # execute, read a file, read a directory


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
