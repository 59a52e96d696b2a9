#!/usr/bin/env bash
# Create the project's virtualenv if it is missing or broken.
#
#   scripts/make-venv.sh [PYTHON] [DIR]      (defaults: python3 .venv)
#
# Debian's own python3 ships venv's pip bootstrap in a separate package
# (python3.X-venv); when that is what's missing, install it and try again.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${1:-python3}
dir=${2:-.venv}

if [[ -x $dir/bin/pip ]] && "$dir/bin/python" -c '' 2>/dev/null; then
    exit 0
fi

if ! command -v "$py" >/dev/null 2>&1; then
    echo "error: $py not found; memdash needs Python >= 3.9 (Debian: apt-get install python3 python3-venv)" >&2
    exit 1
fi
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
    echo "error: memdash needs Python >= 3.9, $py is $("$py" --version 2>&1)" >&2
    exit 1
fi

rm -rf "$dir"
echo ">> creating $dir with $("$py" --version 2>&1)" >&2
if "$py" -m venv "$dir"; then
    exit 0
fi
rm -rf "$dir"

# Most likely Debian's python3 without python3.X-venv (no ensurepip).
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
real=$(readlink -f "$(command -v "$py")")
if [[ $real == /usr/bin/python* ]] && command -v apt-get >/dev/null 2>&1; then
    bash "$here/apt-ensure.sh" "/usr/lib/python$ver/ensurepip/__init__.py=python$ver-venv"
    "$py" -m venv "$dir" && exit 0
    rm -rf "$dir"
fi
echo "error: '$py -m venv $dir' failed; on Debian/Ubuntu: apt-get install python$ver-venv" >&2
exit 1
