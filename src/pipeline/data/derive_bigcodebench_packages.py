#!/usr/bin/env python3
"""Derive the default package allow-list from BigCodeBench's `libs` field.

Usage: python3 derive_bigcodebench_packages.py BigCodeBench-v0.1.4.reconstructed.jsonl.gz > bigcodebench_packages.txt

The `libs` field is a Python-list string of the top-level *import* names each task uses (e.g. `sklearn`,
`PIL`, `cv2`, `bs4`, `dateutil`, `yaml`, `Crypto`), which is exactly what the retrieve stage matches
imports against. Where the pip distribution name differs, it is recorded as a trailing comment so a
later stage can install the packages.
"""
import ast
import gzip
import json
import sys

# Import name -> pip distribution name, where they differ (stdlib modules have none).
PIP_NAMES = {
    "Crypto": "pycryptodome", "Levenshtein": "python-Levenshtein", "PIL": "pillow", "bs4": "beautifulsoup4",
    "cv2": "opencv-python", "dateutil": "python-dateutil", "docx": "python-docx", "faker": "Faker",
    "flask_login": "Flask-Login", "flask_mail": "Flask-Mail", "flask_restful": "Flask-RESTful",
    "flask_wtf": "Flask-WTF", "mpl_toolkits": "matplotlib", "python_http_client": "python-http-client",
    "skimage": "scikit-image", "sklearn": "scikit-learn", "yaml": "PyYAML",
}


def main(path):
    counts = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            for lib in ast.literal_eval(json.loads(line)["libs"]):
                counts[lib] = counts.get(lib, 0) + 1
    stdlib = sys.stdlib_module_names
    print("# BigCodeBench v0.1.4 libraries (the `libs` field), one top-level import name per line.")
    print(f"# {len(counts)} names, derived by derive_bigcodebench_packages.py; `# pip: NAME` where the")
    print("# distribution differs from the import name; `# stdlib` for the standard library.")
    for lib in sorted(counts, key=str.lower):
        note = "stdlib" if lib in stdlib else ("pip: " + PIP_NAMES.get(lib, lib))
        print(f"{lib}  # {note}, {counts[lib]} tasks")


if __name__ == "__main__":
    main(sys.argv[1])
