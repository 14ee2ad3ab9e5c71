#!/usr/bin/env bash
# A second Docker engine: the "fresh node" of the layer-cache tests and bench (a build on an
# engine that never built the repository). scripts/setup.sh --test starts it, and
# scripts/stop-services.sh stops it; both call this script, which works on its own too:
#
#   scripts/docker2.sh start    start it (idempotent: quick when it already answers)
#   scripts/docker2.sh stop     stop it by its PID file (never an engine it did not start)
#   scripts/docker2.sh status   exit 0 when it answers, print its DOCKER_HOST
#
# Everything of its own, nothing shared with the first engine (started by setup.sh):
#   socket      unix:///run/fancy-env-docker2.sock (FANCY_ENV_DOCKER2_SOCKET), no TCP listener
#   data root   /var/lib/fancy-env-docker2 (FANCY_ENV_DOCKER2_DATA): its own images and layers
#   exec root   /run/fancy-env-docker2: its own managed containerd (socket under it), so the
#               first engine's containerd (under /run/docker) is never touched
#   PID file    $STATE/docker2.pid, log $STATE/docker2.log
#   location    $STATE/docker2.host holds the DOCKER_HOST value (tests/support/docker2.py reads it)
# Like the first: --bridge=none --iptables=false --ip6tables=false (no default bridge, no
# iptables rules). It has no build network: builds on it run their RUN steps with
# `DockerExecutor.build_network = "none"` (no network at all).
# It pulls from the registry on 127.0.0.1:5000 (loopback registries are insecure-allowed by
# default) with the credentials in $STATE/registry-auth.json, given per pull request.
set -euo pipefail
exec </dev/null
if [[ $(id -u) == 0 ]]; then DEFAULT_STATE=/var/lib/fancy-env; else DEFAULT_STATE="$HOME/.local/state/fancy-env"; fi
STATE="${FANCY_ENV_STATE:-$DEFAULT_STATE}"
SOCKET="${FANCY_ENV_DOCKER2_SOCKET:-/run/fancy-env-docker2.sock}"
DATA="${FANCY_ENV_DOCKER2_DATA:-/var/lib/fancy-env-docker2}"
EXEC_ROOT="${FANCY_ENV_DOCKER2_EXEC_ROOT:-/run/fancy-env-docker2}"
PID_FILE="$STATE/docker2.pid"
HOST_FILE="$STATE/docker2.host"
HOST="unix://$SOCKET"

answers() { docker --host "$HOST" info >/dev/null 2>&1; }
ours() {  # the PID in the PID file, if it is a dockerd started with our socket
  local pid
  [[ -s "$PID_FILE" ]] || return 1
  pid=$(<"$PID_FILE")
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == dockerd ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--host=$HOST" || return 1
  echo "$pid"
}

start() {
  mkdir -p "$STATE"
  if answers; then
    echo "$HOST" >"$HOST_FILE"
    echo "[docker2] answering on $HOST"
    return
  fi
  [[ $(id -u) == 0 ]] || { echo "docker2.sh: dockerd needs root" >&2; exit 1; }
  echo "[docker2] starting dockerd on $HOST (data $DATA, exec root $EXEC_ROOT)"
  mkdir -p "$DATA" "$EXEC_ROOT"
  # setsid: a session of its own, so a Ctrl-C in the terminal that ran us never reaches it
  setsid nohup dockerd --host="$HOST" --data-root="$DATA" --exec-root="$EXEC_ROOT" \
    --pidfile="$PID_FILE" --bridge=none --iptables=false --ip6tables=false \
    >"$STATE/docker2.log" 2>&1 &
  for _ in $(seq 1 120); do answers && break; sleep 0.25; done
  answers || { echo "the second dockerd did not start; see $STATE/docker2.log" >&2; tail -20 "$STATE/docker2.log" >&2; exit 1; }
  echo "$HOST" >"$HOST_FILE"
  echo "[docker2] answering on $HOST"
}

stop() {
  local pid
  if ! pid=$(ours); then
    echo "[stop] dockerd (second engine): no running engine of ours ($PID_FILE), nothing to stop"
    rm -f "$PID_FILE" "$HOST_FILE"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[stop] dockerd (second engine): PID $pid still running after 15 s, sending SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$PID_FILE" "$HOST_FILE"
  echo "[stop] dockerd (second engine, PID $pid) stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) answers && echo "$HOST" ;;
  *) echo "usage: docker2.sh start|stop|status" >&2; exit 2 ;;
esac
