//! Strict rules for model-written tests (`Job::strict_assertions`): a failed assertion the test
//! catches still fails it, and assertions that cannot fail do not count (a suite of only those is
//! `vacuous`). Benchmark jobs run without them, so their verdicts do not move.

use super::*;

/// `add` that is wrong for every input but (0, 0).
const WRONG_ADD: &str = "def add(a, b):\n    return a * b\n";

#[test]
fn a_failed_assertion_the_test_catches_still_fails_it() {
    let swallowing = [
        // unittest, caught as Exception
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        try:\n            self.assertEqual(add(1, 2), 3)\n        except Exception:\n            pass\n",
        // a bare assert, caught as AssertionError
        "def test_a():\n    try:\n        assert add(1, 2) == 3\n    except AssertionError:\n        pass\n",
        // a context-manager assertion whose failure (nothing raised) is caught
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        try:\n            with self.assertRaises(TypeError):\n                add(1, 2)\n        except AssertionError:\n            pass\n        self.assertEqual(add(0, 0), 0)\n",
        // a helper from the tests, caught by the caller
        "def expect(x, y):\n    assert x == y, 'mismatch'\n\ndef test_a():\n    try:\n        expect(add(2, 2), 4)\n        expect(add(1, 2), 3)\n    except Exception:\n        pass\n",
    ];
    for tests in swallowing {
        let v = check_strict(WRONG_ADD, tests);
        assert_reason(&v, "assertion");
        let message = v.tests.iter().find_map(|t| t.message.clone()).unwrap_or_default();
        assert!(message.contains("caught by the test") && message.contains("tests line"), "{v:#?}");
        // The same suite judged as benchmark tests are: the test raised nothing, so it passes.
        assert_pass(&check(WRONG_ADD, tests));
    }
    // A correct program passes the same suites under strict rules: nothing failed.
    assert_pass(&check_strict(ADD, swallowing[0]));
    assert_pass(&check_strict(ADD, swallowing[1]));
    assert_pass(&check_strict(ADD, swallowing[3]));
}

#[test]
fn a_suite_of_tautologies_is_vacuous() {
    let tautologies = [
        "def test_a():\n    assert add(1, 2) == add(1, 2)\n    assert True\n",
        "import unittest\n\nclass T(unittest.TestCase):\n    def test_a(self):\n        r = add(1, 2)\n        self.assertTrue(True)\n        self.assertEqual(r, r)\n\n    def test_b(self):\n        self.assertEqual(add(1, 1), add(1, 1))\n        self.assertTrue(add(2, 3) == add(2, 3))\n",
        "def check(candidate):\n    assert candidate(1, 2) == candidate(1, 2)\n    assert 1 == 1\n\ncheck(add)\n",
    ];
    for tests in tautologies {
        let v = check_strict(WRONG_ADD, tests);
        assert_reason(&v, "vacuous");
        assert!(v.tests.iter().all(|t| t.message.as_deref().unwrap_or("").contains("cannot fail")), "{v:#?}");
        assert_reason(&check_strict(ADD, tests), "vacuous");
        // Benchmark jobs count every assertion, as their own harnesses do.
        assert_pass(&check(WRONG_ADD, tests));
    }
}

#[test]
fn meaningful_assertions_next_to_tautologies_still_judge() {
    // HumanEval's tests carry `assert True` lines next to the real ones.
    let tests = "def check(candidate):\n    assert True, 'debug line'\n    assert candidate(1, 2) == 3\n    assert candidate(2, 2) == 4\n\ncheck(add)\n";
    assert_pass(&check_strict(ADD, tests));
    assert_reason(&check_strict(WRONG_ADD, tests), "assertion");
    // A test with only tautologies among real ones is a test without an assertion.
    let mixed = "def test_real():\n    assert add(1, 2) == 3\n\ndef test_taut():\n    assert add(1, 2) == add(1, 2)\n";
    assert_reason(&check_strict(ADD, mixed), "no assertion executed");
}
