# unitcoder: evalplus-style differential testing helpers, shared by the ground-truth pass and the
# test programs the sandbox runs. Every name starts with _uc_ so it cannot collide with a solution.
import copy as _uc_copy
import json as _uc_json
import math as _uc_math
import signal as _uc_signal
import time as _uc_time

# MBPP+ stores some arguments as JSON lists where the task takes tuples, sets or complex numbers;
# evalplus converts them per task on load. Each entry names the conversion applied to one argument
# list `a` (the list of positional arguments of one call).
def _uc_t(x):
    return tuple(x)

def _uc_deep_tuple(x):
    return tuple(_uc_deep_tuple(i) for i in x) if isinstance(x, list) else x

_UC_MBPP_ARGS = {}
for _uc_ids, _uc_conv in [
    ((2, 116, 132, 143, 222, 261, 273, 394, 399, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
      740, 744, 809), lambda a: [_uc_t(x) for x in a]),
    ((63, 64, 70, 94, 120, 237, 272, 299, 400, 409, 417, 438, 473, 614, 780),
     lambda a: [[_uc_t(x) for x in xs] for xs in a]),
    ((75, 413, 444, 753), lambda a: [[_uc_t(x) for x in a[0]]] + [a[1]]),
    ((106, 750), lambda a: [a[0]] + [_uc_t(a[1])]),
    ((115,), lambda a: [[set(x) if isinstance(x, list) and len(x) else {} for x in a[0]]]),
    ((124,), lambda a: (float(a[0]), complex(a[1]))),
    ((250, 405, 446, 617, 720, 763, 808), lambda a: [_uc_t(a[0])] + [a[1]]),
    ((259, 401, 445), lambda a: [_uc_t(_uc_t(x) for x in xs) for xs in a]),
    ((278,), lambda a: [_uc_t(_uc_t(x) if isinstance(x, list) else x for x in a[0])]),
    ((307,), lambda a: [_uc_t(a[0])] + [a[1], a[2]]),
    ((722,), lambda a: [{k: _uc_t(v) for k, v in a[0].items()}] + a[1:]),
    ((252,), lambda a: [complex(a[0])]),
    ((580, 615, 791), _uc_deep_tuple),
]:
    for _uc_id in _uc_ids:
        _UC_MBPP_ARGS[_uc_id] = _uc_conv


def _uc_inputs(family, task_id, raw):
    inputs = _uc_json.loads(raw)
    if family == "mbpp":
        conv = _UC_MBPP_ARGS.get(int(task_id.split("/")[-1]))
        if conv is not None:
            inputs = [conv(a) for a in inputs]
    return inputs


# Special oracles (evalplus 0.3.1 `_special_oracle.py`), where plain output equality is wrong.
_UC_MBPP_NOT_NONE = ("check_str", "text_match_three", "text_starta_endb")
_UC_MBPP_SET_EQ = ("similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly",
                   "larg_nnum", "intersection_array", "find_dissimilar", "Diff")


def _uc_poly(xs, x):
    return sum(c * _uc_math.pow(x, i) for i, c in enumerate(xs))


def _uc_surface_area(base_edge, height):
    slant = _uc_math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 2 * base_edge * slant)


def _uc_digit_distance(a, b):
    sa, sb = str(a), str(b)
    w = max(len(sa), len(sb))
    return sum(abs(int(x) - int(y)) for x, y in zip(sa.zfill(w), sb.zfill(w)))


def _uc_is_floats(x):
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


# Only values of these modules' types are compared with ==, so a solution cannot pass by returning
# an object whose __eq__ always says yes.
_UC_PLAIN_MODULES = ("builtins", "numpy", "collections", "decimal", "fractions")


def _uc_eq(out, exp):
    if type(out).__module__ not in _UC_PLAIN_MODULES:
        return False
    return bool(out == exp)


def _uc_close(a, b, atol):
    # numpy.allclose(a, b, rtol=1e-07, atol=atol) without numpy: elementwise over nested sequences.
    if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
        if not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))) or len(a) != len(b):
            return False
        return all(_uc_close(x, y, atol) for x, y in zip(a, b))
    if not all(isinstance(v, (int, float, bool, complex)) for v in (a, b)):
        return False
    if a == b:
        return True
    if any(isinstance(v, float) and (_uc_math.isinf(v) or _uc_math.isnan(v)) for v in (a, b)):
        return False
    return abs(a - b) <= atol + 1e-07 * abs(b)


