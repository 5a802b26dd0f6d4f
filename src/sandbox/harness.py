# unitcoder sandbox harness: runs INSIDE the contained child, after the fork server has forked it.
#
# Trust model: the candidate program and the tests run in this process, so nothing here is trusted
# to *decide* a verdict. The harness only streams events (test started / ended with status and
# assertion count, tampering seen, done) to a pipe that the trusted fork server reads; the Rust side
# judges them. Every line carries a per-run nonce. Everything the harness relies on is captured
# before candidate code runs, an audit hook (which cannot be removed) blocks the introspection
# routes to harness state (frames, gc, ctypes, /proc/*/mem), and identity snapshots of unittest
# and builtins detect monkeypatching. See docs/sandbox.md for the residual risks.

import ast as _ast
import binascii as _binascii
import builtins as _builtins
import json as _json
import marshal as _marshal_data
import os as _os
from _thread import get_ident as _thread_ident
import sys as _sys
import unittest as _unittest

PROGRAM_FN = "<candidate>"
TESTS_FN = "<tests>"
HARNESS_FN = "<unitcoder-harness>"
_MARK = "__unitcoder_mark_%s__"


class PrepareError(Exception):
    """The program or the tests could not be compiled; carries (where, exception type, message)."""


# ---------------------------------------------------------------- static preparation (trusted side)


def _is_main_guard(node):
    t = node.test if isinstance(node, _ast.If) else None
    return (
        isinstance(t, _ast.Compare)
        and isinstance(t.left, _ast.Name)
        and t.left.id == "__name__"
        and len(t.comparators) == 1
        and isinstance(t.comparators[0], _ast.Constant)
        and t.comparators[0].value == "__main__"
    )


def _callee_name(call):
    f = call.func
    if isinstance(f, _ast.Name):
        return f.id
    if isinstance(f, _ast.Attribute):
        return f.attr
    return None


_CMP_OPS = {_ast.Eq: "eq", _ast.NotEq: "ne", _ast.In: "in", _ast.NotIn: "notin"}


def _marked(name, where):
    return _ast.copy_location(_ast.Constant(value=_MARK % name), where)


def _rewrite(node):
    """One node's instrumented form: a new node, or `node` changed in place. Every `assert`
    statement and every call to an `assert*`/`fail*` function counts as an executed assertion,
    and every ==, !=, in, not in goes through the always-equal probe. The helpers are referenced
    as code constants (patched in after compile), never by a global name, so the candidate cannot
    rebind them; a marker call is never itself rewritten (its callee has no name)."""
    kind = type(node)
    if kind is _ast.Assert:
        # Assertions that cannot fail (tautology.py) get their own marker: under strict rules
        # they are not counted; otherwise both markers count alike.
        marker = "taut" if _cannot_fail_assert(node) else "count"
        node.test = _ast.copy_location(_ast.Call(func=_marked(marker, node), args=[node.test], keywords=[]), node.test)
    elif kind is _ast.Compare:
        if len(node.ops) == 1 and type(node.ops[0]) in _CMP_OPS:
            op = _ast.copy_location(_ast.Constant(value=_CMP_OPS[type(node.ops[0])]), node)
            args = [node.left, node.comparators[0], op]
            return _ast.copy_location(_ast.Call(func=_marked("cmp", node), args=args, keywords=[]), node)
    elif kind is _ast.Call:
        name = _callee_name(node)
        if name == "_uc_unblob" and type(node.func) is _ast.Name:
            # Test data shipped as a marshal blob (evalplus-style expected outputs) is decoded by
            # the harness's own copies of marshal and binascii, which the program cannot patch.
            node.func = _marked("unblob", node.func)
        elif name and (name.startswith("assert") or name.startswith("fail")):
            taut = _ast.copy_location(_ast.Constant(value=_cannot_fail_call(node, name)), node.func)
            args = [node.func, _ast.copy_location(_ast.Constant(value=name), node.func), taut]
            node.func = _ast.copy_location(_ast.Call(func=_marked("call", node), args=args, keywords=[]), node.func)
    return node


