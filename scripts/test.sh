#!/usr/bin/env bash
# Set everything up and run the whole test suite.
#
# Usage: scripts/test.sh [--quick] [--no-rootless] [--help] [pytest args...] [-- pytest args...]
#
#   1. scripts/setup.sh --extras test --browser     (no --browser with --quick or NETLAB_SKIP_BROWSER=1)
#   2. as the current user: pytest tests/, then nbval over notebooks/ (netlab kernel)
#   3. as root only: the same again as the unprivileged user netlab-test, in a copy of the
#      repo under /tmp, with NETLAB_EXPECT_ROOTLESS=1                   (skipped by --quick)
#
#   --quick        skip the rootless run and the browser (chromium) install
#   --no-rootless  skip the rootless run only
#   other args     go to pytest, e.g. `scripts/test.sh -k magics -x`; file or directory
#                  arguments select what runs (tests/... -> pytest, notebooks/... -> nbval)
#
# Results: artifacts/junit-*.xml and artifacts/test-summary.txt. Exit status is non-zero if
# any run failed, or if no test ran at all (pytest exit code 5 everywhere).
# Environment: NETLAB_SKIP_BROWSER=1, NETLAB_TEST_BUDGET (seconds for the whole script,
#   default 1500), NETLAB_CELL_TIMEOUT (nbval, default 120), NETLAB_TEST_USER (netlab-test).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

QUICK=0
ROOTLESS=1
PYTEST_ARGS=()
while [ "$#" -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1; ROOTLESS=0; shift ;;
        --no-rootless) ROOTLESS=0; shift ;;
        -h|--help) sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; PYTEST_ARGS+=("$@"); break ;;
        *) PYTEST_ARGS+=("$1"); shift ;;
    esac
done

BUDGET="${NETLAB_TEST_BUDGET:-1500}"
DEADLINE=$((SECONDS + BUDGET))
CELL_TIMEOUT="${NETLAB_CELL_TIMEOUT:-120}"
TEST_USER="${NETLAB_TEST_USER:-netlab-test}"
ART="$ROOT/artifacts"
VENV="$ROOT/.venv"
IS_ROOT=0
[ "$(id -u)" -eq 0 ] && IS_ROOT=1

step() { printf '\n==> test: [%4ss] %s\n' "$SECONDS" "$*"; }
warn() { printf 'test.sh: warning: %s\n' "$*" >&2; }

# ------------------------------------------------------------ split pass-through arguments
# Options stay options; existing file/dir arguments pick what runs (tests vs notebooks).
OPTS=() TEST_PATHS=() NB_PATHS=()
VALUE_OPTS=" -k -m -p -o -c -W -r -n --deselect --ignore --ignore-glob --junitxml --junit-xml
 --rootdir --confcutdir --timeout --maxfail --tb --durations --basetemp --log-level
 --log-cli-level --capture --import-mode --override-ini --nbval-cell-timeout "
