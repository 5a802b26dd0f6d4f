# The docstring probe (appended to a polished program after the record's verified tests; see
# examples.rs and raises.rs). It runs the `>>>` examples of __UC_NAME__'s docstring with doctest's
# own parser and runner, twice from fresh copies of the module's globals, and prints one JSON line
# after a marker: for each example where it starts, how many lines it spans, whether it held, what
# it printed, and whether that output is trustworthy as an example (the same in both runs; no set
# or frozenset shown, whose order changes with the hash seed). The line also lists the exception
# classes seen leaving __UC_NAME__ while the tests (run before this class: the harness runs test
# classes in the order they are defined) and the examples ran, and those its code raises by name,
# each with its base classes: the evidence a `Raises` entry is kept on; and whether the types the
# docstring gives (types.rs) admit every value __UC_NAME__ returned meanwhile, and every value passed
# to each documented parameter in calls that returned, with the names of the types seen. The result only guides the rewrite: the rewritten program is
# then checked with doctest and the tests, so whatever the program prints here can at worst drop
# examples and entries, or name a type it returned.
import builtins as _uc_builtins
import collections.abc as _uc_abc
import doctest as _uc_doctest
import functools as _uc_functools
import inspect as _uc_inspect
import json as _uc_json
import re as _uc_re
import sys as _uc_sys
import typing as _uc_typing
import unittest as _uc_unittest


