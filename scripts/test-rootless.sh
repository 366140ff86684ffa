#!/usr/bin/env bash
# As root: run the test suite (and nbval) again as an unprivileged user, the rootless way.
# (With no PYTEST_ARGS, nbval runs inside the suite: tests/test_binder.py, in Binder's environment.)
#
# A system user (NETLAB_TEST_USER, default netlab-test: no password, no sudo) gets a copy of the
# repo under /tmp with a virtualenv of its own, installs the "Python 3 (netlab)" kernel for
# itself, and runs pytest and nbval with NETLAB_EXPECT_ROOTLESS=1 in a clean environment
# (setpriv: no capabilities, no supplementary groups). The copy is removed afterwards.
#
# Usage (called by scripts/test.sh): scripts/test-rootless.sh [--no-notebooks] [PYTEST_ARGS...]
# Unless --no-notebooks, nbval also runs over the whole workbook with the lab in the VM (below).
# With test files (or folders, or FILE::TEST) among PYTEST_ARGS, only those run, whatever their
# mode; without, the whole of tests/ but for the tests that do not depend on the mode.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
USER_NAME="${NETLAB_TEST_USER:-netlab-test}"
NOTEBOOKS=1 ARGS=()
for a in "$@"; do
    case "$a" in --no-notebooks) NOTEBOOKS=0 ;; *) ARGS+=("$a") ;; esac
done
[ "$(id -u)" -eq 0 ] || { echo "test-rootless.sh: run it as root" >&2; exit 2; }

getent passwd "$USER_NAME" >/dev/null || useradd --system --user-group --no-create-home \
    --home-dir "/var/tmp/$USER_NAME" --shell /usr/sbin/nologin "$USER_NAME"
uid="$(id -u "$USER_NAME")" gid="$(id -g "$USER_NAME")"

TMP="$(mktemp -d /tmp/netlab-rootless.XXXXXX)"
trap 'rm -rf -- "$TMP"' EXIT
repo="$TMP/repo"
mkdir -p "$repo" "$TMP/home" "$TMP/tmp"
# the files git knows of (tracked, and new ones not ignored): what a fresh clone would hold
git -C "$ROOT" -c safe.directory="$ROOT" ls-files -z --cached --others --exclude-standard \
    | (cd "$ROOT" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' _) \
    | tar -C "$ROOT" --null -T - -cf - | tar -C "$repo" --no-same-owner -xf -
# the venv is built by root (its pip cache), from /usr/bin/python3 so that the user can run it
"$repo/scripts/setup.sh" --venv "$repo/.venv" --extras test --kernel none --skip-system
chown -R "$uid:$gid" "$TMP"

as_user=(setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all -- env -i
         HOME="$TMP/home" USER="$USER_NAME" LOGNAME="$USER_NAME" TMPDIR="$TMP/tmp" LANG=C.UTF-8
         PATH="$repo/.venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
         NETLAB_EXPECT_ROOTLESS=1 PYTHONUNBUFFERED=1 ${CI:+CI=$CI})
cd "$repo"
"${as_user[@]}" python -m netlab_magic install-kernel --user </dev/null

# Tests that do not depend on the privilege mode (pure models, parsers, the package's shape, the
# widgets' layout and rendering) ran once already, in the root pass: not again here. The browser
# tests check what JupyterLab draws from a widget's state; the widgets' reading of a rootless lab
# is checked here by tests/test_widgets_lab.py, a rootless kernel behind JupyterLab by test_hub.py.
SAME_IN_BOTH_MODES=(tests/test_docker_rules.py tests/test_dependencies.py tests/test_docker_inspect.py tests/test_docker28.py tests/test_docker_verdict.py
                    tests/test_troubleshoot_answers.py tests/test_trace_checks.py tests/test_trace_parse.py
                    tests/test_shape.py tests/test_names.py tests/test_notebooks.py tests/test_vm_pieces.py tests/test_process.py
                    tests/test_widgets_counters.py tests/test_widgets_draw.py tests/test_widgets_iptables.py
                    tests/test_widgets_layout.py tests/test_widgets_poll.py tests/test_widgets_static.py
                    tests/test_widgets_topology.py
                    tests/test_workbook_kernel.py tests/test_trace_picture.py
                    tests/browser/test_widgets_browser.py tests/browser/test_demo2_browser.py tests/browser/test_trace_browser.py)
# the tests named on the command line, if any (an option's value, like -k's, names no file)
named=0
for a in ${ARGS[@]+"${ARGS[@]}"}; do
    case "$a" in -*) ;; *) [ -e "${a%%::*}" ] && named=1 ;; esac
done
ignore=() targets=()
if [ "$named" = 0 ]; then
    targets=(tests/)
    for f in "${SAME_IN_BOTH_MODES[@]}"; do [ -e "$f" ] && ignore+=(--ignore="$f"); done
fi

failed=0
timeout -k 30 1800 "${as_user[@]}" python -m pytest -p no:cacheprovider -rfEs --durations=12 \
    ${ignore[@]+"${ignore[@]}"} ${targets[@]+"${targets[@]}"} ${ARGS[@]+"${ARGS[@]}"} </dev/null || failed=1
# nbval as this user: tests/test_binder.py runs it over every notebook, in Binder's own environment
# (binder/requirements.txt + postBuild). Run here only when PYTEST_ARGS may have left that test out.
if [ "$NOTEBOOKS" = 1 ] && [ "${#ARGS[@]}" -gt 0 ]; then
    timeout -k 30 900 "${as_user[@]}" python -m pytest -p no:cacheprovider -rfEs --nbval -n 3 --dist loadscope notebooks/ \
        --nbval-sanitize-with notebooks/sanitize.cfg --nbval-kernel-name netlab \
        --nbval-cell-timeout="${NETLAB_CELL_TIMEOUT:-120}" </dev/null || failed=1
fi
# The whole workbook again with the lab in the small VM (NETLAB_BACKEND=vm; issue 22), as this
# unprivileged user (QEMU needs no privilege), against the same stored outputs (the in-kernel
# run's: notebooks/sanitize.cfg says what may differ). It is the VM backend's promise, "every cell
# works the same", checked cell by cell; tests/test_vm.py keeps what no notebook does (a kernel
# that chooses the VM itself, kill -9, a killed VM, an interrupt, bad input). Three notebooks at a
# time, a VM each: under TCG (no KVM) a run mostly waits for its boots, pings and timeouts.
if [ "$NOTEBOOKS" = 1 ]; then
    if vm_missing="$("${as_user[@]}" python -c 'from netlab_magic.backend import vm_ready; print(vm_ready() or "")' </dev/null)" \
            && [ -z "$vm_missing" ]; then
        timeout -k 30 900 "${as_user[@]}" NETLAB_BACKEND=vm python -m pytest -p no:cacheprovider -rfEs --nbval \
            -n 3 --dist loadscope notebooks/ --nbval-sanitize-with notebooks/sanitize.cfg --nbval-kernel-name netlab \
            --nbval-cell-timeout="${NETLAB_CELL_TIMEOUT_VM:-240}" </dev/null || failed=1
    else
        echo "test-rootless.sh: FAILED: the workbook in the VM cannot run: ${vm_missing:-vm_ready() failed}" >&2
        failed=1
    fi
fi
exit "$failed"
