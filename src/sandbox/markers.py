# unitcoder sandbox: the helpers the instrumented tests call (appended to harness.py; one module;
# in-child runtime). The tests' markers (prepare.py, _rewrite) are replaced by these functions:
# count an executed assertion, pass a comparison through the always-equal probe, check an
# assert*/fail* call's method and arguments, decode a test data blob; under strict rules
# (Job::strict_assertions) note a failed assertion where it fails, before any `except` can catch it.


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


def _markers(state, strict, probe, tamper, from_tests, describe, tests_line):
    """(table, strict_counts, reset_counts): the marker constants' replacements, the strict
    fields of a test's end event, and the reset of the per-test counts."""
    real_type, real_isinstance, real_bool = type, isinstance, bool
    AssertionErr, BaseExc, TestCase = AssertionError, BaseException, _unittest.TestCase
    mro_of = type.__dict__["__mro__"].__get__
    getframe = _sys._getframe
    unmarshal, a2b = _marshal_data.loads, _binascii.a2b_base64

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
            probe(a, b)
            return r
        else:
            r = a not in b
            probe(a)
            return r
        if not (r is False):
            probe(a, b)
        return r

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
    return table, strict_counts, reset_counts
