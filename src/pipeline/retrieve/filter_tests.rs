//! Unit tests of the function filter and import resolution on small Python files.

use super::python::{extract, Extracted, FileOutcome, Limits};
use super::{Packages, Reject};

fn run(src: &str) -> Vec<Result<Extracted, (Reject, String)>> {
    let limits = Limits { min_lines: 2, ..Limits::default() };
    match extract(src, &Packages::bigcodebench(), &limits) {
        FileOutcome::Functions(f) => f.into_iter().map(|o| o.map_err(|r| (r.reason, r.detail))).collect(),
        FileOutcome::Skipped(r) => panic!("file skipped: {r}"),
    }
}

fn one(src: &str) -> Result<Extracted, (Reject, String)> {
    let mut all = run(src);
    assert_eq!(all.len(), 1, "{src}");
    all.remove(0)
}

fn kept(src: &str) -> Extracted {
    one(src).unwrap_or_else(|e| panic!("rejected {e:?}: {src}"))
}

fn reason(src: &str) -> Reject {
    match one(src) {
        Ok(e) => panic!("kept {e:?}"),
        Err((r, _)) => r,
    }
}

#[test]
fn aliased_import_is_rewritten_minimal() {
    let e = kept("import os\nimport numpy as np\nimport pandas as pd\n\ndef norm(v):\n    return np.linalg.norm(v)\n");
    assert_eq!(e.imports, vec!["import numpy as np"]);
    assert_eq!(e.modules, vec!["numpy"]);
    assert_eq!(e.name, "norm");
    assert_eq!(e.signature, "def norm(v):");
    assert_eq!(e.lines, (5, 6));
}

#[test]
fn from_imports_are_grouped_per_module() {
    let e = kept(
        "from collections import Counter, defaultdict as dd, OrderedDict\n\ndef f(xs):\n    c = Counter(xs)\n    d = dd(int)\n    return c, d\n",
    );
    assert_eq!(e.imports, vec!["from collections import Counter, defaultdict as dd"]);
    assert_eq!(e.modules, vec!["collections"]);
}

#[test]
fn dotted_import_binds_top_name_and_submodule_is_kept() {
    let e = kept("import os\nimport os.path\nimport xml.etree.ElementTree as ET\n\ndef f(p):\n    return os.path.join(p, ET.tostring(p))\n");
    assert_eq!(e.imports, vec!["import os.path", "import xml.etree.ElementTree as ET"]);
    assert_eq!(e.modules, vec!["os.path", "xml.etree.ElementTree"]);
    let e = kept("import os\nimport os.path\n\ndef f(p):\n    return os.getcwd() + p\n");
    assert_eq!(e.imports, vec!["import os"]);
    let e = kept("from os import path as osp\n\ndef f(p):\n    return osp.basename(p)\n");
    assert_eq!(e.imports, vec!["from os import path as osp"]);
}

#[test]
fn later_import_of_the_same_name_wins() {
    let e = kept("import json\nimport numpy as json\n\ndef f(x):\n    return json.dumps(x)\n");
    assert_eq!(e.imports, vec!["import numpy as json"]);
}

#[test]
fn try_import_idiom_counts() {
    let e = kept("try:\n    import simplejson as json\nexcept ImportError:\n    import json\n\ndef f(x):\n    return json.dumps(x)\n");
    assert_eq!(e.imports, vec!["import json"]);
    // The except branch binds `json` at module level too, but the try-body import is what we use.
    let r =
        one("try:\n    import numpy as np\nexcept ImportError:\n    np = None\n\ndef f(x):\n    return np.sum(x)\n");
    assert_eq!(r.map(|e| e.imports).ok(), Some(vec!["import numpy as np".to_string()]));
}

#[test]
fn disallowed_module_is_named() {
    assert_eq!(
        one("import torch\nimport numpy as np\n\ndef f(x):\n    return torch.tensor(np.array(x))\n"),
        Err((Reject::DisallowedModule, "torch".into()))
    );
}

#[test]
fn unused_disallowed_imports_do_not_matter() {
    let e = kept("import torch\nimport re\n\ndef f(s):\n    return re.sub('a', 'b', s)\n");
    assert_eq!(e.imports, vec!["import re"]);
}

#[test]
fn builtins_only_uses_no_module() {
    assert_eq!(reason("import os\n\ndef f(x):\n    return len(x) + sum(x)\n"), Reject::NoModule);
}

#[test]
fn builtins_only_functions_are_kept_when_allowed() {
    let limits = Limits { min_lines: 2, allow_builtin_only: true, ..Limits::default() };
    let src = "import os\n\ndef f(x):\n    return len(x) + sum(x)\n\ndef g(x):\n    return undefined_thing(x)\n";
    let FileOutcome::Functions(fs) = extract(src, &Packages::bigcodebench(), &limits) else { panic!("skipped") };
    let f = fs[0].as_ref().expect("f is kept");
    assert!(f.imports.is_empty() && f.modules.is_empty(), "{f:?}");
    // The other rules still hold: a name defined nowhere is not a builtin.
    assert_eq!(fs[1].as_ref().map_err(|r| r.reason).unwrap_err(), Reject::UndefinedName);
}

