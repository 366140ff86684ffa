#!/usr/bin/env bash
# Run notebooks top to bottom in the netlab kernel and store them as JupyterLab saves a run.
#
# JupyterLab shows consecutive stream outputs of one name (stdout, stderr) as one block and
# saves them so; nbconvert stores each message the kernel sent as an output of its own (a ping
# that waited for its answer: one per burst). The second pass merges them as JupyterLab does
# (nbconvert's CoalesceStreamsPreprocessor), so a stored ping is one block, as a learner's is.
# tests/test_notebooks.py checks it; nbval compares the outputs (scripts/test.sh).
#
# Usage: scripts/run-notebooks.sh notebooks/NN-name.ipynb...   (uses .venv: scripts/setup.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
[ "$#" -gt 0 ] || { sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }
export PATH="$ROOT/.venv/bin:$PATH"
for nb in "$@"; do
    jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=netlab \
        --ExecutePreprocessor.timeout=300 "$nb"
    jupyter nbconvert --to notebook --inplace --CoalesceStreamsPreprocessor.enabled=True "$nb"
done