expect_value=0
for a in ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"}; do
    if [ "$expect_value" = 1 ]; then OPTS+=("$a"); expect_value=0; continue; fi
    case "$a" in
        -*) OPTS+=("$a"); case "$VALUE_OPTS" in *" $a "*|*" $a"$'\n'*) expect_value=1 ;; esac; continue ;;
    esac
    rel="${a#"$ROOT"/}"
    if [ -e "${rel%%::*}" ]; then
        case "${rel%%::*}" in
            notebooks|notebooks/*|*.ipynb) NB_PATHS+=("$rel") ;;
            *) TEST_PATHS+=("$rel") ;;
        esac
    else
        OPTS+=("$a")
    fi
done
RUN_TESTS=1 RUN_NB=1
if [ "${#TEST_PATHS[@]}" -gt 0 ] || [ "${#NB_PATHS[@]}" -gt 0 ]; then
    [ "${#TEST_PATHS[@]}" -gt 0 ] || RUN_TESTS=0
    [ "${#NB_PATHS[@]}" -gt 0 ] || RUN_NB=0
fi
[ "${#TEST_PATHS[@]}" -gt 0 ] || TEST_PATHS=(tests/)
[ "${#NB_PATHS[@]}" -gt 0 ] || NB_PATHS=(notebooks/)

# ------------------------------------------------------------ result bookkeeping
R_RUN=() R_WHAT=() R_STATUS=() R_DETAIL=()
record() { R_RUN+=("$1"); R_WHAT+=("$2"); R_STATUS+=("$3"); R_DETAIL+=("${4:-}"); }

junit_counts() {  # $1 = junit xml -> "N passed, N failed, ..." (empty if unreadable)
    [ -s "$1" ] || return 0
    "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null || true
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
n = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
for s in suites:
    for k in n:
        n[k] += int(s.get(k, 0) or 0)
if not n["tests"]:
    sys.exit(0)
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
parts = [f"{passed} passed"]
parts += [f"{n[k]} {k if k != 'failures' else 'failed'}" for k in ("failures", "errors", "skipped") if n[k]]
print(", ".join(parts))
EOF
}

status_of() {  # $1 = pytest exit code
    case "$1" in
        0) echo passed ;;
        5) echo "no tests" ;;
        124|137) echo TIMEOUT ;;
        *) echo "FAILED (exit $1)" ;;
    esac
}

# Run a command with what is left of the time budget.
with_deadline() {
    local left=$((DEADLINE - SECONDS))
    if [ "$left" -le 10 ]; then
        warn "time budget (NETLAB_TEST_BUDGET=${BUDGET}s) used up, not running: $*"
        return 124
    fi
    if [ -t 0 ]; then
        timeout --foreground -k 30 "$left" "$@"
    else
        timeout -k 30 "$left" "$@"
    fi
}

# run_suite RUN WORKDIR PYTHON JUNIT_PREFIX [runner...]
# Runs pytest over tests/ then nbval over notebooks/ in WORKDIR with PYTHON, prefixed by runner.
run_suite() {
    local run="$1" wd="$2" py="$3" jprefix="$4"
    shift 4
    local runner=("$@") rc junit
    local common=(-p no:cacheprovider -rfEs)

    if [ "$RUN_TESTS" = 1 ]; then
        step "$run: pytest ${TEST_PATHS[*]} ${OPTS[*]+${OPTS[*]}}"
        junit="$wd/artifacts/${jprefix}-tests.xml"
        rm -f "$junit"
        rc=0
        (cd "$wd" && with_deadline ${runner[@]+"${runner[@]}"} "$py" -m pytest "${common[@]}" \
            --junitxml="$junit" ${OPTS[@]+"${OPTS[@]}"} "${TEST_PATHS[@]}") </dev/null || rc=$?
        record "$run" tests "$(status_of "$rc")" "$(junit_counts "$junit")"
    fi

    if [ "$RUN_NB" = 1 ]; then
        local nbs
        nbs="$(find "$wd/notebooks" -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null | head -n 1 || true)"
        if [ -z "$nbs" ]; then
            step "$run: nbval skipped: no notebooks/*.ipynb"
            record "$run" notebooks skipped "no notebooks"
        elif [ ! -f "$wd/notebooks/sanitize.cfg" ]; then
            step "$run: nbval skipped: notebooks/sanitize.cfg is missing"
            warn "notebooks exist but notebooks/sanitize.cfg does not; notebooks NOT tested"
            record "$run" notebooks skipped "notebooks/sanitize.cfg missing"
        elif ! (cd "$wd" && ${runner[@]+"${runner[@]}"} "$(dirname "$py")/jupyter-kernelspec" list 2>/dev/null) \
                | grep -q '^ *netlab '; then
            step "$run: nbval: the netlab kernelspec is not installed"
            record "$run" notebooks "FAILED" "netlab kernelspec not installed (needs netlab_magic/__main__.py install-kernel)"
        else
            step "$run: nbval ${NB_PATHS[*]} (kernel netlab)"
            junit="$wd/artifacts/${jprefix}-notebooks.xml"
            rm -f "$junit"
            rc=0
            (cd "$wd" && with_deadline ${runner[@]+"${runner[@]}"} "$py" -m pytest "${common[@]}" \
                --junitxml="$junit" --nbval --nbval-sanitize-with notebooks/sanitize.cfg \
                --nbval-kernel-name netlab --nbval-cell-timeout="$CELL_TIMEOUT" \
                ${OPTS[@]+"${OPTS[@]}"} "${NB_PATHS[@]}") </dev/null || rc=$?
            record "$run" notebooks "$(status_of "$rc")" "$(junit_counts "$junit")"
        fi
    fi
}

# ------------------------------------------------------------ 1. setup
step "setup"
setup_args=(--extras test)
if [ "$QUICK" = 1 ] || [ "${NETLAB_SKIP_BROWSER:-0}" = 1 ]; then
    :
else
    setup_args+=(--browser)
fi
"$ROOT/scripts/setup.sh" "${setup_args[@]}"
mkdir -p "$ART"

# ------------------------------------------------------------ 2. as the current user
if [ "$IS_ROOT" = 1 ]; then
    RUN1="root"
else
    RUN1="user $(id -un)"
    export NETLAB_EXPECT_ROOTLESS=1   # an unprivileged user can only take the rootless path
fi
PATH="$VENV/bin:$PATH" run_suite "$RUN1" "$ROOT" "$VENV/bin/python" "junit-$( [ "$IS_ROOT" = 1 ] && echo root || echo user)"

# ------------------------------------------------------------ 3. again as an unprivileged user
RL_TMP=""
cleanup() {
    if [ -n "$RL_TMP" ] && [ -d "$RL_TMP" ]; then
        rm -rf -- "$RL_TMP" || warn "could not remove $RL_TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

copy_tree() {  # copy tracked + untracked-not-ignored files of $ROOT into $1
    local dst="$1"
    if git -C "$ROOT" -c safe.directory="$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" -c safe.directory="$ROOT" ls-files -z --cached --others --exclude-standard \
            | while IFS= read -r -d '' f; do
                  case "$f" in .venv/*|artifacts/*) continue ;; esac
                  if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
              done \
            | tar -C "$ROOT" --null --no-recursion -T - -cf - \
            | tar -C "$dst" --no-same-owner -xf -
    else
        tar -C "$ROOT" --exclude=./.venv --exclude=./.git --exclude=./artifacts \
            --exclude=__pycache__ --exclude=.pytest_cache --exclude=.ipynb_checkpoints -cf - . \
            | tar -C "$dst" --no-same-owner -xf -
    fi
}

rootless_run() {
    local run="rootless $TEST_USER"
    step "$run: preparing"
    if ! getent passwd "$TEST_USER" >/dev/null; then
        useradd --system --user-group --home-dir "/var/tmp/$TEST_USER" --no-create-home \
            --shell /usr/sbin/nologin --comment "netlab_magic rootless test user" "$TEST_USER" \
            || { record "$run" setup FAILED "useradd $TEST_USER failed"; return 0; }
        echo "    created system user $TEST_USER (no password, no sudo)"
    fi
    local uid gid
    uid="$(id -u "$TEST_USER")"
    gid="$(id -g "$TEST_USER")"
    if [ "$uid" -eq 0 ]; then
        record "$run" setup FAILED "$TEST_USER has uid 0"; return 0
    fi

    RL_TMP="$(mktemp -d "${NETLAB_ROOTLESS_TMPDIR:-/tmp}/netlab-rootless.XXXXXX")"
    local repo="$RL_TMP/repo" home="$RL_TMP/home"
    mkdir -p "$repo" "$home" "$RL_TMP/tmp"
    if ! copy_tree "$repo"; then
        record "$run" setup FAILED "copying the repo to $repo failed"; return 0
    fi
    local d
    for d in tests notebooks; do   # git does not carry empty directories
        if [ -d "$ROOT/$d" ]; then mkdir -p "$repo/$d"; fi
    done
    echo "    copied $(find "$repo" -type f | wc -l) files to $repo"

    # The venv is built by root (reusing root's pip cache), from /usr/bin/python3 so that the
    # unprivileged user can execute it, then handed over to that user.
    if ! "$repo/scripts/setup.sh" --venv "$repo/.venv" --extras test --kernel none --skip-system; then
        record "$run" setup FAILED "setup.sh for the copy failed"; return 0
    fi
    mkdir -p "$repo/artifacts"
    chown -R "$uid:$gid" "$RL_TMP"

    # setpriv: no PAM session, no supplementary groups, no capabilities; env -i: a clean env
    # (root's PATH may point into /root, which the user cannot read).
    local envv=(HOME="$home" USER="$TEST_USER" LOGNAME="$TEST_USER" TMPDIR="$RL_TMP/tmp"
                PATH="$repo/.venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                LANG=C.UTF-8 NETLAB_EXPECT_ROOTLESS=1 PYTHONUNBUFFERED=1)
    local v
    for v in CI TERM NO_COLOR PY_COLORS $(compgen -e | grep '^NETLAB_' || true); do
        [ "$v" = NETLAB_EXPECT_ROOTLESS ] && continue
        [ -n "${!v+x}" ] && envv+=("$v=${!v}")
    done
    local as_user=(setpriv --reuid="$uid" --regid="$gid" --init-groups --inh-caps=-all
                   -- env -i "${envv[@]}")

    # Preflight: the venv is usable and user namespaces work for this user.
    if ! (cd "$repo" && "${as_user[@]}" "$repo/.venv/bin/python" -c 'import netlab_magic') </dev/null; then
        record "$run" setup FAILED "$TEST_USER cannot run the venv python / import netlab_magic"; return 0
    fi
    if (cd "$repo" && "${as_user[@]}" unshare -Urn ip link add v1 type veth peer name v2) </dev/null; then
        echo "    user namespaces: ok (unshare -Urn + veth as $TEST_USER)"
    else
        record "$run" setup FAILED "unprivileged user namespaces do not work here (unshare -Urn)"; return 0
    fi
    if [ -f "$repo/netlab_magic/__main__.py" ]; then
        echo "    kernelspec: netlab_magic install-kernel --user (as $TEST_USER)"
        if ! (cd "$repo" && "${as_user[@]}" "$repo/.venv/bin/python" -m netlab_magic install-kernel --user) \
                </dev/null >"$RL_TMP/kernel.log" 2>&1; then
            cat "$RL_TMP/kernel.log" >&2
            record "$run" setup FAILED "install-kernel --user failed"; return 0
        fi
    else
        echo "    kernelspec: NOT installed: netlab_magic/__main__.py does not exist yet"
    fi

    run_suite "$run" "$repo" "$repo/.venv/bin/python" junit-rootless "${as_user[@]}"
    cp -f "$repo"/artifacts/junit-rootless-*.xml "$ART/" 2>/dev/null || true
}

if [ "$ROOTLESS" = 0 ]; then
    why=$([ "$QUICK" = 1 ] && echo --quick || echo --no-rootless)
    step "rootless run skipped ($why)"
    record "rootless" all skipped "$why"
elif [ "$IS_ROOT" = 0 ]; then
    step "rootless run skipped: not root (the run above was already unprivileged)"
    record "rootless" all skipped "not root; the run above was already unprivileged"
else
    rootless_run
    cleanup
    RL_TMP=""
fi

# ------------------------------------------------------------ 4. summary
fail=0 ran=0
{
    echo
    echo "==> test: results"
    for i in "${!R_RUN[@]}"; do
        printf '    %-22s %-10s %-16s %s\n' "${R_RUN[$i]}" "${R_WHAT[$i]}" "${R_STATUS[$i]}" "${R_DETAIL[$i]}"
    done
} | tee "$ART/test-summary.txt"

line="" prev=""
for i in "${!R_RUN[@]}"; do
    case "${R_STATUS[$i]}" in
        passed) ran=1 ;;
        "no tests"|skipped) ;;
        *) fail=1 ;;
    esac
    if [ "${R_RUN[$i]}" != "$prev" ]; then
        [ -z "$line" ] || line+=" | "
        line+="${R_RUN[$i]}:"
        prev="${R_RUN[$i]}"
    else
        line+=","
    fi
    line+=" ${R_WHAT[$i]} ${R_STATUS[$i]}${R_DETAIL[$i]:+ (${R_DETAIL[$i]})}"
done
if [ "$fail" = 0 ] && [ "$ran" = 0 ]; then
    fail=1
    line+=" -- no test ran at all"
fi
verdict=$([ "$fail" = 0 ] && echo PASS || echo FAIL)
printf 'SUMMARY: %s => %s (%ss)\n' "$line" "$verdict" "$SECONDS" | tee -a "$ART/test-summary.txt"
exit "$fail"
