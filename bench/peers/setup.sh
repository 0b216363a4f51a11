#!/usr/bin/env bash
# Create one virtualenv per peer tool under bench/peers/ (never in pyproject).
#
#   bench/peers/setup.sh            # both peers
#   bench/peers/setup.sh dlt        # only dlt
#
# Pinned versions so the benchmark numbers can be reproduced.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3.11}"
DLT_VERSION="${DLT_VERSION:-1.31.0}"
SNOWLOADER_VERSION="${SNOWLOADER_VERSION:-0.8.1}"

make_venv() {  # name, packages...
    local name="$1"; shift
    local venv="$here/.venv-$name"
    if [ ! -x "$venv/bin/python" ]; then
        "$python" -m venv "$venv"
        "$venv/bin/pip" install --quiet --upgrade pip
    fi
    "$venv/bin/pip" install --quiet "$@"
    echo "$name: $("$venv/bin/python" -m pip show "${1%%[[=]*}" | grep ^Version)"
}

for peer in "${@:-dlt snowloader}"; do
    for p in $peer; do
        case "$p" in
            dlt) make_venv dlt "dlt[sqlalchemy]==$DLT_VERSION" requests ;;
            snowloader) make_venv snowloader "snowloader==$SNOWLOADER_VERSION" ;;
            *) echo "unknown peer $p" >&2; exit 2 ;;
        esac
    done
done