def _uc_unordered(value, depth=0):
    if depth > 8:
        return False
    if isinstance(value, (set, frozenset)):
        return len(value) > 1
    if isinstance(value, (list, tuple)):
        return any(_uc_unordered(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return any(_uc_unordered(k, depth + 1) or _uc_unordered(v, depth + 1) for k, v in value.items())
    return False


_uc_raised = []
_uc_returned = []
# Per parameter, the types of the values passed to it (explicitly) in calls that returned.
_uc_passed = {}


class _UcWatched:
    # Calls the function, noting the exceptions that leave it, the types it returns and the types
    # passed to its parameters. Anything else the tests ask of it (`cache_info()` of an lru_cache) is
    # the function's own. Only the outermost call is watched (a recursive function calls itself
    # through its global name, that is, through this), and after 2000 calls only exceptions are
    # noted: the tests run at nearly their own speed.
    def __init__(self, function):
        _uc_functools.update_wrapper(self, function)
        self._uc_depth = 0
        self._uc_calls = 0
        try:
            self._uc_signature = _uc_inspect.signature(function)
        except (TypeError, ValueError):
            self._uc_signature = None

    def __call__(self, *args, **kwargs):
        if self._uc_depth:
            return self.__wrapped__(*args, **kwargs)
        self._uc_calls += 1
        self._uc_depth += 1
        try:
            value = self.__wrapped__(*args, **kwargs)
        except Exception as e:
            if type(e) not in _uc_raised:
                _uc_raised.append(type(e))
            raise
        finally:
            self._uc_depth -= 1
        if self._uc_calls > 2000:
            return value
        if type(value) not in _uc_returned and len(_uc_returned) < 24:
            _uc_returned.append(type(value))
        signature = self._uc_signature
        try:
            bound = signature.bind(*args, **kwargs).arguments if signature is not None else {}
        except TypeError:
            bound = {}
        variadic = (_uc_inspect.Parameter.VAR_POSITIONAL, _uc_inspect.Parameter.VAR_KEYWORD)
        for name, passed in bound.items():
            if signature.parameters[name].kind not in variadic:
                kinds = _uc_passed.setdefault(name, [])
                if type(passed) not in kinds and len(kinds) < 24:
                    kinds.append(type(passed))
        return value

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def _uc_watch(function):
    return _UcWatched(function) if callable(function) else function


__UC_FUNCTION__ = _uc_watch(__UC_FUNCTION__)


def _uc_lookup(dotted, *spaces):
    # A dotted name in the module, the builtins or `spaces`: looked up, never evaluated.
    parts = dotted.split(".")
    value = globals().get(parts[0], getattr(_uc_builtins, parts[0], None))
    for space in spaces:
        if value is None:
            value = getattr(space, parts[0], None)
    for part in parts[1:]:
        value = getattr(value, part, None)
    return value


def _uc_exception_class(dotted):
    # A name the function's code raises (`ValueError`, `binascii.Error`).
    value = _uc_lookup(dotted)
    return value if isinstance(value, type) and issubclass(value, Exception) else None


# Words docstrings use for types.
_UC_WORDS = {"string": "str", "integer": "int", "boolean": "bool", "dictionary": "dict", "number": "float"}


def _uc_split(text, separators):
    # `text` split at the separators that stand outside brackets.
    parts, depth, start, i = [], 0, 0, 0
    while i < len(text):
        c = text[i]
        if c in "[(":
            depth += 1
        elif c in "])":
            depth -= 1
        elif depth == 0:
            hit = next((s for s in separators if text.startswith(s, i)), None)
            if hit:
                parts.append(text[start:i])
                i += len(hit)
                start = i
                continue
        i += 1
    parts.append(text[start:])
    return parts


def _uc_admits(text, depth=0):
    # The classes a type written in a docstring admits (`bytes`, `str or None`, `Optional[str]`,
    # `list of int`, `Tuple[bytes, int]`, `datetime.timezone`), or None where it cannot be read.
    if depth > 4:
        return None
    text = _uc_re.sub(r",?\s*optional$", "", text.strip().strip("`").strip())
    out = []
    for alternative in _uc_split(text, (" or ", "|")):
        a = _uc_re.sub(r"^(an?|the)\s+", "", alternative.strip())
        m = _uc_re.fullmatch(r"([A-Za-z_][\w.]*)\s*(?:\[(.*)\])?(?:\s+of\s+.+)?", a, _uc_re.S)
        if not m:
            return None
        name, inner = _UC_WORDS.get(m.group(1), m.group(1)), m.group(2)
        if name in ("Any", "typing.Any", "object"):
            return (object,)
        if name == "None":
            out.append(type(None))
            continue
        if name in ("Optional", "typing.Optional", "Union", "typing.Union") and inner:
            for part in _uc_split(inner, (",",)):
                sub = _uc_admits(part, depth + 1)
                if sub is None:
                    return None
                out.extend(sub)
            if name.endswith("Optional"):
                out.append(type(None))
            continue
        value = _uc_lookup(name, _uc_typing, _uc_abc)
        origin = _uc_typing.get_origin(value) or value
        if not isinstance(origin, type):
            return None
        out.append(origin)
    return tuple(out)


def _uc_is_a(kind, admitted):
    # PEP 484's numeric tower: an int is fine where a float is expected, either where a complex is.
    return any(issubclass(kind, a) or (a is float and kind is int) or (a is complex and kind in (int, float))
               for a in admitted)


def _uc_type_name(kind):
    if kind is type(None):
        return "None"
    if getattr(_uc_builtins, kind.__name__, None) is kind:
        return kind.__name__
    names = [(name, value) for name, value in list(globals().items()) if not name.startswith("_")]
    for name, value in names:
        if value is kind:
            return name
    # Through a module the program imported: `pd.DataFrame` rather than pandas.core.frame.DataFrame.
    for name, value in names:
        if isinstance(value, type(_uc_sys)) and getattr(value, kind.__name__, None) is kind:
            return "%s.%s" % (name, kind.__name__)
    return "%s.%s" % (kind.__module__, kind.__qualname__)


def _uc_params_report():
    # For each (parameter, type) the docstring claims: whether the type admits every value passed to
    # the parameter in calls that returned, with the names of their types. A parameter whose
    # default is None admits None as well.
    out = []
    for name, claim in __UC_PARAMS_CLAIMS__:
        passed = _uc_passed.get(name)
        admitted = _uc_admits(claim)
        if admitted is None:
            out.append({"unread": True})
            continue
        if not passed:
            out.append({})
            continue
        try:
            default = _uc_inspect.signature(__UC_FUNCTION__.__wrapped__).parameters[name].default
        except (TypeError, ValueError, KeyError):
            default = _uc_inspect.Parameter.empty
        if default is None:
            admitted = admitted + (type(None),)
        out.append({"holds": all(_uc_is_a(kind, admitted) for kind in passed),
                    "seen": [_uc_type_name(kind)[:80] for kind in passed]})
    return out[:24]


def _uc_returns_report():
    claim = __UC_RETURNS_CLAIM__
    if claim is None or not _uc_returned:
        return None
    admitted = _uc_admits(claim)
    if admitted is None:
        return {"unread": True}
    return {"holds": all(_uc_is_a(kind, admitted) for kind in _uc_returned),
            "returned": [_uc_type_name(kind)[:80] for kind in _uc_returned]}


def _uc_classes(kind):
    # The class's and its bases' names, up to Exception; of a deep hierarchy, the nearest six and
    # the six next to Exception, where the classes docstrings name (ValueError, OSError) are.
    names = []
    for klass in kind.__mro__:
        if klass in (BaseException, object):
            break
        names.append(klass.__qualname__[:80])
    return names if len(names) <= 12 else names[:6] + names[-6:]


class DocstringExamplesProbe(_uc_unittest.TestCase):
    def test_docstring_examples(self):
        doc = __UC_FUNCTION__.__doc__
        self.assertIsNotNone(doc)
        report = {"lines": len(doc.split("\n")), "examples": []}
        try:
            examples = _uc_doctest.DocTestParser().get_examples(doc, "__UC_NAME__")
        except ValueError as e:
            report["parse_error"] = str(e)[:300]
            examples = []
        base = dict(globals())
        runs = []
        for _ in range(2):
            shown, outcomes = [], []

            class Runner(_uc_doctest.DocTestRunner):
                def report_start(self, out, test, example):
                    shown.clear()

                def report_success(self, out, test, example, got):
                    outcomes.append({"ok": True, "got": got, "unordered": any(map(_uc_unordered, shown))})

                def report_failure(self, out, test, example, got):
                    outcomes.append({"ok": False, "got": got, "unordered": any(map(_uc_unordered, shown))})

                def report_unexpected_exception(self, out, test, example, exc_info):
                    outcomes.append({"ok": False, "exception": exc_info[0].__name__})

            def hook(value):
                if value is not None:
                    shown.append(value)
                _uc_sys.__displayhook__(value)

            test = _uc_doctest.DocTest(examples, dict(base), "__UC_NAME__", None, 0, doc)
            saved = _uc_sys.displayhook
            _uc_sys.displayhook = hook
            try:
                Runner(verbose=False).run(test, out=lambda s: None, clear_globs=True)
            finally:
                _uc_sys.displayhook = saved
            runs.append(outcomes)
        raised = list(_uc_raised)
        for dotted in __UC_RAISES_IN_CODE__:
            kind = _uc_exception_class(dotted)
            if kind is not None and kind not in raised:
                raised.append(kind)
        report["raised"] = [_uc_classes(kind) for kind in raised[:24]]
        returns = _uc_returns_report()
        if returns is not None:
            report["returns"] = returns
        report["params"] = _uc_params_report()
        missing = {"ok": False, "exception": "not run"}
        for i, ex in enumerate(examples):
            a = runs[0][i] if i < len(runs[0]) else missing
            b = runs[1][i] if i < len(runs[1]) else missing
            entry = {
                "line": ex.lineno,
                "source_lines": ex.source.count("\n"),
                "want_lines": ex.want.count("\n"),
                "ok": a["ok"] and b["ok"],
                "stable": a == b,
                "unordered": bool(a.get("unordered") or b.get("unordered")),
            }
            exception = a.get("exception") or b.get("exception")
            if exception:
                entry["exception"] = exception
            # Only an example that failed may be corrected, and only to a short output.
            if not entry["ok"] and a.get("got") is not None and len(a["got"]) <= 241:
                entry["got"] = a["got"]
            report["examples"].append(entry)
        # The report comes back in the verdict's 4 KB stdout tail: outputs go first, from the last
        # example up (those examples are then dropped, not corrected); then the evidence for
        # `Raises` entries and parameter types, from the last up (what it would have kept is then
        # dropped or left unchecked); then the examples, which the report then says were too many.
        budget = 3600

        def size():
            return len(_uc_json.dumps(report, separators=(",", ":")))

        for entry in reversed(report["examples"]):
            if size() <= budget:
                break
            entry.pop("got", None)
        while size() > budget and report["raised"]:
            report["raised"].pop()
        for entry in reversed(report["params"]):
            if size() <= budget:
                break
            entry.clear()
        if size() > budget and report.get("returns"):
            report["returns"] = {"unread": True}
        if size() > budget:
            n = len(report["examples"])
            report["examples"] = []
            report["parse_error"] = "%d examples: too many to report" % n
        text = _uc_json.dumps(report, separators=(",", ":"))
        print("\n@@unitcoder-examples@@" + text)
