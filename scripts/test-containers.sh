#!/usr/bin/env bash
# As root: the workbook in containers, the way Binder, repo2docker, Docker, Podman and Kubernetes
# run it (tests/test_containers.py). Not part of scripts/test.sh: building the image takes minutes.
#
#   1. scripts/setup.sh (the venv), then Debian's debootstrap, docker.io, podman, crun and uidmap
#   2. NETLAB_CONTAINER_TESTS=1 pytest tests/test_containers.py: builds the image from binder/
#      (debootstrap + repo2docker's steps; no image registry), runs a private dockerd (no
#      iptables, no bridge, --network=none; stopped afterwards) and Podman rootless, records per
#      platform whether the lab starts and which call fails, runs nbval in the recommended one,
#      and checks the machine is unchanged afterwards
#
# Usage: scripts/test-containers.sh [PYTEST_ARGS...]
# Environment: NETLAB_CONTAINER_CACHE  keep the Debian base and the image here between runs
#                                      (default: none, everything is built in a temporary directory)
#              NETLAB_CONTAINER_REPORT where the per-platform results go (default: artifacts/container-results.json)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
[ "$(id -u)" -eq 0 ] || { echo "test-containers.sh: run it as root" >&2; exit 2; }

scripts/setup.sh --extras test
missing=()
for p in debootstrap docker.io podman crun uidmap; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)" = "ii " ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> test-containers: installing ${missing[*]} (their services are not started)"
    # no service may start on install: dockerd would rewrite the machine's firewall
    policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
    fi
    apt-get -qq update
    DEBIAN_FRONTEND=noninteractive apt-get -qq install -y --no-install-recommends "${missing[@]}" </dev/null
    [ "$policy_added" = 0 ] || rm -f /usr/sbin/policy-rc.d
fi
export NETLAB_CONTAINER_TESTS=1
mkdir -p "$ROOT/artifacts"
export NETLAB_CONTAINER_REPORT="${NETLAB_CONTAINER_REPORT:-$ROOT/artifacts/container-results.json}"
timeout -k 30 7200 "$ROOT/.venv/bin/python" -m pytest -p no:cacheprovider -rfEs -v tests/test_containers.py "$@" </dev/null
echo "==> per-platform results: $NETLAB_CONTAINER_REPORT"
