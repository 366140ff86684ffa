#!/usr/bin/env bash
# Set everything up and run the whole test suite:
#   1. scripts/setup.sh (system packages, .venv, the netlab kernel; Chromium for the browser tests;
#      QEMU and the VM's image, whose tests (tests/test_vm.py) run in the rootless pass)
#   2. pytest tests/ and nbval over notebooks/ (in the netlab kernel), as the current user
#   3. as root: all of it again as an unprivileged user, rootless (scripts/test-rootless.sh)
#
# Usage: scripts/test.sh [--quick] [--no-rootless] [--no-notebooks] [PYTEST_ARGS...]
#   --quick         no browser (install or tests) and no rootless run
#   --no-rootless   skip step 3
#   --no-notebooks  skip nbval
#   PYTEST_ARGS     go to the pytest run of tests/, e.g. `scripts/test.sh --quick -k magics -x`
# Environment: NETLAB_CELL_TIMEOUT (nbval, seconds, default 120), NETLAB_CELL_TIMEOUT_VM (nbval with the
#   lab in the VM, default 240), NETLAB_TEST_USER (netlab-test).
# Exit status: non-zero if anything failed, or if no test ran (pytest's exit 5 counts as failure).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

QUICK=0 ROOTLESS=1 NOTEBOOKS=1 ARGS=()
for a in "$@"; do
    case "$a" in
        --quick) QUICK=1; ROOTLESS=0 ;;
        --no-rootless) ROOTLESS=0 ;;
        --no-notebooks) NOTEBOOKS=0 ;;
        -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) ARGS+=("$a") ;;
    esac
done

step() { printf '\n==> test: [%4ss] %s\n' "$SECONDS" "$*"; }

step "setup"
if [ "$QUICK" = 1 ]; then
    scripts/setup.sh --extras test --vm
    ARGS=(--ignore=tests/browser ${ARGS[@]+"${ARGS[@]}"})
else
    scripts/setup.sh --extras test --browser --vm
fi
export PATH="$ROOT/.venv/bin:$PATH"
[ "$(id -u)" -eq 0 ] || export NETLAB_EXPECT_ROOTLESS=1  # an unprivileged user can only be rootless

failed=()
step "pytest tests/ as $(id -un)"
timeout -k 30 1800 python -m pytest -p no:cacheprovider -rfEs --durations=12 tests/ ${ARGS[@]+"${ARGS[@]}"} </dev/null \
    || failed+=("tests as $(id -un)")

# nbval runs every notebook three times in all: here (as root: the root mode's lab), and in the
# unprivileged pass (tests/test_binder.py: the rootless lab, in Binder's environment; then
# test-rootless.sh: the lab in the small VM, where the kernel refuses namespaces); each builds the
# lab its own way (README: "as root and rootless", "Where it runs"). Three notebooks at a time (pytest-xdist; --dist
# loadscope keeps each notebook's cells in one kernel, in order): each has a kernel and a lab of
# its own, and a run mostly waits for its pings and timeouts (about a quarter of a core, measured).
NBVAL_PARALLEL=(-n 3 --dist loadscope)
if [ "$NOTEBOOKS" = 1 ]; then
    step "nbval notebooks/ as $(id -un) (kernel netlab)"
    timeout -k 30 900 python -m pytest -p no:cacheprovider -rfEs --nbval "${NBVAL_PARALLEL[@]}" notebooks/ \
        --nbval-sanitize-with notebooks/sanitize.cfg --nbval-kernel-name netlab \
        --nbval-cell-timeout="${NETLAB_CELL_TIMEOUT:-120}" </dev/null || failed+=("notebooks as $(id -un)")
fi

# The suite again, rootless: what it checks goes through the sandbox, which root and an unprivileged
# user build differently (a user namespace first, with its limits); what does not depend on the
# mode (pure parsers, the package's shape, what a browser draws) is left out there (test-rootless.sh).
if [ "$ROOTLESS" = 1 ] && [ "$(id -u)" -eq 0 ]; then
    step "the same, rootless, as an unprivileged user"
    rootless_args=()
    [ "$NOTEBOOKS" = 1 ] || rootless_args+=(--no-notebooks)
    scripts/test-rootless.sh ${rootless_args[@]+"${rootless_args[@]}"} ${ARGS[@]+"${ARGS[@]}"} || failed+=("rootless")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    step "FAILED: ${failed[*]} (${SECONDS}s)"
    exit 1
fi
step "all passed (${SECONDS}s)"
