# The docstring-examples probe (appended to a polished program as its tests; see examples.rs). It
# runs the `>>>` examples of __UC_NAME__'s docstring with doctest's own parser and runner, twice
# from fresh copies of the module's globals, and prints one JSON line after a marker: for each
# example where it starts, how many lines it spans, whether it held, what it printed, and whether
# that output is trustworthy as an example (the same in both runs; no set or frozenset shown, whose
# order changes with the hash seed). The result only guides the rewrite: the rewritten program is
# then checked with doctest itself, so whatever the program prints here can at worst drop examples.
import doctest as _uc_doctest
import json as _uc_json
import sys as _uc_sys
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
        # example up (those examples are then dropped, not corrected), then the whole report.
        budget = 3600
        text = _uc_json.dumps(report, separators=(",", ":"))
        for entry in reversed(report["examples"]):
            if len(text) <= budget:
                break
            if entry.pop("got", None) is not None:
                text = _uc_json.dumps(report, separators=(",", ":"))
        if len(text) > budget:
            n = len(report["examples"])
            report = {"lines": report["lines"], "examples": [], "parse_error": "%d examples: too many to report" % n}
            text = _uc_json.dumps(report, separators=(",", ":"))
        print("\n@@unitcoder-examples@@" + text)
