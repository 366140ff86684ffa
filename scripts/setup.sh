#!/usr/bin/env bash
# Set up everything netlab_magic needs, idempotently:
#   1. Debian packages (apt-get as root, else `sudo -n apt-get`, else an error)
#   2. a virtualenv (.venv in the repo root) made from Debian's /usr/bin/python3
#   3. the project, installed editable with the chosen extras
#   4. the "netlab" Jupyter kernelspec
#   5. with the test extra: configurable-http-proxy (npm) in the venv, for the JupyterHub test
#   6. with --vm: QEMU and kmod (step 1), then the VM's image from Debian's kernel and busybox
#      packages (netlab-magic vm prepare): as root into /var/cache/netlab-magic/vm for every
#      user, else into the user's cache. The lab runs in that VM where namespaces are refused.
#
# Usage: scripts/setup.sh [--extras test|lab|widgets|none] [--browser] [--vm]
#                         [--venv DIR] [--kernel sys-prefix|user|none]
#                         [--skip-system] [--help]
#
# Environment: NETLAB_PYTHON  interpreter to build the venv from (default: /usr/bin/python3,
#                             falling back to python3 on PATH; must be >= 3.11)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

EXTRAS="test"
BROWSER=0
VM=0
VENV="$ROOT/.venv"
KERNEL="sys-prefix"
SKIP_SYSTEM=0
MIN_PY="3.11"
SYSTEM_PACKAGES=(iproute2 iptables iputils-ping netcat-openbsd curl tcpdump conntrack git procps python3 python3-venv python3-dev util-linux)

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
step() { printf '==> setup: %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup.sh: error: %s\n' "$*" >&2; exit 1; }

while [ "$#" -gt 0 ]; do
    case "$1" in
        --extras) [ "$#" -ge 2 ] || die "--extras needs a value"; EXTRAS="$2"; shift 2 ;;
        --extras=*) EXTRAS="${1#*=}"; shift ;;
        --browser) BROWSER=1; shift ;;
        --vm) VM=1; shift ;;
        --venv) [ "$#" -ge 2 ] || die "--venv needs a value"; VENV="$2"; shift 2 ;;
        --venv=*) VENV="${1#*=}"; shift ;;
        --kernel) [ "$#" -ge 2 ] || die "--kernel needs a value"; KERNEL="$2"; shift 2 ;;
        --kernel=*) KERNEL="${1#*=}"; shift ;;
        --skip-system) SKIP_SYSTEM=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
case "$KERNEL" in sys-prefix|user|none) ;; *) die "--kernel must be sys-prefix, user or none" ;; esac
case "$EXTRAS" in none|"") SPEC="." ;; *) SPEC=".[$EXTRAS]" ;; esac
case "$VENV" in /*) ;; *) VENV="$PWD/$VENV" ;; esac
HUB=0  # the test extra brings JupyterHub, whose proxy comes from npm (step 5)
case ",$EXTRAS," in *,test,*) HUB=1 ;; esac
CHP_VERSION="4.6.3"  # configurable-http-proxy: 4.6 runs on Debian 12's nodejs 18 and on 20+

# ---------------------------------------------------------------- 1. system packages
install_system_packages() {
    local pkgs=("${SYSTEM_PACKAGES[@]}")
    [ "$BROWSER" = 1 ] && pkgs+=(chromium)
    [ "$VM" = 1 ] && pkgs+=(qemu-system-x86 kmod)
    # npm for the hub's proxy; a nodejs that already brings npm (NodeSource's) is kept as it is
    [ "$HUB" = 1 ] && ! command -v npm >/dev/null 2>&1 && pkgs+=(nodejs npm)
    if ! command -v dpkg-query >/dev/null 2>&1; then
        step "system packages: no dpkg here, not checking (${pkgs[*]})"
        return 0
    fi
    local missing=() p
    for p in "${pkgs[@]}"; do
        if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" != "ii " ]; then
            missing+=("$p")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        step "system packages: all present"
        return 0
    fi
    local apt=()
    if [ "$(id -u)" -eq 0 ]; then
        apt=(apt-get)
    elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        apt=(sudo -n apt-get)
    else
        die "missing system packages: ${missing[*]} (run: sudo apt-get install ${missing[*]})"
    fi
    step "system packages: installing ${missing[*]}"
    local log
    log="$(mktemp)"
    if ! { "${apt[@]}" -qq update \
           && DEBIAN_FRONTEND=noninteractive "${apt[@]}" -qq -y --no-install-recommends \
                -o Dpkg::Use-Pty=0 install "${missing[@]}"; } >"$log" 2>&1 </dev/null; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        die "apt-get install failed for: ${missing[*]}"
    fi
    rm -f "$log"
}

if [ "$SKIP_SYSTEM" = 1 ]; then
    step "system packages: skipped (--skip-system)"
else
    install_system_packages
fi

# ---------------------------------------------------------------- 2. virtualenv
py_ok() {  # $1 = interpreter; true if it runs and is >= MIN_PY
    "$1" -c "import sys; sys.exit(0 if sys.version_info >= tuple(map(int, '$MIN_PY'.split('.'))) else 1)" \
        >/dev/null 2>&1
}

pick_python() {
    local c
    for c in "${NETLAB_PYTHON:-}" /usr/bin/python3 "$(command -v python3 || true)"; do
        [ -n "$c" ] || continue
        if py_ok "$c"; then
            printf '%s\n' "$c"
            return 0
        fi
    done
    return 1
}

if [ -e "$VENV/bin/python" ] && py_ok "$VENV/bin/python"; then
    step "virtualenv: reusing $VENV ($("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])'))"
    home="$(sed -n 's/^home *= *//p' "$VENV/pyvenv.cfg" 2>/dev/null || true)"
    if [ -x /usr/bin/python3 ] && [ "$home" != "/usr/bin" ] && py_ok /usr/bin/python3; then
        note "note: this venv was made from $home, not /usr/bin/python3;"
        note "      delete $VENV and re-run if other users must execute it"
    fi