class _UcDigest:
    """An expected output too large to embed (Mbpp/255's run to 1.3 GB of source): its sha256 over
    repr(). Only used for exact-match tasks; a value equal to the expected one but printed
    differently (1 vs 1.0, another set order) fails, which evalplus would pass."""

    def __init__(self, hexdigest):
        self.hexdigest = hexdigest


def _uc_digest_text(v):
    # hex for ints: decimal conversion of a million-digit int (HumanEval/83) takes seconds.
    if type(v) is int:
        return hex(v)
    import sys
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    return repr(v)


def _uc_digest(v):
    import hashlib
    return hashlib.sha256(_uc_digest_text(v).encode("utf-8", "surrogatepass")).hexdigest()


def _uc_judge(family, entry, inp, out, exp, atol):
    """Returns (passed, atol): evalplus lets a float comparison raise atol for later inputs."""
    if isinstance(exp, _UcDigest):
        return type(out).__module__ == "builtins" and _uc_digest(out) == exp.hexdigest, atol
    if family == "humaneval" and entry == "find_zero":
        return abs(_uc_poly(*inp, out)) <= atol, atol
    exact = _uc_eq(out, exp)
    if family == "mbpp":
        if entry == "are_equivalent":
            exact = True
        elif entry == "sum_div":
            exact = exact or out == 0
        elif entry == "surface_Area":
            exact = exact or abs(out - _uc_surface_area(*inp)) <= atol
        elif entry == "digit_distance_nums":
            exact = exact or out == _uc_digit_distance(*inp)
        elif entry in _UC_MBPP_SET_EQ:
            exact = set(out) == set(exp)
        elif entry in _UC_MBPP_NOT_NONE:
            exact = out == exp if isinstance(out, bool) else exp == (out is not None)
    if atol == 0 and _uc_is_floats(exp):
        atol = 1e-6
    if not exact and atol != 0:
        if type(out) != type(exp):
            return False, atol
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False, atol
        return _uc_close(out, exp, atol), atol
    return bool(exact), atol


def _uc_unblob(text):
    """A variant's expected outputs from the ground-truth pass's marshal blob (see groundtruth.py).
    In the sandbox, calls to it are replaced by the harness's own decoder (captured before the
    program runs, so a program that patches marshal or binascii cannot change the expected values);
    this definition serves runs outside it."""
    import binascii
    import marshal
    return marshal.loads(binascii.a2b_base64(text))


class _UcTimeout(BaseException):
    pass


def _uc_alarm(signum, frame):
    raise _UcTimeout()


def _uc_call(fn, args, limit):
    _uc_signal.setitimer(_uc_signal.ITIMER_REAL, limit)
    try:
        return fn(*args)
    finally:
        _uc_signal.setitimer(_uc_signal.ITIMER_REAL, 0)


def _uc_shown(args):
    shown = repr(args)
    return shown if len(shown) <= 200 else shown[:200] + "..."


def _uc_cases(family, task_id, entry, fn, raw, expected, limits, atol):
    """Yields (passed, message) per input, stopping after the first failure. Inputs are printed
    only for the message of a failure: repr() of every input cost ~8% of a HumanEval+ run."""
    _uc_signal.signal(_uc_signal.SIGALRM, _uc_alarm)
    for i, args in enumerate(_uc_inputs(family, task_id, raw)):
        try:
            out = _uc_call(fn, args, limits[i])
        except _UcTimeout:
            yield False, "input %d %s: timed out after %.1f s" % (i, _uc_shown(args), limits[i])
            return
        except Exception as e:
            yield False, "input %d %s: raised %s: %s" % (i, _uc_shown(args), type(e).__name__, str(e)[:200])
            return
        try:
            ok, atol = _uc_judge(family, entry, args, out, expected[i], atol)
        except Exception as e:
            ok = False
        if not ok:
            try:
                got = repr(out)
            except Exception:
                got = "<unprintable %s>" % type(out).__name__
            got = got if len(got) <= 200 else got[:200] + "..."
            yield False, "input %d %s: got %s" % (i, _uc_shown(args), got)
            return
        yield True, ""
