# unitcoder sandbox harness: runs INSIDE the contained child, after the fork server has forked it.
#
# Trust model: the candidate program and the tests run in this process, so nothing here is trusted
# to *decide* a verdict. The harness only streams events (test started / ended with status and
# assertion count, tampering seen, done) to a pipe that the trusted fork server reads; the Rust side
# judges them. Every line carries a per-run nonce. Everything the harness relies on is captured
# before candidate code runs, an audit hook (which cannot be removed) blocks the introspection
# routes to harness state (frames, gc, ctypes, /proc/*/mem), and identity snapshots of unittest
# and builtins detect monkeypatching. See docs/sandbox.md for the residual risks.
#
# This file opens the module (the imports every later file uses) and holds run_child and its test
# runner. Its parts, each built by run_child before the program runs: events.py (the event writer,
# messages), probe.py (the snapshot check, the always-equal probe), markers.py (what the
# instrumented tests call), audit.py (the audit hook). The trusted side's preparation of the tests
# is prepare.py.

import ast as _ast
import binascii as _binascii
import builtins as _builtins
import errno as _errno
import json as _json
import marshal as _marshal_data
import os as _os
import stat as _stat
from _thread import get_ident as _thread_ident
import sys as _sys
import unittest as _unittest

PROGRAM_FN = "<candidate>"
TESTS_FN = "<tests>"
HARNESS_FN = "<unitcoder-harness>"
_MARK = "__unitcoder_mark_%s__"


def _from_tests_check(code_type):
    """from_tests(fn): whether `fn` (or what it wraps) was defined by the tests."""
    real_type = type

    def from_tests(fn):
        # Decorators such as unittest.skip wrap the test function; look through functools.wraps.
        for _ in range(8):
            code = getattr(fn, "__code__", None)
            if real_type(code) is code_type and code.co_filename == TESTS_FN:
                return True
            fn = getattr(fn, "__wrapped__", None)
            if fn is None:
                return False
        return False

    return from_tests


def run_child(program_code, tests_marked, secrets, program_source, evfd, workdir, baseline,
              strict=False, coverage=None):
    """Runs the program, then the tests, streaming events to `evfd`. Never returns. `secrets`: a
    list of the run's nonce and the tests' source, emptied here and kept only in the closures
    built from them, not in this frame's locals (see _Child._child). `strict`:
    Job::strict_assertions (see strict_counts). With `coverage` (a function's name), traces that
    function and reports its counts before `done`."""
    nonce, tests_source = secrets
    secrets.clear()
    exit_ = _os._exit
    real_type, real_isinstance, BaseExc, TestCase = type, isinstance, BaseException, _unittest.TestCase
    mro_of = type.__dict__["__mro__"].__get__
    stdout, stderr = _sys.stdout, _sys.stderr
    state = {"count": 0, "tampered": False, "taut": 0, "caught": 0, "caught_msg": None}
    emit, tamper = _event_writer(nonce, evfd, state)
    check_snapshot = _snapshot_checker(baseline, tamper)
    # Where the candidate can write, and so place a module to import: code from there is its own
    # (the private /tmp and /dev/shm lie outside the job directory).
    job = workdir.rstrip("/") + "/"
    writable = (job, "/tmp/", "/dev/shm/")
    # ...except the interpreter's own directories when they live under /tmp (a venv made there):
    # grafted read-only into the private /tmp, owned by another uid, they hold library code.
    library = tuple(d for d in (x.rstrip("/") + "/" for x in _Namespaces._interpreter_dirs())
                    if d.startswith("/tmp/") and not d.startswith(job) and not job.startswith(d))

    def own(fn):
        return fn.startswith(writable) and not fn.startswith(library)
    probe = _equality_probe(own, tamper)
    describe, kind_of, tests_line = _describer(tests_source, program_source, own)
    del nonce, tests_source
    from_tests = _from_tests_check(real_type(program_code))
    table, strict_counts, reset_counts = _markers(state, strict, probe, tamper, from_tests, describe, tests_line)
    tests_codes = [_patch_consts(c, table) for c in tests_marked]
    run_one, plan_case_class, run_case_class = _test_runner(emit, state, check_snapshot, describe, kind_of,
                                                            from_tests, reset_counts, strict_counts, tamper)

    # -- run the program, then the tests, in one fresh __main__ module
    import types as _types

    main = _types.ModuleType("__main__")
    main.__dict__["__builtins__"] = _builtins
    main.__dict__["__file__"] = _os.path.join(workdir, "program.py")
    _sys.modules["__main__"] = main
    ns = main.__dict__
    _install_audit_hook(own, tamper)

    try:
        exec(program_code, ns)
    except BaseExc as e:
        emit(k="load", w="program", r=real_type(e).__name__, m=describe(e))
        exit_(0)
    if not check_snapshot("while loading the program"):
        exit_(0)
    traced = _coverage_start(program_code, program_source, coverage) if coverage else None

    reset_counts()
    emit(k="start", t="<module>")
    try:
        for tests_code in tests_codes:
            exec(tests_code, ns)
        status, message, reason = "pass", None, None
    except BaseExc as e:
        status, message, reason = kind_of(e), describe(e), real_type(e).__name__
    module_count, module_extra = state["count"], strict_counts()
    if not check_snapshot("while loading the tests"):
        exit_(0)
    emit(k="end", t="<module>", s=status, n=module_count, m=message, r=reason, **module_extra)
    if status not in ("pass", "skip"):
        emit(k="done")
        exit_(0)

    items = list(ns.items())
    # Every class's plan is made before any test runs: the program, called by one test, could
    # otherwise rename, skip or replace the tests of the classes after it.
    plans = [plan_case_class(obj) for name, obj in items
             if real_isinstance(obj, real_type) and TestCase in mro_of(obj) and obj is not TestCase
             and obj.__module__ == "__main__"]
    for plan in plans:
        if plan is not None and not run_case_class(plan):
            exit_(0)
    for name, obj in items:
        if name.startswith("test") and from_tests(obj) and real_type(obj) is real_type(run_child):
            code = obj.__code__
            if code.co_argcount - len(obj.__defaults__ or ()) > 0:
                emit(k="start", t=name)
                emit(k="end", t=name, s="error", n=0, m="pytest fixtures are not supported", r="TypeError")
                continue
            if not run_one(name, obj):
                exit_(0)

    check_snapshot("after the tests")
    if traced is not None:
        emit(k="cov", **_coverage_counts(traced))
    emit(k="done")
    for stream in (stdout, stderr):
        try:
            stream.flush()
        except BaseExc:
            pass
    exit_(0)


