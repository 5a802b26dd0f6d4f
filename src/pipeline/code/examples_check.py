

import doctest as _uc_doctest
import unittest as _uc_unittest


class DocstringExamplesHold(_uc_unittest.TestCase):
    # The rewritten docstring's examples, run as `python -m doctest` runs them: every one holds,
    # and none was lost to a parse that stopped early.
    def test_docstring_examples_hold(self):
        finder = _uc_doctest.DocTestFinder(recurse=False)
        runner = _uc_doctest.DocTestRunner(verbose=False)
        for test in finder.find(__UC_FUNCTION__, "__UC_NAME__", globs=dict(globals())):
            runner.run(test, out=lambda s: None)
        failed, attempted = runner.summarize(verbose=False)
        self.assertEqual((failed, attempted), (0, __UC_EXPECTED__))
