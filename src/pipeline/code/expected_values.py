
# The expected-values probe's reader (see expected.rs), defined after the tests both in the sandboxed
# run (expected_probe.py follows it) and in the fresh interpreters that run it again under other hash
# seeds (which get the program, the tests and this, then call _uc_read). Builtins are reached through
# the module: a program's `from numpy import *` replaces `bool` and `any` in the shared namespace.
import ast as _uc_ast
import builtins as _uc_b
import unittest as _uc_unittest

_UC_NOT = object()


def _uc_plain(value, depth=0):
    # The value as plain literals (a NumPy scalar as its `.item()`), or _UC_NOT.
    if depth > 8:
        return _UC_NOT
    kind = _uc_b.type(value)
    if value is None or kind in (_uc_b.bool, _uc_b.int, _uc_b.str, _uc_b.bytes):
        return value
    if kind is _uc_b.float:
        finite = _uc_b.abs(value) != _uc_b.float("inf") and value == value
        return value if depth == 0 and finite else _UC_NOT
    if kind in (_uc_b.list, _uc_b.tuple):
        items = [_uc_plain(v, depth + 1) for v in value]
        return _UC_NOT if _uc_b.any(i is _UC_NOT for i in items) else kind(items)
    if kind is _uc_b.dict:
        pairs = [(_uc_plain(k, depth + 1), _uc_plain(v, depth + 1)) for k, v in value.items()]
        return _UC_NOT if _uc_b.any(k is _UC_NOT or v is _UC_NOT for k, v in pairs) else _uc_b.dict(pairs)
    if kind is _uc_b.set:
        items = [_uc_plain(v, depth + 1) for v in value]
        return _uc_b.set(items) if _uc_b.len(items) == 1 and items[0] is not _UC_NOT else _UC_NOT
    if _uc_b.getattr(kind, "__module__", None) == "numpy" and _uc_b.getattr(value, "shape", None) == ():
        try:
            item = value.item()
        except Exception:
            return _UC_NOT
        if _uc_b.type(item) in (_uc_b.bool, _uc_b.int, _uc_b.float, _uc_b.str, _uc_b.bytes):
            return _uc_plain(item, depth)
    return _UC_NOT


def _uc_seen(cls, method, check, position):
    # The values the test's check was called with, run from a fresh instance with the check
    # replaced by a recorder; None when the test raised.
    seen = []

    def record(*args, **kwargs):
        seen.append(args[position] if _uc_b.len(args) > position else _UC_NOT)

    try:
        cls.setUpClass()
    except Exception:
        return None
    try:
        case = cls(method)
        _uc_b.setattr(case, check, record)
        case.setUp()
        try:
            _uc_b.getattr(case, method)()
        finally:
            try:
                case.tearDown()
            finally:
                case.doCleanups()
    except Exception:
        return None
    finally:
        try:
            cls.tearDownClass()
        except Exception:
            pass
    return seen


def _uc_read(namespace, targets, runs, max_chars):
    # Per test (`Class.method`), the repr of the value its check saw, where each of `runs` runs saw
    # the check called once with the same value, which a literal states exactly and meets the check
    # as the value did.
    report = {}
    for class_name, method, check, position in targets:
        cls = namespace.get(class_name)
        if not _uc_b.isinstance(cls, _uc_b.type) or not _uc_b.issubclass(cls, _uc_unittest.TestCase):
            continue
        texts = []
        for _ in _uc_b.range(runs):
            seen = _uc_seen(cls, method, check, position)
            if seen is None or _uc_b.len(seen) != 1:
                break
            try:
                plain = _uc_plain(seen[0])
                if plain is _UC_NOT or not _uc_b.bool(plain == seen[0]):
                    break
                text = _uc_b.repr(plain)
                back = _uc_ast.literal_eval(text)
            except Exception:
                break
            if back != plain or _uc_b.type(back) is not _uc_b.type(plain):
                break
            texts.append(text)
        if _uc_b.len(texts) == runs and _uc_b.len(_uc_b.set(texts)) == 1 and _uc_b.len(texts[0]) <= max_chars:
            report["%s.%s" % (class_name, method)] = texts[0]
    return report
