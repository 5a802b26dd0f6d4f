# unitcoder sandbox: the server side's imports and its raw Linux interface (appended to harness.py;
# one module, server side). libc through ctypes, the syscall numbers the server needs (clone and
# Landlock's three), the clone and mount flags, and two small file helpers. Everything here is used
# by the trusted server, its zygote and the child before any candidate code runs.

import ctypes as _ct
import marshal as _marshal
import select as _select
import shutil as _shutil
import signal as _signal
import socket as _socket
import time as _time
import resource as _resource

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWIPC = 0x00020000, 0x20000000, 0x40000000, 0x08000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 2, 4, 8, 4096, 16384, 1 << 18
SYS = {"x86_64": (56, 444, 445, 446), "aarch64": (220, 444, 445, 446)}.get(_os.uname().machine)  # not `platform`: 6 ms of imports

_libc = _ct.CDLL(None, use_errno=True)
_pylibc = _ct.PyDLL(None, use_errno=True)  # keeps the GIL across clone(): the child resumes holding it


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
