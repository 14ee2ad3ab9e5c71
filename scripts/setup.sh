#!/usr/bin/env bash
# Set up a fresh machine for fancy_env: system packages, dockerd, a local registry, and the
# local single-user image built from a debootstrap base (no Docker Hub needed).
# Idempotent: a second run only checks and returns.
#
#   scripts/setup.sh            everything the hub needs (Docker, registry, image, proxy)
#   scripts/setup.sh --test     also the test tools (Chromium, Python test extras, npm deps)
#
# State (PID files, logs, registry data, debootstrap tree) lives in $FANCY_ENV_STATE
# (default /var/lib/fancy-env when root, else ~/.local/state/fancy-env).
set -euo pipefail

WITH_TEST=0
[[ "${1:-}" == "--test" ]] && WITH_TEST=1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $(id -u) == 0 ]]; then DEFAULT_STATE=/var/lib/fancy-env; else DEFAULT_STATE="$HOME/.local/state/fancy-env"; fi
STATE="${FANCY_ENV_STATE:-$DEFAULT_STATE}"
BASE_IMAGE="${FANCY_ENV_BASE_IMAGE:-fancy-env/bookworm-base:latest}"
SINGLEUSER_IMAGE="${FANCY_ENV_SINGLEUSER_IMAGE:-fancy-env/singleuser:latest}"
REGISTRY_ADDR="${FANCY_ENV_REGISTRY:-127.0.0.1:5000}"
mkdir -p "$STATE"
t0=$(date +%s.%N)
log() { printf '[setup %5.1fs] %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "$*"; }

need_apt=()
command -v bc >/dev/null || need_apt+=(bc)
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v git >/dev/null || need_apt+=(git)
command -v npm >/dev/null || need_apt+=(npm)
if [[ $WITH_TEST == 1 ]]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
fi
if (( ${#need_apt[@]} )); then
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # no systemd here: keep package scripts from trying to start services
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
log "system packages present"

if ! command -v configurable-http-proxy >/dev/null; then
  npm install -g --silent configurable-http-proxy >/dev/null
fi
log "configurable-http-proxy present"

# --- dockerd -----------------------------------------------------------------------------
# No bridge and no iptables: every container uses host networking and talks to loopback only.
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false \
    --pidfile "$STATE/dockerd.pid" >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $STATE/dockerd.log" >&2; tail -20 "$STATE/dockerd.log" >&2; exit 1; }
fi
log "docker engine reachable"

# --- registry on 127.0.0.1:5000 ------------------------------------------------------------
if ! curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; then
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
http:
  addr: $REGISTRY_ADDR
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 1 40); do curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1 && break; sleep 0.25; done
  curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null || { echo "registry did not start; see $STATE/registry.log" >&2; exit 1; }
fi
log "registry answering on $REGISTRY_ADDR"

# --- base + single-user image -------------------------------------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "debootstrap bookworm (minbase) -> $BASE_IMAGE"
  rm -rf "$STATE/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,git \
    bookworm "$STATE/rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/debootstrap.log" >&2; exit 1; }
  tar -C "$STATE/rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$STATE/rootfs"
fi
log "base image $BASE_IMAGE present"

if ! docker image inspect "$SINGLEUSER_IMAGE" >/dev/null 2>&1; then
  log "building $SINGLEUSER_IMAGE"
  ctx=$(mktemp -d)
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cp "$HERE/scripts/singleuser.Dockerfile" "$ctx/Dockerfile"
  docker build --network host --build-arg BASE="$BASE_IMAGE" -t "$SINGLEUSER_IMAGE" "$ctx" >"$STATE/singleuser-build.log" 2>&1 \
    || { tail -30 "$STATE/singleuser-build.log" >&2; exit 1; }
  rm -rf "$ctx"
fi
log "single-user image $SINGLEUSER_IMAGE present"

if [[ $WITH_TEST == 1 ]]; then
  log "test tools present"
fi
log "done"
