//! The harness's coverage tracer run directly (outside a sandbox) under every interpreter at hand:
//! `python3`, and `python3.12`/`python3.13` when on `PATH`, so that both tracers (`sys.settrace`
//! before 3.12, `sys.monitoring` from 3.12) are held to the same exact counts.

const CHECK: &str = r#"
import sys
cases = [
    ("def sign(x):\n    '''Doc.'''\n    if x > 0:\n        r = 1\n    else:\n        r = -1\n    return r\n", "sign", [(5,)], (4, 3, 2, 1)),
    ("def double(x):\n    y = x\n    if x > 0:\n        y = x * 2\n    return y\n", "double", [(3,)], (4, 4, 2, 1)),
    ("def total(xs):\n    s = 0\n    for x in xs:\n        if x is None:\n            break\n        s += x\n    return s\n", "total", [([1, None],)], (6, 6, 4, 3)),
    ("def w(n):\n    i = 0\n    while (i <\n           n):\n        i += 1\n    return i\n", "w", [(0,)], (4, 3, 2, 1)),
]
for prog, name, calls, want in cases:
    code = compile(prog, "<candidate>", "exec")
    ns = {}
    exec(code, ns)
    state = _coverage_start(code, prog, name)
    for c in calls:
        ns[name](*c)
    got = _coverage_counts(state)
    tracer = "sys.monitoring" if sys.version_info >= (3, 12) else "sys.settrace"
    assert got == {"m": tracer, "lt": want[0], "lh": want[1], "bt": want[2], "bh": want[3]}, (name, got)
print("ok")
"#;

#[test]
fn both_tracers_count_the_same_lines_and_branches() {
    let mut ran = 0;
    for python in ["python3", "python3.12", "python3.13"] {
        // A launcher may exist without the version behind it (a pyenv shim): not an interpreter at hand.
        let usable = std::process::Command::new(python).args(["-c", "pass"]).status().is_ok_and(|s| s.success());
        if !usable && python != "python3" {
            continue;
        }
        let out = std::process::Command::new(python)
            .args([
                "-I",
                "-c",
                "import sys; g = {'__name__': 't'}; exec(sys.argv[1], g); exec(sys.argv[2], g)",
                concat!(include_str!("harness.py"), "\n", include_str!("coverage.py")),
                CHECK,
            ])
            .output();
        let out = out.unwrap_or_else(|e| panic!("{python}: {e}"));
        assert!(out.status.success() && out.stdout == b"ok\n", "{python}: {}", String::from_utf8_lossy(&out.stderr));
        ran += 1;
    }
    assert!(ran >= 1);
}
