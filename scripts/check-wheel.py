"""Check that a built memdash wheel is self-contained: JS asset, static files, templates.

Usage: python scripts/check-wheel.py dist/memdash-*.whl
"""

import sys
import zipfile

REQUIRED = ["dashboard/_assets/socket.io.min.js", "dashboard/__init__.py"]
PREFIXES = ["dashboard/static/", "dashboard/templates/"]


def main(paths):
    if len(paths) != 1:
        sys.exit(f"expected exactly one wheel, got {paths}")
    names = zipfile.ZipFile(paths[0]).namelist()
    problems = [f"missing {n}" for n in REQUIRED if n not in names]
    problems += [f"nothing under {p}" for p in PREFIXES if not any(n.startswith(p) for n in names)]
    for n in REQUIRED:
        if n in names:
            print(f"  ok  {n}")
    for p in PREFIXES:
        count = sum(n.startswith(p) for n in names)
        if count:
            print(f"  ok  {p} ({count} files)")
    if problems:
        sys.exit(f"{paths[0]}: " + "; ".join(problems))
    print(f"{paths[0]}: {len(names)} files, self-contained")


if __name__ == "__main__":
    main(sys.argv[1:])
