# unitcoder sandbox: the checks against a patched test machinery and always-equal objects
# (appended to harness.py; one module; in-child runtime). The snapshot check compares the identity
# of unittest's and builtins' contents with the server's pristine snapshot (prepare.py, snapshot);
# the always-equal probe compares each operand of a successful comparison with a private sentinel.
# run_child builds both before any candidate code runs; they close over references captured then.


class _Sentinel(object):
    """What the always-equal probe compares against: equal to nothing but itself. Made once in the
    server (a class made in every child cost it a type object and its caches)."""

    __slots__ = ()


_SENTINEL = _Sentinel()


def _snapshot_checker(baseline, tamper):
    """check_snapshot(when): True when the machinery is as the snapshot `baseline` has it;
    otherwise reports the change as tampering and returns False."""
    real_len = len
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

    return check_snapshot


def _equality_probe(own, tamper):
    """probe(*values): raises AssertionError, and reports tampering, when a value (or one inside a
    container) equals everything. `own(filename)`: whether the file lies where the candidate can
    place code, which therefore is never library code."""
    real_type, real_len, real_bool, BaseExc = type, len, bool, BaseException
    AssertionErr = AssertionError
    mro_of = type.__dict__["__mro__"].__get__
    SENTINEL = _SENTINEL
    simple = (int, float, complex, str, bytes, bool, real_type(None), range, real_type, real_type(len))
    containers = (list, tuple, set, frozenset)
    type_dict = type.__dict__["__dict__"].__get__
    func_code = real_type(run_child).__dict__["__code__"].__get__
    slot_type, func_type = real_type(object.__eq__), real_type(run_child)
    # Values no honest object equals or holds, drawn afresh for each run (the program cannot know
    # them: they live only in this closure): one of each builtin type an always-equal object might
    # single out, and the sentinel.
    n = int.from_bytes(_os.urandom(16), "little") | (1 << 127)
    word = "%032x" % int.from_bytes(_os.urandom(16), "little")
    others = (SENTINEL, n, word, word.encode(), float("nan"), (n,), [word], {word: n}, frozenset((n,)))
    # What a container is asked to hold: no honest one holds these (a set of all numbers could hold
    # `n`, so no bare number but NaN, which no comparison finds).
    held = (SENTINEL, word, float("nan"), (word, n))

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
                    return fn.startswith("/") and not own(fn)
                return False
        return False

    def own_method(klass, name):
        # Whether `klass` has `name` and it is not library code: the candidate's own.
        for k in mro_of(klass):
            if name in type_dict(k):
                return not library_method(klass, name)
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
        if own_method(t, "__contains__"):
            # A container of the candidate's own making that holds anything (`assertIn(4, r)`).
            for other in held:
                try:
                    if other in x:
                        return True
                except BaseExc:
                    pass
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
        # object could answer differently when the assertion asks again). Not only against the
        # sentinel, whose type a program could learn to tell apart, but against values of the
        # builtin types that no honest object equals: random ones, drawn for this run.
        if eq is not False or ne is False:
            return True
        for other in others[1:]:
            try:
                if (x == other) is not False or (x != other) is False:
                    return True
            except BaseExc:
                pass  # as for the sentinel: an object that cannot compare is not always equal
        return False

    def probe(*values):
        for v in values:
            if suspicious(v):
                tamper("an object whose == is always true reached an assertion")
                raise AssertionErr("object compares equal to everything")

    return probe
