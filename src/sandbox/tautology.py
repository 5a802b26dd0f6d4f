# unitcoder sandbox: assertions that cannot fail (appended to harness.py; one module).
#
# Why: model-written suites "verify" anything with assertions such as `assert f(x) == f(x)` or
# `self.assertTrue(True)`. The instrumentation (_rewrite in prepare.py) asks `_cannot_fail_*` about
# each assertion before rewriting it, and marks those that cannot fail; under
# Job::strict_assertions they do not count as assertions (a suite with nothing else is `vacuous`).
# Purely syntactic, on the tests' AST before instrumentation: a tautology that needs running code
# to see (`expected = f(x); assert f(x) == expected`) is the mutation score's business, not this.

# Expression nodes that only combine literals: an expression made of these alone has a value fixed
# when the test is written (`True`, `1 == 1`, `[1, 2]`, `not None`).
_LITERAL_NODES = (_ast.Constant, _ast.Tuple, _ast.List, _ast.Set, _ast.Dict, _ast.UnaryOp, _ast.BinOp,
                  _ast.BoolOp, _ast.Compare, _ast.IfExp)

# Comparisons that hold whenever both sides are the same value.
_REFLEXIVE_OPS = (_ast.Eq, _ast.Is, _ast.LtE, _ast.GtE)


# A mock's own assertions check the mock (what the code under test did with it): their arguments are
# the expected values, constants as often as not (`mock_urandom.assert_called_once_with(16)`).
_MOCK_ASSERT_PREFIXES = ("assert_called", "assert_any_call", "assert_has_calls", "assert_not_called",
                         "assert_awaited", "assert_any_await", "assert_has_awaits", "assert_not_awaited")


def _constant_only(expr):
    for node in _ast.walk(expr):
        if isinstance(node, _ast.expr) and not isinstance(node, _LITERAL_NODES):
            return False
    return True


_PLAIN = (str, int, bool, type(None))


def _same_expr(a, b):
    """Whether `a` and `b` are the same expression wherever they stand: what comparing their
    `ast.dump` (fields, not positions) tells, walked in place (dumping both sides of every
    assertion was a fifth of preparing a HumanEval test, whose two sides mostly differ at once)."""
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is list:
        return len(a) == len(b) and all(_same_expr(x, y) for x, y in zip(a, b))
    if isinstance(a, _ast.AST):
        return all(_same_expr(getattr(a, f, None), getattr(b, f, None)) for f in a._fields)
    # ast.dump shows other values by repr: 0.0 and -0.0 differ there, two NaNs do not.
    return a == b if kind in _PLAIN else repr(a) == repr(b)


def _trivially_true(expr):
    """`expr` holds whatever the code under test does: constants only, `X == X` (also `is`, `<=`,
    `>=`), or an `or` with such a part, an `and` of only such parts."""
    if _constant_only(expr):
        return True
    kind = type(expr)
    if kind is _ast.Compare:
        return len(expr.ops) == 1 and type(expr.ops[0]) in _REFLEXIVE_OPS and _same_expr(expr.left, expr.comparators[0])
    if kind is _ast.BoolOp:
        parts = [_trivially_true(v) for v in expr.values]
        return any(parts) if type(expr.op) is _ast.Or else all(parts)
    return False


def _cannot_fail_assert(node):
    """An `assert` statement whose test is trivially true (or constant: `assert False` always
    fails, and is no check of the code under test either)."""
    return _trivially_true(node.test)


def _cannot_fail_call(call, name):
    """A call to an `assert*`/`fail*` function that checks nothing about the code under test:
    every argument a constant (`assertTrue(True)`, `assertEqual(2, 2)`; `self.fail("...")` always
    fails and checks nothing either), the same expression on both sides of an equality-like
    assertion (`assertEqual(f(1), f(1))`, `np.testing.assert_allclose(x, x)`), or a trivially true
    expression given to `assertTrue`. A call with no arguments (`mock.assert_called_once()`) or
    with `*args`/`**kwargs`, and a mock's own assertions, are taken as meaningful."""
    if name.startswith(_MOCK_ASSERT_PREFIXES):
        return False
    args = call.args
    values = list(args) + [k.value for k in call.keywords if k.arg != "msg"]
    if not values or any(type(a) is _ast.Starred for a in args) or any(k.arg is None for k in call.keywords):
        return False
    if all(_constant_only(v) for v in values):
        return True
    lname = name.lower()
    if "not" in lname:
        return False
    if len(args) >= 2 and ("equal" in lname or "close" in lname or lname in ("assertis", "assert_is")):
        return _same_expr(args[0], args[1])
    if lname in ("asserttrue", "assert_", "failunless"):
        return _trivially_true(args[0])
    return False
