#!/usr/bin/env bash
# Stop the services scripts/setup.sh started (dockerd, the second dockerd, docker-registry), by their PID files
# in $FANCY_ENV_STATE, and remove the build network (scripts/build-network.sh down). Services this script did not start (no PID file) are left alone.
# The registry's credentials (registry-auth.json, registry.htpasswd) stay: the next setup.sh
# starts the registry with the same password. Delete both files to get a new one.
set -euo pipefail
if [[ $(id -u) == 0 ]]; then DEFAULT_STATE=/var/lib/fancy-env; else DEFAULT_STATE="$HOME/.local/state/fancy-env"; fi
STATE="${FANCY_ENV_STATE:-$DEFAULT_STATE}"

stop_pid_file() {  # name, pid file, expected command name
  local name=$1 file=$2 comm=$3 pid
  if [[ ! -s "$file" ]]; then echo "[stop] $name: no PID file ($file), nothing to stop"; return; fi
  pid=$(<"$file")
  if ! kill -0 "$pid" 2>/dev/null || [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm"* ]]; then
    echo "[stop] $name: PID $pid is not running (or is no longer $comm): stale PID file removed"; rm -f "$file"; return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[stop] $name: PID $pid still running after 15 s, sending SIGKILL"; kill -KILL "$pid"
  fi
  rm -f "$file"
  echo "[stop] $name (PID $pid) stopped"
}

# the build network and its iptables rules (needs dockerd to remove the network)
if docker info >/dev/null 2>&1 || iptables-save 2>/dev/null | grep -q fancy-env-build; then
  bash "$(dirname "${BASH_SOURCE[0]}")/build-network.sh" down || true
fi
stop_pid_file docker-registry "$STATE/registry.pid" docker-registry
stop_pid_file dockerd "$STATE/dockerd.pid" dockerd
bash "$(dirname "${BASH_SOURCE[0]}")/docker2.sh" stop  # the second engine (setup.sh --test)

# ==== PostgreSQL (setup.sh --test) ===========================================================
# By the postmaster's PID, checked to be a `postgres` whose working directory is our data
# directory. SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for every client);
# SIGQUIT ("immediate") only if it is still up after 30 s. Never SIGKILL: that orphans backends.
stop_postgres() {
  local file="$STATE/postgres.pid" data pid
  local home="${FANCY_ENV_PG_DIR:-${STATE%/}-postgres}"
  data=$(readlink -f "$home/data" 2>/dev/null || echo "$home/data")
  if [[ ! -s "$file" ]]; then echo "[stop] postgres: no PID file ($file), nothing to stop"; return; fi
  pid=$(<"$file")
  if ! kill -0 "$pid" 2>/dev/null || [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" != postgres ]] \
    || [[ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" != "$data" ]]; then
    echo "[stop] postgres: PID $pid is not running (or is not our postmaster): stale PID file removed"
    rm -f "$file"; return
  fi
  kill -INT "$pid"
  for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "[stop] postgres: PID $pid still running after 30 s, immediate shutdown (SIGQUIT)"
    kill -QUIT "$pid"
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  fi
  rm -f "$file"
  echo "[stop] postgres (PID $pid) stopped"
}
stop_postgres
