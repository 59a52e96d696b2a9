#!/usr/bin/env bash
# Install Debian packages only when something is missing.
#
#   scripts/apt-ensure.sh /usr/bin/chromium=chromium redis-server=redis-server
#
# Each argument is WHAT=PACKAGE. WHAT is an absolute path (present when it exists) or
# a command name (present when on PATH). When all are present this does nothing and
# touches no network; otherwise it runs `apt-get update` once and installs the missing
# packages, as root directly or through sudo.
set -euo pipefail

missing=()
for arg in "$@"; do
    what=${arg%%=*}
    pkg=${arg#*=}
    if [[ $what == /* ]]; then
        [[ -e $what ]] && continue
    else
        command -v "$what" >/dev/null 2>&1 && continue
    fi
    missing+=("$pkg")
done
((${#missing[@]} == 0)) && exit 0

echo ">> installing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) == 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "error: need root or sudo to install: ${missing[*]}" >&2
    echo "       run: apt-get install ${missing[*]}   (as root), then try again" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: apt-get not found (memdash's set-up expects Debian); install these yourself: ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q "${missing[@]}"
