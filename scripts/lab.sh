#!/usr/bin/env bash
# Set everything up (scripts/setup.sh --extras lab) and start JupyterLab on notebooks/.
#
# Usage: scripts/lab.sh [jupyter lab arguments...]
#   e.g. scripts/lab.sh --ip=0.0.0.0 --port=8890 --no-browser
# As root, --allow-root is added. Extra arguments are passed to `jupyter lab` unchanged.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

case "${1:-}" in
    -h|--help) sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac

"$ROOT/scripts/setup.sh" --extras lab

if [ ! -d "$ROOT/notebooks" ]; then
    printf 'lab.sh: error: %s/notebooks does not exist\n' "$ROOT" >&2
    exit 1
fi

args=(--notebook-dir="$ROOT/notebooks")
if [ "$(id -u)" -eq 0 ]; then
    args+=(--allow-root)
fi

export PATH="$ROOT/.venv/bin:$PATH"
printf '==> lab: starting JupyterLab on %s/notebooks (Ctrl-C to stop)\n' "$ROOT"
exec "$ROOT/.venv/bin/jupyter" lab "${args[@]}" "$@"
