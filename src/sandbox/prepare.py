# unitcoder sandbox: preparing a job, on the trusted side (appended to harness.py; one module).
# The fork server compiles the program and the tests before any child exists: the tests' AST is
# instrumented (every assertion counted, every ==, !=, in, not in through the always-equal probe,
# markers for the helpers the child patches in), the tests it defines are listed from the AST (the
# lower bound on what the child must report), and identity snapshots of the test machinery are
# taken for the child to compare against. Nothing here runs candidate code.

class PrepareError(Exception):
    """The program or the tests could not be compiled; carries (where, exception type, message)."""


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
        raise PrepareError("tests", "SyntaxError", "tests%s: %s" % (_at_line(e), e.msg))
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


def _at_line(e):
    """` line N` of a SyntaxError, or nothing where it has none (a null byte in the source)."""
    return " line %d" % e.lineno if e.lineno else ""


def prepare(program, tests):
    """Compiles the program and the instrumented tests. Returns (program_code, tests_codes,
    expected), the tests as a tuple of code objects run in order, or raises PrepareError. Runs in
    the trusted server before the fork."""
    try:
        program_code = compile(program, PROGRAM_FN, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise PrepareError("program", "SyntaxError", "program%s: %s" % (_at_line(e), e.msg))
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