else
    if [ -e "$VENV" ]; then
        [ -f "$VENV/pyvenv.cfg" ] || die "$VENV exists but is not a virtualenv; move it away"
        step "virtualenv: $VENV is broken or too old, recreating"
        rm -rf -- "$VENV"
    fi
    PY="$(pick_python)" || die "need Python >= $MIN_PY (tried ${NETLAB_PYTHON:+$NETLAB_PYTHON, }/usr/bin/python3 and python3 on PATH)"
    step "virtualenv: creating $VENV from $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
    "$PY" -m venv "$VENV" || die "'$PY -m venv' failed (is python3-venv installed?)"
fi

# ---------------------------------------------------------------- 3. the project
# A stamp per extras set, keyed on pyproject.toml and the interpreter: re-running is cheap.
STAMP="$VENV/.netlab-setup-${EXTRAS:-none}"
want="$({ cat pyproject.toml; "$VENV/bin/python" -c 'import sys; print(sys.version)'; printf '%s\n' "$ROOT"; } \
        | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] \
   && (cd / && "$VENV/bin/python" -c 'import netlab_magic') >/dev/null 2>&1; then
    step "install: $SPEC already installed (pyproject.toml unchanged)"
else
    step "install: pip install -e '$SPEC' (quiet; may take a minute the first time)"
    log="$VENV/setup-pip.log"
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$SPEC" >"$log" 2>&1 </dev/null; then
        tail -n 40 "$log" >&2
        die "pip install -e '$SPEC' failed (full log: $log)"
    fi
    printf '%s\n' "$want" >"$STAMP"
fi
# The package's bytecode, as a (non-editable) pip install compiles it: the VM's guest reads this
# checkout over its read-only shared / and, without it, compiled each module at every boot
# (~0.8 s of the boot under TCG). Only what changed is compiled again.
"$VENV/bin/python" -m compileall -q "$ROOT/netlab_magic" >/dev/null || die "python -m compileall netlab_magic failed"

# ---------------------------------------------------------------- 4. kernelspec
if [ "$KERNEL" = none ]; then
    step "kernelspec: skipped (--kernel none)"
elif [ -f "$ROOT/netlab_magic/__main__.py" ]; then
    step "kernelspec: netlab_magic install-kernel --$KERNEL"
    log="$VENV/setup-kernel.log"
    if ! "$VENV/bin/python" -m netlab_magic install-kernel "--$KERNEL" >"$log" 2>&1 </dev/null; then
        cat "$log" >&2
        die "'python -m netlab_magic install-kernel --$KERNEL' failed"
    fi
else
    step "kernelspec: NOT installed: netlab_magic/__main__.py does not exist yet"
fi

# ---------------------------------------------------------------- 5. the hub's proxy
# JupyterHub's configurable-http-proxy, from npm, into $VENV/chp and linked into $VENV/bin
# (on the PATH of whoever uses the venv); tests/test_hub.py skips without it.
if [ "$HUB" = 1 ]; then
    CHP="$VENV/bin/configurable-http-proxy"
    if [ -x "$CHP" ] && [ "$("$CHP" --version 2>/dev/null)" = "$CHP_VERSION" ]; then
        step "configurable-http-proxy: $CHP_VERSION already installed"
    elif ! command -v npm >/dev/null 2>&1; then
        step "configurable-http-proxy: NOT installed (no npm; the JupyterHub test will skip)"
    else
        step "configurable-http-proxy: npm install configurable-http-proxy@$CHP_VERSION"
        log="$VENV/setup-npm.log"
        if ! npm install --no-audit --no-fund --loglevel=error --prefix "$VENV/chp" \
                "configurable-http-proxy@$CHP_VERSION" >"$log" 2>&1 </dev/null; then
            tail -n 30 "$log" >&2
            die "npm install configurable-http-proxy@$CHP_VERSION failed (full log: $log)"
        fi
        ln -sfn ../chp/node_modules/.bin/configurable-http-proxy "$CHP"
    fi
fi

# ---------------------------------------------------------------- 6. the VM's image
if [ "$VM" = 1 ]; then
    where=()
    [ "$(id -u)" -eq 0 ] && where=(--system)
    step "the VM's image: netlab-magic vm prepare ${where[*]:-} (apt-get download of the kernel and busybox)"
    "$VENV/bin/python" -m netlab_magic vm prepare ${where[@]+"${where[@]}"} </dev/null \
        | sed 's/^/    /' || die "netlab-magic vm prepare failed"
fi

step "done ($VENV)"
