# unitcoder sandbox: coverage of one function under its tests (appended to harness.py, before
# server.py; one module, so it uses harness.py's imports). run_child calls _coverage_start after the
# program is loaded and sends _coverage_counts as a `cov` event before `done`.

# ---------------------------------------------------------------- coverage of the function under test
#
# Asked for per job (`coverage`: a top-level function's name). Lines are the function's statements
# that compiled to code; branches are the two outcomes of each if/elif/while/for whose body starts on
# a line of its own: "entered" when the body's first line ran, "not entered" when the else branch's
# first line ran or, without one, when the header ran more often than the body (a loop's header
# runs once more than its body when it ends by exhaustion; an `if` whose body did not run every
# time was false at least once). Counting line hits lets both tracers give the same numbers:
# sys.monitoring (3.12+: events only on the function's own code objects, so nothing else is slowed)
# or sys.settrace (older Pythons: a local tracer only in the function's frames). The numbers are not
# a verdict: a candidate that disturbed the tracer could only lower or raise its own coverage.


def _coverage_plan(program_code, program_source, name):
    """(code objects, statement lines, branches) of the top-level function `name`, or None."""
    try:
        tree = _ast.parse(program_source)
    except (SyntaxError, ValueError):
        return None
    fn = None
    for node in tree.body:
        if isinstance(node, (_ast.FunctionDef, _ast.AsyncFunctionDef)) and node.name == name:
            fn = node
    if fn is None:
        return None
    first = min([fn.lineno] + [d.lineno for d in fn.decorator_list])
    last = fn.end_lineno or fn.lineno
    code_type, codes, stack = type(program_code), [], list(program_code.co_consts)
    while stack:
        c = stack.pop()
        if type(c) is code_type:
            stack.extend(c.co_consts)
            if first <= c.co_firstlineno <= last:
                codes.append(c)
    with_code = set()
    for c in codes:
        if hasattr(c, "co_lines"):
            with_code.update(line for _s, _e, line in c.co_lines() if line is not None)
        else:  # Python 3.9
            import dis
            with_code.update(line for _o, line in dis.findlinestarts(c))
    body = fn.body
    doc = body[0] if body and isinstance(body[0], _ast.Expr) and isinstance(body[0].value, _ast.Constant) \
        and isinstance(body[0].value.value, str) else None
    lines, branches = set(), []
    for node in _ast.walk(fn):
        if node is fn or not isinstance(node, _ast.stmt) or node is doc:
            continue
        if node.lineno in with_code and not isinstance(node, (_ast.Global, _ast.Nonlocal)):
            lines.add(node.lineno)
        if isinstance(node, (_ast.If, _ast.While, _ast.For, _ast.AsyncFor)):
            if isinstance(node, _ast.While) and isinstance(node.test, _ast.Constant):
                continue  # `while True:` has one outcome
            if node.body[0].lineno == node.lineno:
                continue  # `if x: y` on one line: the hits cannot tell the outcomes apart
            other = node.orelse[0].lineno if node.orelse else None
            branches.append((node.lineno, node.body[0].lineno, other))
    return codes, sorted(lines), branches


def _coverage_start(program_code, program_source, name):
    """Starts counting line hits in the function `name`; returns the state for _coverage_counts."""
    plan = _coverage_plan(program_code, program_source, name)
    if plan is None:
        return None
    codes, lines, branches = plan
    hits = {}
    monitoring = getattr(_sys, "monitoring", None)
    if monitoring is not None:
        tool = monitoring.COVERAGE_ID

        def on_line(_code, line):
            hits[line] = hits.get(line, 0) + 1

        try:
            monitoring.use_tool_id(tool, "unitcoder")
        except ValueError:
            return None
        monitoring.register_callback(tool, monitoring.events.LINE, on_line)
        for c in codes:
            monitoring.set_local_events(tool, c, monitoring.events.LINE)
        return "sys.monitoring", lines, branches, hits
    targets = set(codes)

    def local(frame, event, _arg):
        if event == "line":
            line = frame.f_lineno
            hits[line] = hits.get(line, 0) + 1
        return local

    def call(frame, _event, _arg):
        return local if frame.f_code in targets else None

    _sys.settrace(call)
    return "sys.settrace", lines, branches, hits


def _coverage_counts(state):
    """Stops tracing; the event fields of a `cov` event: tracer, lines, lines hit, outcomes, taken."""
    tracer, lines, branches, hits = state
    if tracer == "sys.settrace":
        _sys.settrace(None)
    else:
        _sys.monitoring.free_tool_id(_sys.monitoring.COVERAGE_ID)
    taken = 0
    for head, body, other in branches:
        taken += hits.get(body, 0) > 0
        taken += (hits.get(other, 0) > 0) if other is not None else hits.get(head, 0) > hits.get(body, 0)
    return {"m": tracer, "lt": len(lines), "lh": sum(1 for line in lines if hits.get(line)),
            "bt": 2 * len(branches), "bh": taken}
