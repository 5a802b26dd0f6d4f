# unitcoder sandbox: what the child says, and how (appended to harness.py; one module; in-child
# runtime). run_child builds these before any candidate code runs: the event writer (one JSON line
# per event on the event pipe, with the run's nonce, encoded with the harness's own references) and
# the describer (an exception's message and the tests or program line it came from, for the fix
# loop). Each returns closures over references captured at that moment, never global names.


def _event_writer(nonce, evfd, state):
    """(emit, tamper): emit(**event) writes one event line; tamper(what) marks the run tampered
    and says what was seen."""
    write, exit_ = _os.write, _os._exit
    real_type, BaseExc = type, BaseException
    quote = _json.encoder.encode_basestring_ascii  # C; json.dumps would look up builtins at each call
    int_type, int_repr = int, int.__repr__
    prefix = nonce.encode() + b" "

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

    return emit, tamper


def _describer(tests_source, program_source, own):
    """(describe, kind_of, tests_line): an exception's message with the line it came from, its
    status (skip, fail, error), and the tests line a frame is at (strict rules). `own(filename)`:
    whether the file lies where the candidate can place code."""
    real_type, real_len, real_str = type, len, str
    AssertionErr, BaseExc, SkipTest = AssertionError, BaseException, _unittest.SkipTest
    mro_of = type.__dict__["__mro__"].__get__
    tests_lines = tests_source.splitlines()
    program_lines = program_source.splitlines()

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

    def by_program(exc):
        # Whether the program's code is on the exception's way: a skip is the tests' to make (a
        # decorator, self.skipTest); one raised by the code under test would hide the failures of
        # the tests it skips.
        tb = exc.__traceback__
        while tb is not None:
            fn = tb.tb_frame.f_code.co_filename
            if real_type(fn) is not real_str or fn == PROGRAM_FN or own(fn):
                return True
            tb = tb.tb_next
        return False

    def kind_of(exc):
        mro = mro_of(real_type(exc))
        if SkipTest in mro:
            return "error" if by_program(exc) else "skip"
        if AssertionErr in mro:
            return "fail"
        return "error"

    def tests_line(frame):
        if frame is not None and frame.f_code.co_filename == TESTS_FN and 0 < frame.f_lineno <= real_len(tests_lines):
            return " (tests line %d: %s)" % (frame.f_lineno, tests_lines[frame.f_lineno - 1].strip()[:200])
        return ""

    return describe, kind_of, tests_line