def _test_runner(emit, state, check_snapshot, describe, kind_of, from_tests, reset_counts, strict_counts, tamper):
    """(run_one, plan_case_class, run_case_class): run_one(name, call) runs one test between its
    start and end events and says whether the machinery is intact after it; plan_case_class(cls)
    fixes a TestCase class's tests, their skip marks and its methods as the tests defined them
    (None: no tests); run_case_class(plan) runs them (False: tampering seen)."""
    real_type, BaseExc, SkipTest, TestCase = type, BaseException, _unittest.SkipTest, _unittest.TestCase
    mro_of = type.__dict__["__mro__"].__get__
    type_dict = type.__dict__["__dict__"].__get__
    missing = object()
    # What a test class may not change once its tests are planned: the test methods and the names
    # unittest calls or looks up (setUp, tearDown, the assertions, __init__, skip marks). unittest's
    # own TestCase is watched by the snapshot check; these are the classes between it and the
    # test's class, which the tests defined and the program could reach through its globals.
    # Data that tests set in setUpClass (maxDiff, longMessage) is not watched; every method is,
    # private ones too (assertEqual calls self._getAssertEqualityFunc), and failureException.
    watched = [k for k, v in TestCase.__dict__.items()
               if callable(v) or real_type(v) in (classmethod, staticmethod)]
    watched += ["__new__", "__getattribute__", "__getattr__", "__call__", "__unittest_skip__",
                "__unittest_skip_why__"]

    def run_one(name, call):
        reset_counts()
        emit(k="start", t=name)
        try:
            call()
            status, message, reason = "pass", None, None
        except BaseExc as e:
            status, message, reason = kind_of(e), describe(e), real_type(e).__name__
        count, extra = state["count"], strict_counts()
        ok = check_snapshot("during " + name)
        emit(k="end", t=name, s=status, n=count, m=message, r=reason, **extra)
        return ok

    def plan_case_class(cls):
        mro = mro_of(cls)
        methods = []
        for klass in mro:
            for k, v in type_dict(klass).items():
                if k.startswith("test") and from_tests(v) and k not in methods:
                    methods.append(k)
        methods.sort()
        if not methods:
            return None
        guarded = []
        for klass in mro:
            if klass is TestCase or klass is object:
                continue
            d = type_dict(klass)
            names = [k for k in d if k.startswith("test")] + watched
            guarded.append((klass, [(k, d.get(k, missing)) for k in names]))
        class_skip = getattr(cls, "__unittest_skip__", False)
        skips = [class_skip or getattr(getattr(cls, m), "__unittest_skip__", False) for m in methods]
        return cls, real_type(cls), mro, methods, skips, class_skip, guarded

    def intact(plan, when):
        cls, meta, mro, _methods, _skips, _class_skip, guarded = plan
        if real_type(cls) is not meta or mro_of(cls) != mro:
            tamper("the test class %s was changed (%s)" % (cls.__name__, when))
            return False
        for klass, entries in guarded:
            d = type_dict(klass)
            for k, v in entries:
                if d.get(k, missing) is not v:
                    tamper("%s.%s was %s (%s)" % (klass.__name__, k, "added" if v is missing else "replaced", when))
                    return False
        return True

    def run_case_class(plan):
        cls, _meta, _mro, methods, skips, class_skip, _guarded = plan
        if not intact(plan, "before its tests"):
            return False
        if not class_skip:
            try:
                cls.setUpClass()
            except BaseExc as e:
                for m in methods:
                    emit(k="start", t="%s.%s" % (cls.__name__, m))
                    emit(k="end", t="%s.%s" % (cls.__name__, m), s=kind_of(e), n=0,
                         m="setUpClass: " + describe(e), r=real_type(e).__name__)
                return True
        for m, skip in zip(methods, skips):
            name = "%s.%s" % (cls.__name__, m)
            if not intact(plan, "before " + name):
                return False

            def call(m=m, skip=skip):
                if skip:
                    raise SkipTest("skipped by decorator")
                case = cls(m)
                case.setUp()
                try:
                    getattr(case, m)()
                finally:
                    try:
                        case.tearDown()
                    finally:
                        case.doCleanups()

            if not run_one(name, call):
                return False
        if not class_skip:
            try:
                cls.tearDownClass()
            except BaseExc:
                pass
        return intact(plan, "after its tests")

    return run_one, plan_case_class, run_case_class
