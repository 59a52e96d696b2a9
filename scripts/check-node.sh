#!/usr/bin/env bash
# Fail clearly unless Node.js >= 18.3 is on PATH (util.parseArgs) (the JS asset set-up and the
# Node.js leak-lab scenarios need it). With --npm, also make sure npm is there:
# Debian packages it apart from nodejs, so install it when it's missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
min=18.3

if ! command -v node >/dev/null 2>&1; then
    echo "error: memdash needs Node.js >= $min on PATH and found none." >&2
    echo "       Debian 12+: apt-get install nodejs npm   (or use nvm / NodeSource)" >&2
    exit 1
fi
# Compare major*1000+minor, so 18.3 <= 18.19 <= 20.0.
have=$(node -p 'const [a, b] = process.versions.node.split("."); a * 1000 + +b')
want=$(( ${min%.*} * 1000 + ${min#*.} ))
if ((have < want)); then
    echo "error: memdash needs Node.js >= $min; $(command -v node) is $(node --version)." >&2
    exit 1
fi
if [[ ${1:-} == --npm ]] && ! command -v npm >/dev/null 2>&1; then
    bash "$here/apt-ensure.sh" npm=npm
fi