#[test]
fn file_local_names_are_rejected() {
    let src = "import re\nPATTERN = re.compile('a')\n\ndef f(s):\n    return PATTERN.match(s)\n";
    assert_eq!(one(src), Err((Reject::UsesFileLocal, "PATTERN".into())));
    let all = run("import re\n\ndef helper(s):\n    return s\n\ndef f(s):\n    return helper(re.escape(s))\n");
    assert_eq!(all[1], Err((Reject::UsesFileLocal, "helper".into())));
    assert_eq!(
        reason("import re\nclass A:\n    pass\n\ndef f(s):\n    return A(re.escape(s))\n"),
        Reject::UsesFileLocal
    );
    // A module-level definition shadows the builtin.
    let all = run("import re\ndef open(p):\n    return p\n\ndef f(s):\n    return open(re.escape(s))\n");
    assert_eq!(all[1], Err((Reject::UsesFileLocal, "open".into())));
}

#[test]
fn undefined_and_star_and_relative() {
    assert_eq!(
        one("import re\n\ndef f(s):\n    return re.escape(s) + CONST\n"),
        Err((Reject::UndefinedName, "CONST".into()))
    );
    assert_eq!(
        reason("import re\nfrom os import *\n\ndef f(s):\n    return re.escape(getcwd())\n"),
        Reject::StarImport
    );
    assert_eq!(
        reason("import re\nfrom . import util\n\ndef f(s):\n    return util.g(re.escape(s))\n"),
        Reject::RelativeImport
    );
}

#[test]
fn recursion_is_fine() {
    let e = kept(
        "import math\n\ndef fact(n):\n    if n <= 1:\n        return 1\n    return n * fact(n - 1) * math.e ** 0\n",
    );
    assert_eq!(e.modules, vec!["math"]);
}

#[test]
fn structural_rejections() {
    assert_eq!(reason("import os\n\ndef f():\n    return os.getcwd()\n"), Reject::NoArguments);
    assert_eq!(reason("import os\n\ndef f(p):\n    os.remove(p)\n"), Reject::NoReturnValue);
    assert_eq!(reason("import os\n\ndef f(p):\n    os.remove(p)\n    return\n"), Reject::NoReturnValue);
    assert_eq!(
        reason("import os\n\ndef f(p):\n    def g():\n        return 1\n    return os.sep + p\n"),
        Reject::NestedDefinition
    );
    assert_eq!(reason("import os\n\ndef f(p):\n    class C: pass\n    return os.sep + p\n"), Reject::NestedDefinition);
    assert_eq!(reason("def f(p):\n    import os\n    return os.sep + p\n"), Reject::InnerImport);
    assert_eq!(reason("import os\nN = 0\ndef f(p):\n    global N\n    return os.sep + p\n"), Reject::GlobalStatement);
    assert_eq!(reason("import os\n\ndef f(p):\n    yield os.sep\n    return p\n"), Reject::Generator);
    assert_eq!(reason("import os\n\nasync def f(p):\n    return os.sep + p\n"), Reject::Async);
}

#[test]
fn keyword_only_and_starred_parameters_count_as_arguments() {
    kept("import os\n\ndef f(*, x):\n    return os.path.join(x)\n");
    kept("import os\n\ndef f(*parts):\n    return os.path.join(*parts)\n");
    kept("import os\n\ndef f(**kw):\n    return os.path.join(**kw)\n");
}

#[test]
fn size_limits() {
    let limits = Limits { min_lines: 3, max_lines: 4, max_line_chars: 40, max_file_bytes: 200, ..Limits::default() };
    let check = |src: &str| match extract(src, &Packages::bigcodebench(), &limits) {
        FileOutcome::Functions(mut f) => f.remove(0).err().map(|e| e.reason),
        FileOutcome::Skipped(r) => Some(r),
    };
    assert_eq!(check("import os\ndef f(p):\n    return os.sep + p\n"), Some(Reject::TooShort));
    assert_eq!(
        check("import os\ndef f(p):\n    a = 1\n    b = 2\n    c = 3\n    return os.sep + p\n"),
        Some(Reject::TooLong)
    );
    assert_eq!(
        check("import os\ndef f(p):\n    a = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'\n    return os.sep + p\n"),
        Some(Reject::LongLine)
    );
    assert_eq!(check(&format!("import os\n# {}\n", "x".repeat(300))), Some(Reject::FileTooLarge));
}

