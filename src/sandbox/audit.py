# unitcoder sandbox: the audit hook (appended to harness.py; one module; in-child runtime).
# Installed by run_child before any candidate code runs; it cannot be removed. For calls whose
# nearest non-library frame is candidate or test code it blocks the routes to the harness's state:
# frames, gc, ctypes, settrace, reading or replacing code objects, compiling under a trusted name,
# /proc/*/mem. A blocked call raises and is reported as tampering.


def _install_audit_hook(own, tamper):
    """Installs the hook. `own(filename)`: whether the file lies where the candidate can place code
    (its code, wherever it was written, is untrusted)."""
    real_type, real_isinstance = type, isinstance
    getframe = _sys._getframe

    frame_attrs = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}

    def transparent(fn):
        # Library code that hands frames or raw memory to its caller: judge the caller instead.
        return fn.endswith("/inspect.py") or "/ctypes/" in fn
    busy = set()
    ident = _thread_ident

    def untrusted(fn):
        if fn == HARNESS_FN or fn.startswith("<frozen "):
            return False
        return not fn.startswith("/") or own(fn)

    def requester():
        f = getframe(2)
        while f is not None and transparent(f.f_code.co_filename):
            f = f.f_back
        return f.f_code.co_filename if f is not None else HARNESS_FN

    def hook(event, args):
        me = ident()
        if me in busy:
            return
        busy.add(me)
        try:
            blocked = None
            if event == "open":
                path = args[0]
                if real_isinstance(path, (str, bytes)):
                    p = path.decode("utf-8", "replace") if real_isinstance(path, bytes) else path
                    if p.startswith("/proc/") and (p.endswith("/mem") or "/mem/" in p):
                        blocked = "opening " + p
            elif event.startswith(("gc.get_", "ctypes.")) or event in (
                "sys._getframe", "sys._current_frames", "sys._current_exceptions",
                "sys.settrace", "sys.setprofile", "code.__new__",
            ):
                if untrusted(requester()):
                    blocked = event
            elif event == "object.__getattr__" and args[1] in frame_attrs:
                if untrusted(requester()):
                    blocked = "access to ." + args[1]
            elif event == "object.__getattr__" and args[1] == "__code__":
                code = args[0].__code__ if real_type(args[0]) is real_type(run_child) else None
                if code is not None and code.co_filename in (TESTS_FN, HARNESS_FN) and untrusted(requester()):
                    blocked = "reading the code of a test"
            elif event == "object.__setattr__" and args[1] == "__code__":
                target = args[0]
                if real_type(target) is real_type(run_child) and untrusted(requester()):
                    blocked = "replacing a function's code"
            elif event == "compile":
                fn = args[1]
                if real_isinstance(fn, str) and (fn.startswith("/") or fn in (HARNESS_FN, TESTS_FN)):
                    if untrusted(requester()):
                        blocked = "compiling code under the name " + fn
            if blocked is not None:
                tamper("blocked: " + blocked)
        finally:
            busy.discard(me)
        if blocked is not None:
            raise RuntimeError("unitcoder sandbox: %s is not allowed" % blocked)

    _sys.addaudithook(hook)