def _instrument(tree):
    """Rewrites every node of `tree` in place (pre-order, iterative: ~3x cheaper than an
    ast.NodeTransformer, and every new node carries a location, so no fix_missing_locations)."""
    AST, stack = _ast.AST, [tree]
    const, containers = _ast.Constant, (_ast.List, _ast.Tuple, _ast.Set)
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is const:
            continue
        # Literal data (evalplus-style tests embed thousands of expected outputs) has nothing to
        # rewrite: skipping containers of constants cut preparing a HumanEval+ test from ~20 ms.
        if kind in containers and all(type(e) is const for e in node.elts):
            continue
        for field in node._fields:
            value = getattr(node, field, None)
            if type(value) is list:
                for i, item in enumerate(value):
                    if isinstance(item, AST):
                        new = value[i] = _rewrite(item)
                        stack.append(new)
            elif isinstance(value, AST):
                new = _rewrite(value)
                if new is not value:
                    setattr(node, field, new)
                stack.append(new)
    return tree


def _static_tests(tree):
    """Names of the tests the source defines, found without running it: the trusted side's lower
    bound on what the child must report."""
    names, defined_funcs = [], set()
    module_test = False
    for node in tree.body:
        if isinstance(node, (_ast.FunctionDef, _ast.AsyncFunctionDef)):
            defined_funcs.add(node.name)
    for node in tree.body:
        if isinstance(node, _ast.ClassDef):
            for item in node.body:
                if isinstance(item, (_ast.FunctionDef, _ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    names.append("%s.%s" % (node.name, item.name))
        elif isinstance(node, _ast.FunctionDef) and node.name.startswith("test"):
            names.append(node.name)
        elif isinstance(node, _ast.Assert):
            module_test = True
        elif isinstance(node, _ast.Expr) and isinstance(node.value, _ast.Call):
            callee = _callee_name(node.value) or ""
            if callee in defined_funcs or callee.startswith("assert"):
                module_test = True
    if module_test:
        names.insert(0, "<module>")
    return names


def _patch_consts(code, table):
    consts = []
    for c in code.co_consts:
        if type(c) is str and c in table:
            consts.append(table[c])
        elif isinstance(c, type(code)):
            consts.append(_patch_consts(c, table))
        else:
            consts.append(c)
    return code.replace(co_consts=tuple(consts))


# Tests may open with shared helpers that many jobs repeat word for word (the eval harness's
# differential-testing code, ~200 lines): text before this line is prepared once per server and
# reused. It must define no tests; its code runs before the rest, in the same namespace.
SHARED_END = "# -- unitcoder: end of shared test helpers --\n"


class _Prepared:
    """`_prepare_tests(text)` per tests text, least recently used out first, bounded by the text
    held (a worker meets the tests of every task of a benchmark, BigCodeBench: 1,140, in whatever
    order the samples come, e.g. sample 1 of every task, then sample 2: a cache of 64 entries
    missed every time then). Dicts keep insertion order; a hit moves its entry to the end."""

    def __init__(self, budget):
        self.entries, self.budget, self.used = {}, budget, 0

    def get(self, text):
        prepared = self.entries.pop(text, None)
        if prepared is None:
            prepared = _prepare_tests(text)
            self.used += len(text)
            while self.entries and self.used > self.budget:
                oldest = next(iter(self.entries))
                del self.entries[oldest]
                self.used -= len(oldest)
        self.entries[text] = prepared
        return prepared


def _prepare_tests(tests, pad=0):
    """(instrumented code, expected test names) of a tests text; `pad` blank lines in front keep
    line numbers those of the whole tests text."""
    try:
        tree = _ast.parse("\n" * pad + tests if pad else tests, TESTS_FN)
    except SyntaxError as e:
        raise PrepareError("tests", "SyntaxError", "tests line %s: %s" % (e.lineno, e.msg))
    except (ValueError, TypeError) as e:
        raise PrepareError("tests", type(e).__name__, str(e)[:300])
    # The harness runs the tests itself: drop `if __name__ == "__main__": unittest.main()` blocks.
    tree.body = [n for n in tree.body if not _is_main_guard(n)]
    expected = _static_tests(tree)
    tree = _instrument(tree)
    # Compiled here rather than in the child: the child then only swaps the marker constants for
    # its helpers, and does not pay copy-on-write faults for the compiler's allocations.
    try:
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the markers are string constants "called" as functions
            code = compile(tree, TESTS_FN, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, TypeError) as e:
        line = " line %s" % e.lineno if isinstance(e, SyntaxError) and e.lineno else ""
        raise PrepareError("tests", type(e).__name__, "tests%s: %s" % (line, getattr(e, "msg", None) or str(e)[:300]))
    return code, expected


_shared_cache = _Prepared(2 << 20)
_tests_cache = _Prepared(8 << 20)


def prepare(program, tests):
    """Compiles the program and the instrumented tests. Returns (program_code, tests_codes,
    expected), the tests as a tuple of code objects run in order, or raises PrepareError. Runs in
    the trusted server before the fork."""
    try:
        program_code = compile(program, PROGRAM_FN, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise PrepareError("program", "SyntaxError", "program line %s: %s" % (e.lineno, e.msg))
    except (ValueError, TypeError) as e:
        raise PrepareError("program", type(e).__name__, str(e)[:300])
    head, sep, rest = tests.partition(SHARED_END)
    if not sep:
        # Samples of one task share their tests (pass@k, the fix loop's samples): prepared once.
        code, expected = _tests_cache.get(tests)
        return program_code, (code,), list(expected)
    shared_code, shared_expected = _shared_cache.get(head)
    code, expected = _prepare_tests(rest, head.count("\n") + 1)
    return program_code, (shared_code, code), shared_expected + expected


def snapshot():
    """Identity snapshots of the machinery the candidate must not patch: name -> (object, its
    dict's keys, the values, and for classes the only keys allowed; modules may gain names). Taken in the trusted server
    (pristine, before any fork), so the child only compares: copying these dictionaries in every
    child cost it ~190 copy-on-write page faults. `_` and `__doc__` may change (the REPL and
    docstring tools write them)."""
    snap = {}
    for name, obj, closed in (("TestCase", _unittest.TestCase, True), ("TestResult", _unittest.TestResult, True),
                              ("TestLoader", _unittest.TestLoader, True), ("TestSuite", _unittest.TestSuite, True),
                              ("unittest", _unittest, False), ("unittest.case", _sys.modules["unittest.case"], False),
                              ("builtins", _builtins, False)):
        every = list(obj.__dict__.items())
        items = [(k, v) for k, v in every if k not in ("_", "__doc__")]
        keys = tuple(k for k, _v in items)
        allowed = frozenset(keys) | {"_", "__doc__"} if closed else None
        # For the quick check (run_child's check_snapshot): every value in dict order, and which
        # positions may change.
        quick = (tuple(v for _k, v in every), tuple(k in ("_", "__doc__") for k, _v in every))
        snap[name] = (obj, keys, tuple(v for _k, v in items), allowed, quick)
    return snap


# ---------------------------------------------------------------- in-child runtime


class _Sentinel(object):
    """What the always-equal probe compares against: equal to nothing but itself. Made once in the
    server (a class made in every child cost it a type object and its caches)."""

    __slots__ = ()


_SENTINEL = _Sentinel()


class _Guarded(object):
    """A context-manager assertion (`with self.assertRaises(E):`) under strict rules: its failure,
    raised on leaving the block, is noted even when the test then catches it. Made once in the
    server, like _Sentinel."""

    __slots__ = ("inner", "noted")

    def __init__(self, inner, noted):
        self.inner, self.noted = inner, noted

    def __enter__(self):
        return self.inner.__enter__()

    def __exit__(self, *exc):
        try:
            return self.inner.__exit__(*exc)
        except BaseException as e:
            self.noted(e)
            raise


# Assertions that, called without the code to run, return a context manager that checks on exit.
_CONTEXT_ASSERTS = frozenset(("assertRaises", "assertRaisesRegex", "assertRaisesRegexp", "assertWarns",
                              "assertWarnsRegex", "assertLogs", "assertNoLogs"))


def run_child(program_code, tests_marked, tests_source, program_source, nonce, evfd, workdir, baseline,
              strict=False, coverage=None):
    """Runs the program, then the tests, streaming events to `evfd`. Never returns. `strict`:
    Job::strict_assertions (see strict_counts). With `coverage` (a function's name), traces that
    function and reports its counts before `done`."""
    write, exit_, getframe = _os.write, _os._exit, _sys._getframe
    unmarshal, a2b = _marshal_data.loads, _binascii.a2b_base64
    real_type, real_isinstance, real_len, real_str, real_bool = type, isinstance, len, str, bool
    quote = _json.encoder.encode_basestring_ascii  # C; json.dumps would look up builtins at each call
    int_type, int_repr = int, int.__repr__
    AssertionErr, BaseExc, SkipTest = AssertionError, BaseException, _unittest.SkipTest
    TestCase = _unittest.TestCase
    mro_of = type.__dict__["__mro__"].__get__
    prefix = nonce.encode() + b" "
    stdout, stderr = _sys.stdout, _sys.stderr
    tests_lines = tests_source.splitlines()
    program_lines = program_source.splitlines()
    state = {"count": 0, "tampered": False, "taut": 0, "caught": 0, "caught_msg": None}
    code_type = real_type(program_code)

    def emit(**event):
        # Values are str, int or None. Encoded here with the harness's own references, so that a
        # program that replaced builtins (which json.dumps looks up) still has that reported.
        try:
            parts = []
            for key, value in event.items():
                kind = real_type(value)
                text = "null" if value is None else int_repr(value) if kind is int_type else quote(value)
                parts.append(quote(key) + ":" + text)
            write(evfd, prefix + ("{" + ",".join(parts) + "}").encode() + b"\n")
        except BaseExc:
            exit_(70)

    def tamper(what):
        if not state["tampered"]:
            state["tampered"] = True
        emit(k="tamper", m=what[:300])


    all_, map_, zip_, missing = all, map, zip, object()
    operator_ = __import__("operator")
    is_, or_, repeat_ = operator_.is_, operator_.or_, __import__("itertools").repeat

    def check_snapshot(when):
        # Identity only (never ==, which a replacement object could answer), in C: map/all over
        # the snapshot. Quick: the values in dict order, position by position, which reads no key
        # (each key read is a reference-count write to an interned string somewhere in the heap:
        # ~40 copy-on-write faults per job). Same values at the same positions and no entry gone
        # (closed classes: none added) means nothing was replaced, removed or added: a key can
        # only change by leaving and coming back at the end. Otherwise the exact check by key,
        # which also lets `_`/`__doc__` differ and entries move, and finds what changed.
        for name, (obj, keys, values, allowed, (every, free)) in baseline.items():
            current = obj.__dict__
            n = real_len(current)
            if (n == real_len(every) or (allowed is None and n > real_len(every))) and all_(
                map_(or_, free, map_(is_, current.values(), every))
            ):
                continue
            same = all_(map_(is_, map_(current.get, keys, repeat_(missing)), values))
            if same and (allowed is None or all_(map_(allowed.__contains__, current))):
                continue
            what = "%s was changed" % name  # whatever the search below finds, this is tampering
            for k, v in zip_(keys, values):
                if current.get(k, missing) is not v:
                    what = "%s.%s was replaced" % (name, k)
                    break
            else:
                for k in current if allowed is not None else ():
                    if k not in allowed:
                        what = "%s.%s was added" % (name, k)
                        break
            tamper("%s (%s)" % (what, when))
            return False
        if _sys.modules.get("unittest") is not _unittest:
            tamper("sys.modules['unittest'] was replaced (%s)" % when)
            return False
        return True

    # -- the always-equal probe
    SENTINEL = _SENTINEL
    simple = (int, float, complex, str, bytes, bool, real_type(None), range, real_type, real_type(len))
    containers = (list, tuple, set, frozenset)

    # Where the candidate can write, and so place a module to import: code from there is its own
    # (the private /tmp and /dev/shm lie outside the job directory).
    writable = (workdir.rstrip("/") + "/", "/tmp/", "/dev/shm/")
    type_dict = type.__dict__["__dict__"].__get__
    func_code = real_type(run_child).__dict__["__code__"].__get__
    slot_type, func_type = real_type(object.__eq__), real_type(run_child)

    def library_method(klass, name):
        # Where `klass` gets `name` from, read through the real MRO and class dicts (a metaclass
        # cannot answer for it): C slots, or Python functions from files outside the job directory
        # (the candidate cannot compile code under such a name, see the audit hook), are library code.
        for k in mro_of(klass):
            impl = type_dict(k).get(name)
            if impl is not None:
                kind = real_type(impl)
                if kind is slot_type:
                    return True
                if kind is func_type:
                    fn = func_code(impl).co_filename
                    return fn.startswith("/") and not fn.startswith(writable)
                return False
        return False

    def truth(v):
        if v is True or v is False:
            return v
        try:
            # An empty elementwise result (numpy's == on an empty array, BigCodeBench/89 and /241)
            # says nothing; it is falsy, so it cannot make an equality assertion pass either.
            if real_len(v) == 0:
                return None
        except BaseExc:
            pass
        try:
            return real_bool(v)
        except BaseExc:
            return None  # elementwise results (arrays, frames) have no single truth value

    def suspicious(x, depth=0):
        t = real_type(x)
        if t in simple or depth > 4:
            return False
        if t in containers:
            for i, e in enumerate(x):
                if i > 2000 or suspicious(e, depth + 1):
                    return i <= 2000
            return False
        if t is dict:
            for i, e in enumerate(x.values()):
                if i > 2000 or suspicious(e, depth + 1):
                    return i <= 2000
            return False
        library = library_method(t, "__eq__") and library_method(t, "__ne__")
        try:
            eq = x == SENTINEL
            ne = x != SENTINEL
        except BaseExc:
            return False
        if library:
            # Library comparisons are honest: only one that calls a fresh object equal is
            # always-equal (unittest.mock.ANY); elementwise results (numpy, pandas, geopandas) pass.
            return truth(eq) is True or truth(ne) is False
        # The candidate's own comparison: anything but a plain False for == is suspect (a result
        # object could answer differently when the assertion asks again).
        return eq is not False or ne is False

    def probe(*values):
        for v in values:
            if suspicious(v):
                tamper("an object whose == is always true reached an assertion")
                raise AssertionErr("object compares equal to everything")

    def m_count(value):
        state["count"] += 1
        return value

    def m_cmp(a, b, op):
        if op == "eq":
            r = a == b
        elif op == "ne":
            r = a != b
        elif op == "in":
            r = a in b
            probe(a)
            return r
        else:
            r = a not in b
            probe(a)
            return r
        if not (r is False):
            probe(a, b)
        return r

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

    originals = {k: v for k, v in TestCase.__dict__.items() if k.startswith(("assert", "fail"))}
    MOCK_ASSERTS = ("assert_called", "assert_any_call", "assert_has_calls", "assert_not_called", "assert_awaited",
                    "assert_any_await", "assert_has_awaits", "assert_not_awaited")

    def m_call(func, name, taut=False):
        state["taut" if strict and taut else "count"] += 1
        owner = getattr(func, "__self__", None)
        if owner is not None and name in originals and TestCase in mro_of(real_type(owner)):
            for klass in mro_of(real_type(owner)):
                found = klass.__dict__.get(name)
                if found is not None:
                    if (klass is TestCase and found is not originals[name]) or (
                        klass is not TestCase and not from_tests(found)
                    ):
                        tamper("the assertion method %s was replaced" % name)
                    break

        recorded = None
        if name.startswith(MOCK_ASSERTS) and owner is not None:
            # A mock's assert_called_with(...) takes *expected* values (where mock.ANY is fair);
            # what the code under test passed is in the mock's record: probe that instead.
            try:
                calls = owner.call_args_list
                if real_isinstance(calls, list):
                    recorded = [v for c in calls[:2000] for v in (*c[-2], *c[-1].values())]
            except BaseExc:
                recorded = None

        def checked(*args, **kwargs):
            if recorded is not None:
                probe(*recorded)
            else:
                probe(*args)
            if not strict:
                return func(*args, **kwargs)
            try:
                result = func(*args, **kwargs)
            except BaseExc as e:
                note_failure(e, tests_line(getframe(1)))
                raise
            if name in _CONTEXT_ASSERTS and result is not None and hasattr(result, "__exit__"):
                where = tests_line(getframe(1))
                return _Guarded(result, lambda e: note_failure(e, where))
            return result

        return checked

    def m_unblob(text):
        return unmarshal(a2b(text))

    # -- strict rules (Job::strict_assertions): failed assertions are noted where they fail, so a
    # test that catches its own AssertionError still fails; assertions that cannot fail
    # (tautology.py) are counted apart and do not count as assertions.
    def tests_line(frame):
        if frame is not None and frame.f_code.co_filename == TESTS_FN and 0 < frame.f_lineno <= real_len(tests_lines):
            return " (tests line %d: %s)" % (frame.f_lineno, tests_lines[frame.f_lineno - 1].strip()[:200])
        return ""

    def note_failure(exc, where):
        if exc is None or AssertionErr in mro_of(real_type(exc)):
            state["caught"] += 1
            if state["caught_msg"] is None:
                state["caught_msg"] = (describe(exc) if exc is not None else "AssertionError") + where

    def m_check(value):
        state["count"] += 1
        ok = real_bool(value)
        if not ok:
            note_failure(None, tests_line(getframe(1)))
        return ok

    def m_check_taut(value):
        state["taut"] += 1
        ok = real_bool(value)
        if not ok:
            note_failure(None, tests_line(getframe(1)))
        return ok

    def strict_counts():
        # Extra fields of a test's end event: z assertions that cannot fail, c failed assertions
        # (caught or not), cm the first one's message. None outside strict rules: the events of
        # benchmark jobs stay as they were.
        if not strict:
            return {}
        return {"z": state["taut"], "c": state["caught"], "cm": state["caught_msg"]}

    def reset_counts():
        state["count"] = state["taut"] = state["caught"] = 0
        state["caught_msg"] = None

    assert_markers = {_MARK % "count": m_check, _MARK % "taut": m_check_taut} if strict else \
        {_MARK % "count": m_count, _MARK % "taut": m_count}
    table = {_MARK % "cmp": m_cmp, _MARK % "call": m_call, _MARK % "unblob": m_unblob}
    table.update(assert_markers)
    tests_codes = [_patch_consts(c, table) for c in tests_marked]

    # -- messages for the fix loop: exception, and the tests/program line it came from
    def describe(exc):
        tb = exc.__traceback__
        where = ""
        while tb is not None:
            fn = tb.tb_frame.f_code.co_filename
            if fn == TESTS_FN and 0 < tb.tb_lineno <= real_len(tests_lines):
                where = " (tests line %d: %s)" % (tb.tb_lineno, tests_lines[tb.tb_lineno - 1].strip())
            elif fn == PROGRAM_FN and 0 < tb.tb_lineno <= real_len(program_lines):
                where = " (program line %d: %s)" % (tb.tb_lineno, program_lines[tb.tb_lineno - 1].strip())
            tb = tb.tb_next
        try:
            text = real_str(exc)
        except BaseExc:
            text = "<unprintable>"
        msg = "%s: %s" % (real_type(exc).__name__, text) if text else real_type(exc).__name__
        if real_len(msg) > 400:
            msg = msg[:400] + "..."
        return msg + where[:300]

    def kind_of(exc):
        mro = mro_of(real_type(exc))
        if SkipTest in mro:
            return "skip"
        if AssertionErr in mro:
            return "fail"
        return "error"

    def install_audit_hook():
        frame_attrs = {"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"}

        def transparent(fn):
            # Library code that hands frames or raw memory to its caller: judge the caller instead.
            return fn.endswith("/inspect.py") or "/ctypes/" in fn
        busy = set()
        ident = _thread_ident

        def untrusted(fn):
            if fn == HARNESS_FN or fn.startswith("<frozen "):
                return False
            return not fn.startswith("/") or fn.startswith(writable)

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

    # -- run the program, then the tests, in one fresh __main__ module
    import types as _types

    main = _types.ModuleType("__main__")
    main.__dict__["__builtins__"] = _builtins
    main.__dict__["__file__"] = _os.path.join(workdir, "program.py")
    _sys.modules["__main__"] = main
    ns = main.__dict__
    install_audit_hook()

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

    def run_case_class(cls):
        methods = []
        for klass in mro_of(cls):
            for k, v in klass.__dict__.items():
                if k.startswith("test") and from_tests(v) and k not in methods:
                    methods.append(k)
        methods.sort()
        if not methods:
            return True
        class_skip = getattr(cls, "__unittest_skip__", False)
        if not class_skip:
            try:
                cls.setUpClass()
            except BaseExc as e:
                for m in methods:
                    emit(k="start", t="%s.%s" % (cls.__name__, m))
                    emit(k="end", t="%s.%s" % (cls.__name__, m), s=kind_of(e), n=0,
                         m="setUpClass: " + describe(e), r=real_type(e).__name__)
                return True
        for m in methods:
            def call(m=m):
                if class_skip or getattr(getattr(cls, m), "__unittest_skip__", False):
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

            if not run_one("%s.%s" % (cls.__name__, m), call):
                return False
        if not class_skip:
            try:
                cls.tearDownClass()
            except BaseExc:
                pass
        return True

    items = list(ns.items())
    for name, obj in items:
        if real_isinstance(obj, real_type) and TestCase in mro_of(obj) and obj is not TestCase:
            if obj.__module__ == "__main__":
                if not run_case_class(obj):
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
