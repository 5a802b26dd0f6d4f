# unitcoder sandbox: the audit hook (appended to harness.py; one module; in-child runtime).
# Installed by run_child before any candidate code runs; it cannot be removed. For calls whose
# nearest non-library frame is candidate or test code it blocks the routes to the harness's state:
# frames, gc, ctypes, settrace, reading or replacing code objects, compiling under a trusted name,
# /proc/*/mem. A blocked call raises and is reported as tampering, but for dlopen of a file that can
# load nothing, which raises the OSError dlopen would.


# Where dlopen looks for a bare library name. It also looks in LD_LIBRARY_PATH and ld.so.cache's
# directories; a library only there is refused as missing instead of as tampering (loaded either way
# it is not), as reading the environment could run code the candidate put there.
LIBRARY_DIRS = ["/lib", "/usr/lib", "/lib64", "/usr/lib64", "/usr/local/lib", "/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu"]


def _install_audit_hook(own, tamper):
    """Installs the hook. `own(filename)`: whether the file lies where the candidate can place code
    (its code, wherever it was written, is untrusted)."""
    real_type, real_issubclass = type, issubclass
    real_stat, real_os_open, real_read, real_close = _os.stat, _os.open, _os.read, _os.close
    real_oserror, ENOENT, O_RDONLY, S_ISDIR, S_ISREG = OSError, _errno.ENOENT, _os.O_RDONLY, _stat.S_ISDIR, _stat.S_ISREG
    getframe = _sys._getframe

    frame_attrs = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}

    # Library functions that hand frames to whoever iterates or calls them (traceback's walkers,
    # asyncio's Task.get_stack): judged by that caller. Traceback's own formatting consumes its
    # walkers and hands out text, so `traceback.format_exc()` in a program stays allowed, while a
    # program that walks the stack itself (and from a frame could read the harness's locals)
    # does not.
    frame_givers = {"/traceback.py": ("walk_tb", "walk_stack"), "/asyncio/base_tasks.py": ("_task_get_stack",)}

    def transparent(code):
        # Library code that hands frames or raw memory to its caller: judge the caller instead.
        fn = text(code.co_filename)
        if fn.endswith("/inspect.py") or "/ctypes/" in fn:
            return True
        for suffix, names in frame_givers.items():
            if fn.endswith(suffix) and code.co_name in names:
                return True
        return False
    busy = set()
    ident = _thread_ident

    def untrusted(fn):
        if fn == HARNESS_FN or fn.startswith("<frozen "):
            return False
        return not fn.startswith("/") or own(fn)

    def handed_over(code):
        # A function or lambda that a test makes and passes to the program under test, as
        # `task_func(lambda x, y=2: x + y)` in tasks that inspect a function's signature: its code
        # holds only its own constants (the test's expected values stay in the test's code, which
        # is reachable only through that code or a frame). Test methods and module-level code are
        # not made inside a function; a method of a TestCase made inside one still counts as a test.
        if text(code.co_filename) != TESTS_FN:
            return False
        if code.co_name == "<lambda>":
            return True
        qualname = getattr(code, "co_qualname", None)  # Python 3.11+
        if qualname is None:
            return bool(code.co_flags & 0x10)  # CO_NESTED: made inside a function
        return "<locals>." in qualname and "." not in qualname.rpartition("<locals>.")[2]

    def unloadable(name):
        """dlopen's error for a library name that names no loadable file (a missing path, an empty
        file, a file that is not ELF), or None when it might load: then the call is tampering. The
        program sees the OSError a real dlopen gives (BigCodeBench's ctypes tasks test exactly that),
        and dlopen is never called, so nothing can appear at the path between this check and it.
        Only functions taken before any candidate code ran are called here: code the candidate put
        in their place would run unwatched, this thread being `busy`."""
        name = text(name)
        if not name:
            return None  # None or "": the running program itself
        missing = name + ": cannot open shared object file: No such file or directory"
        if "/" not in name:
            for d in LIBRARY_DIRS:
                try:
                    real_stat(d + "/" + name)
                    return None
                except real_oserror:
                    pass
            return missing
        try:
            st = real_stat(name)
        except real_oserror as e:
            return missing if e.errno == ENOENT else None
        if S_ISDIR(st.st_mode):
            return name + ": cannot read file data: Is a directory"
        if not S_ISREG(st.st_mode):
            return None
        if st.st_size < 64:
            return name + ": file too short"
        try:
            fd = real_os_open(name, O_RDONLY)
            try:
                magic = real_read(fd, 4)
            finally:
                real_close(fd)
        except real_oserror:
            return None
        return None if magic == b"\x7fELF" else name + ": invalid ELF header"

    def text(x):
        # A str or bytes (subclasses too: compile() keeps one as co_filename, sys.audit passes its
        # arguments on as they are) as a plain str, else None. Nothing of the object's own runs:
        # its type is read with type(), as isinstance would ask a foreign object for its
        # `__class__`, which may be a property, and the base classes' methods are called, not a
        # subclass's. Candidate code run here would run unwatched, this thread being `busy`.
        kind = real_type(x)
        if real_issubclass(kind, str):
            return str.__str__(x)
        if real_issubclass(kind, bytes):
            return bytes.decode(x, "utf-8", "replace")
        return None

    def requester():
        f = getframe(2)
        while f is not None and transparent(f.f_code):
            f = f.f_back
        return text(f.f_code.co_filename) if f is not None else HARNESS_FN

    def hook(event, args):
        me = ident()
        if me in busy:
            return
        busy.add(me)
        try:
            blocked = refused = None
            if event == "open":
                p = text(args[0])
                if p is not None and p.startswith("/proc/") and (p.endswith("/mem") or "/mem/" in p):
                    blocked = "opening " + p
            elif event == "ctypes.dlopen" and untrusted(requester()):
                refused = unloadable(args[0])
                if refused is None:
                    blocked = event
            elif event.startswith(("gc.get_", "ctypes.")) or event in (
                "sys._getframe", "sys._current_frames", "sys._current_exceptions",
                "sys.settrace", "sys.setprofile", "code.__new__",
            ):
                if untrusted(requester()):
                    blocked = event
            elif event == "object.__getattr__" and text(args[1]) in frame_attrs:
                if untrusted(requester()):
                    blocked = "access to ." + text(args[1])
            elif event == "object.__getattr__" and text(args[1]) == "__code__":
                code = args[0].__code__ if real_type(args[0]) is real_type(run_child) else None
                if code is not None and text(code.co_filename) in (TESTS_FN, HARNESS_FN) and not handed_over(code) \
                        and untrusted(requester()):
                    blocked = "reading the code of a test"
            elif event == "object.__setattr__" and text(args[1]) == "__code__":
                target = args[0]
                if real_type(target) is real_type(run_child) and untrusted(requester()):
                    blocked = "replacing a function's code"
            elif event == "compile":
                fn = text(args[1])
                if fn is not None and (fn.startswith("/") or fn in (HARNESS_FN, TESTS_FN)):
                    if untrusted(requester()):
                        blocked = "compiling code under the name " + fn
            if blocked is not None:
                tamper("blocked: " + blocked)
        finally:
            busy.discard(me)
        if blocked is not None:
            raise RuntimeError("unitcoder sandbox: %s is not allowed" % blocked)
        if refused is not None:
            raise real_oserror(refused)

    _sys.addaudithook(hook)