#[test]
fn local_bindings_shadow_imports_and_are_not_free() {
    // `re` is a parameter here, so the module import is not needed, and nothing else is used.
    assert_eq!(reason("import re\n\ndef f(re):\n    return re.x\n"), Reject::NoModule);
    let src = "import math\n\ndef f(xs, k=2, *rest, scale: float = 1.0, **kw):\n    total = 0\n    for i, (a, b) in enumerate(xs):\n        total += a * b\n    with open('f') as fh, open('g') as (gh):\n        pass\n    try:\n        pass\n    except ValueError as err:\n        print(err)\n    if (n := len(xs)) > 0:\n        total /= n\n    ys = [y for y in xs if y]\n    g = lambda t, u=1: t + u\n    del ys\n    return math.sqrt(total) * k * scale + g(1)\n";
    let e = kept(src);
    assert_eq!(e.imports, vec!["import math"]);
}

#[test]
fn keyword_arguments_and_attributes_are_not_names() {
    let e = kept("import numpy as np\n\ndef f(x):\n    return np.sum(x, axis=0).T.mean(keepdims=True)\n");
    assert_eq!(e.modules, vec!["numpy"]);
}

#[test]
fn names_in_fstrings_annotations_defaults_and_decorators_count() {
    assert_eq!(reason("import re\n\ndef f(s):\n    return f'{re.escape(s)} {WIDTH}'\n"), Reject::UndefinedName);
    let e = kept("from typing import List\nimport re\n\ndef f(s: List[str]) -> List[str]:\n    return [re.escape(x) for x in s]\n");
    assert_eq!(e.imports, vec!["import re", "from typing import List"]);
    let e =
        kept("import functools\nimport re\n\n@functools.lru_cache(maxsize=None)\ndef f(s):\n    return re.escape(s)\n");
    assert_eq!(e.imports, vec!["import functools", "import re"]);
    assert_eq!(e.lines, (4, 6));
    assert!(e.text.starts_with("@functools.lru_cache"));
    assert_eq!(e.signature, "def f(s):");
    assert_eq!(reason("import re\nD = 1\n\ndef f(s, d=D):\n    return re.escape(s) * d\n"), Reject::UsesFileLocal);
}

#[test]
fn header_names_resolve_in_module_scope() {
    // A default named like its parameter reads the module-level name.
    let src = "import re\nfrom yaml import Dumper\n\ndef dump(data, Dumper=Dumper):\n    return re.escape(str(Dumper(data)))\n";
    assert_eq!(kept(src).imports, vec!["import re", "from yaml import Dumper"]);
    let src = "import re\nPAT = 1\n\ndef f(s, PAT=PAT):\n    return re.escape(s) * PAT\n";
    assert_eq!(one(src), Err((Reject::UsesFileLocal, "PAT".into())));
    // Generic annotations read their arguments; a lambda default binds its own parameter.
    let src = "import re\n\ndef f(xs: list[Pattern], key=lambda v: v) -> dict[str, Pattern]:\n    return {re.escape(x): x for x in xs}\n";
    assert_eq!(one(src), Err((Reject::UndefinedName, "Pattern".into())));
    let src = "import re\nfrom typing import Any\n\ndef f(xs: list[Any], key=lambda v: v):\n    return [re.escape(key(x)) for x in xs]\n";
    assert_eq!(kept(src).imports, vec!["import re", "from typing import Any"]);
}

#[test]
fn signature_and_docstring() {
    let e = kept("import re\n\ndef f(s: str,\n      n: int = 2) -> str:  # note\n    \"\"\"Escape s.\"\"\"\n    return re.escape(s) * n\n");
    assert_eq!(e.signature, "def f(s: str,\n      n: int = 2) -> str:");
    assert_eq!(e.docstring.as_deref(), Some("\"\"\"Escape s.\"\"\""));
}

#[test]
fn match_statement_captures_are_bound() {
    let src = "import math\n\ndef f(p):\n    match p:\n        case (x, y):\n            return math.hypot(x, y)\n        case {'r': r}:\n            return r\n        case Point(x=px):\n            return px\n    return 0\n";
    assert_eq!(one(src), Err((Reject::UndefinedName, "Point".into())));
}

#[test]
fn unparsable_and_python2_files_are_skipped() {
    let limits = Limits::default();
    let p = Packages::bigcodebench();
    assert!(matches!(extract("def f(x):\n    return x +\n", &p, &limits), FileOutcome::Skipped(Reject::SyntaxError)));
    assert!(matches!(
        extract("import os\ndef f(x):\n    print 'hi'\n    return x\n", &p, &limits),
        FileOutcome::Skipped(Reject::Python2)
    ));
    // Modern syntax parses: PEP 695 type parameters, match, walrus, f-strings with nested quotes.
    let modern = "import re\n\ndef first[T](xs: list[T], pat) -> T:\n    if (m := re.match(pat, f\"{xs[0]!r:>{10}}\")):\n        return xs[0]\n    return xs[-1]\n";
    assert_eq!(kept(modern).imports, vec!["import re"]);
}

#[test]
fn only_top_level_functions_are_considered() {
    let all = run("import re\nclass A:\n    def m(self, s):\n        return re.escape(s)\nif True:\n    def g(s):\n        return re.escape(s)\n");
    assert!(all.is_empty());
}
