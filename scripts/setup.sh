#!/usr/bin/env bash
# Set up a fresh machine for fancy_env: system packages, dockerd, a local registry, and the
# local single-user image built from a debootstrap base (no Docker Hub needed).
# Idempotent: a second run only checks and returns (well under a second).
#
#   scripts/setup.sh            everything the hub needs (Docker, registry, image, proxy)
#   scripts/setup.sh --test     also the test tools (Debian chromium, PostgreSQL on 127.0.0.1,
#                               a second Docker engine: scripts/docker2.sh)
#
# Works non-interactively (CI=true, no stdin): apt runs with DEBIAN_FRONTEND=noninteractive and
# every step reads from /dev/null. Stop the services it started with scripts/stop-services.sh.
#
# State (PID files, logs, registry data, debootstrap tree, run history) lives in
# $FANCY_ENV_STATE (default /var/lib/fancy-env when root, else ~/.local/state/fancy-env).
# Every run appends "<utc time> <seconds> <actions|none>" to $FANCY_ENV_STATE/setup-history.tsv
# (bench/bench_setup.py reads it to compare a cold run with a warm one).
set -euo pipefail
exec </dev/null

WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (allowed: --test, --help)" >&2; exit 2 ;;
  esac
done
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $(id -u) == 0 ]]; then DEFAULT_STATE=/var/lib/fancy-env; else DEFAULT_STATE="$HOME/.local/state/fancy-env"; fi
STATE="${FANCY_ENV_STATE:-$DEFAULT_STATE}"
BASE_IMAGE="${FANCY_ENV_BASE_IMAGE:-fancy-env/bookworm-base:latest}"
SINGLEUSER_IMAGE="${FANCY_ENV_SINGLEUSER_IMAGE:-fancy-env/singleuser:latest}"
REGISTRY_ADDR="${FANCY_ENV_REGISTRY:-127.0.0.1:5000}"
DEBIAN_MIRROR="${FANCY_ENV_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
mkdir -p "$STATE"
t0=$(date +%s%N)
elapsed() { local ms=$(( ($(date +%s%N) - t0) / 1000000 )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }
log() { printf '[setup %7ss] %s\n' "$(elapsed)" "$*"; }
ACTIONS=()
did() { ACTIONS+=("$1"); }
SUDO=()
if [[ $(id -u) != 0 ]]; then
  if command -v sudo >/dev/null; then SUDO=(sudo -n); else SUDO=(false); fi
fi

# --- system packages ----------------------------------------------------------------------
need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
[[ -f /etc/ssl/certs/ca-certificates.crt ]] || need_apt+=(ca-certificates)
command -v dockerd >/dev/null || need_apt+=(docker.io)
command -v docker-registry >/dev/null || need_apt+=(docker-registry)
command -v htpasswd >/dev/null || need_apt+=(apache2-utils)  # the registry's bcrypt htpasswd
command -v debootstrap >/dev/null || need_apt+=(debootstrap)
command -v git >/dev/null || need_apt+=(git)
command -v npm >/dev/null || need_apt+=(npm)
if [[ $WITH_TEST == 1 ]]; then
  command -v chromium >/dev/null || need_apt+=(chromium)
  [[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || need_apt+=(fonts-dejavu-core)
fi
if (( ${#need_apt[@]} )); then
  log "installing Debian packages: ${need_apt[*]}"
  [[ $(id -u) == 0 ]] || "${SUDO[@]}" true 2>/dev/null \
    || { echo "setup.sh: need root (or password-less sudo) to install ${need_apt[*]}" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  # no systemd here: keep package scripts from trying to start services
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
  fi
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${need_apt[@]}" >"$STATE/apt.log" 2>&1 || { tail -30 "$STATE/apt.log" >&2; exit 1; }
  did "apt:${need_apt[*]}"
fi
log "system packages present"

if ! command -v configurable-http-proxy >/dev/null; then
  log "installing configurable-http-proxy from npm"
  # Node ignores the system CA store: hand it the system bundle (TLS-inspecting proxies)
  [[ -n "${NODE_EXTRA_CA_CERTS:-}" || ! -f /etc/ssl/certs/ca-certificates.crt ]] \
    || export NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
  "${SUDO[@]}" npm install -g --no-audit --no-fund --loglevel=error configurable-http-proxy \
    >"$STATE/npm.log" 2>&1 || { tail -30 "$STATE/npm.log" >&2; exit 1; }
  did "npm:configurable-http-proxy"
fi
log "configurable-http-proxy present"

# --- dockerd -----------------------------------------------------------------------------
# No default bridge and no Docker-managed iptables: user servers use host networking on loopback;
# builds use the build network below, whose NAT and deny rules scripts/build-network.sh owns.
# setsid: its own session, so a Ctrl-C in the terminal that ran us never reaches it.
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  setsid nohup dockerd --bridge=none --iptables=false --ip6tables=false \
    --pidfile "$STATE/dockerd.pid" >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 120); do docker info >/dev/null 2>&1 && break; sleep 0.25; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $STATE/dockerd.log" >&2; tail -20 "$STATE/dockerd.log" >&2; exit 1; }
  did "dockerd"
fi
log "docker engine reachable"

# --- registry on $REGISTRY_ADDR: pushes (and pulls) only with credentials ------------------
# One random password, generated once: $STATE/registry-auth.json (0600) is a Docker config JSON
# ({"auths": {"<addr>": {"auth": base64(user:pass)}}}) that only the build service reads
# (BuilderApp.registry_credentials_file); $STATE/registry.htpasswd (0600) holds its bcrypt hash.
# A registry this script started earlier without auth is restarted by its PID file with the
# new config; a registry it did not start is never touched (the script stops with a message).
REG_USER=fancy-env
REG_AUTH="$STATE/registry-auth.json"
REG_HTPASSWD="$STATE/registry.htpasswd"
REG_CONFIG="$STATE/registry.yml"
chmod 0700 "$STATE"
reg_password() {  # the password stored in $REG_AUTH (never printed, never on a command line)
  python3 -c 'import base64, json, sys
auths = json.load(open(sys.argv[1]))["auths"]
print(base64.b64decode(auths[sys.argv[2]]["auth"]).decode().split(":", 1)[1])' "$REG_AUTH" "$REGISTRY_ADDR"
}
reg_restart=0
REG_PASS=$(reg_password 2>/dev/null || true)  # a shell variable: not exported, not in ps
if [[ -z "$REG_PASS" ]]; then
  log "generating registry credentials in $REG_AUTH"
  pass=$(python3 -c 'import secrets; print(secrets.token_urlsafe(30))')
  auth=$(printf '%s:%s' "$REG_USER" "$pass" | base64 -w0)
  (umask 077; printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REGISTRY_ADDR" "$auth" >"$REG_AUTH.tmp")
  mv -f "$REG_AUTH.tmp" "$REG_AUTH"
  rm -f "$REG_HTPASSWD"
  REG_PASS=$pass
  unset pass auth
  did "registry-credentials"
fi
chmod 0600 "$REG_AUTH"
# bcrypt cost 5: the registry verifies the hash on EVERY request (each cache check); the
# password is 240 random bits, so a higher work factor adds latency and no safety.
if ! grep -qF "$REG_USER:\$2y\$05\$" "$REG_HTPASSWD" 2>/dev/null \
  || ! printf '%s' "$REG_PASS" | htpasswd -v -i "$REG_HTPASSWD" "$REG_USER" >/dev/null 2>&1; then
  (umask 077; printf '%s' "$REG_PASS" | htpasswd -c -i -B -C 5 "$REG_HTPASSWD" "$REG_USER" >/dev/null 2>&1)
  reg_restart=1  # the registry reads its htpasswd file once, at start
  did "registry-htpasswd"
fi
chmod 0600 "$REG_HTPASSWD"
mkdir -p "$STATE/registry"
reg_config_text() {
  cat <<YML
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $STATE/registry}
  delete: {enabled: true}
auth:
  htpasswd: {realm: fancy-env-registry, path: $REG_HTPASSWD}
http:
  addr: $REGISTRY_ADDR
YML
}
reg_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REGISTRY_ADDR/v2/" 2>/dev/null || true; }
reg_ours() {  # the PID in registry.pid, if it is a docker-registry started from our config
  local pid
  [[ -s "$STATE/registry.pid" ]] || return 1
  pid=$(<"$STATE/registry.pid")
  [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == docker-regist* ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$REG_CONFIG" || return 1
  echo "$pid"
}
if ! reg_config_text | cmp -s - "$REG_CONFIG"; then
  log "writing $REG_CONFIG (auth: htpasswd)"
  (umask 077; reg_config_text >"$REG_CONFIG")
  reg_restart=1
fi
chmod 0600 "$REG_CONFIG"
# 401 for an anonymous request: running with auth. Anything else that answers: an old registry.
code=$(reg_status)
[[ "$code" == 401 ]] || [[ "$code" == 000 ]] || reg_restart=1
if [[ $reg_restart == 1 ]] && [[ "$code" != 000 ]]; then
  if pid=$(reg_ours); then
    log "restarting docker-registry (PID $pid) with the new config"
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    rm -f "$STATE/registry.pid"
    did "registry-restart"
  else
    echo "setup.sh: a registry answers on $REGISTRY_ADDR (HTTP $code to an anonymous /v2/) but was" \
      "not started from $REG_CONFIG by this script: stop it, or set FANCY_ENV_REGISTRY to another" \
      "address" >&2
    exit 1
  fi
fi
if [[ "$(reg_status)" != 401 ]]; then
  log "starting docker-registry on $REGISTRY_ADDR (htpasswd auth)"
  setsid nohup docker-registry serve "$REG_CONFIG" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 1 40); do [[ "$(reg_status)" == 401 ]] && break; sleep 0.25; done
  [[ "$(reg_status)" == 401 ]] || { echo "registry did not start with auth; see $STATE/registry.log" >&2; tail -20 "$STATE/registry.log" >&2; exit 1; }
  did "registry"
fi
# the stored credentials open it (curl reads them from stdin, never from its command line)
printf 'user = "%s:%s"\n' "$REG_USER" "$REG_PASS" \
  | curl -fsS -o /dev/null --max-time 5 -K - "http://$REGISTRY_ADDR/v2/" \
  || { echo "setup.sh: the registry on $REGISTRY_ADDR refuses the credentials in $REG_AUTH" \
        "(it was started with another htpasswd file?): remove $REG_AUTH and run again" >&2; exit 1; }
unset REG_PASS
log "registry answering on $REGISTRY_ADDR (pushes need $REG_AUTH)"

# --- base + single-user image -------------------------------------------------------------
if ! docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  log "debootstrap bookworm (minbase) -> $BASE_IMAGE"
  rm -rf "$STATE/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,git \
    bookworm "$STATE/rootfs" "$DEBIAN_MIRROR" >"$STATE/debootstrap.log" 2>&1 \
    || { tail -20 "$STATE/debootstrap.log" >&2; exit 1; }
  tar -C "$STATE/rootfs" -c . | docker import - "$BASE_IMAGE" >/dev/null
  rm -rf "$STATE/rootfs"
  did "base-image"
fi
log "base image $BASE_IMAGE present"

# The image carries the hash of its Dockerfile: an edited Dockerfile rebuilds, an unchanged one
# is only checked.
recipe_sha=$(sha256sum <"$HERE/scripts/singleuser.Dockerfile" | cut -c1-16)
have_sha=$(docker image inspect -f '{{ index .Config.Labels "fancy-env.recipe" }}' \
  "$SINGLEUSER_IMAGE" 2>/dev/null || true)
if [[ "$have_sha" != "$recipe_sha" ]]; then
  log "building $SINGLEUSER_IMAGE (recipe $recipe_sha)"
  ctx=$(mktemp -d)
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
  cp "$HERE/scripts/singleuser.Dockerfile" "$ctx/Dockerfile"
  docker build --network host --build-arg BASE="$BASE_IMAGE" --label "fancy-env.recipe=$recipe_sha" \
    -t "$SINGLEUSER_IMAGE" "$ctx" >"$STATE/singleuser-build.log" 2>&1 \
    || { tail -30 "$STATE/singleuser-build.log" >&2; rm -rf "$ctx"; exit 1; }
  rm -rf "$ctx"
  did "singleuser-image"
fi
log "single-user image $SINGLEUSER_IMAGE present"

# --- build network: RUN steps of builds reach public hosts, nothing on this machine --------
if ! bash "$HERE/scripts/build-network.sh" check >/dev/null 2>&1; then
  log "creating the build network (scripts/build-network.sh up)"
  bash "$HERE/scripts/build-network.sh" up
  did "build-network"
fi
log "build network ${FANCY_ENV_BUILD_NETWORK:-fancy-env-build} present"

if [[ $WITH_TEST == 1 ]]; then
  log "test tools present (chromium: $(command -v chromium))"
  # the second engine ("fresh node" of the layer-cache test and bench): scripts/docker2.sh
  if ! bash "$HERE/scripts/docker2.sh" status >/dev/null 2>&1; then
    bash "$HERE/scripts/docker2.sh" start
    did "docker2"
  fi
  bash "$HERE/scripts/docker2.sh" start >/dev/null  # (re)writes $STATE/docker2.host
  log "second Docker engine answering on $(<"$STATE/docker2.host")"
fi

# ==== PostgreSQL for the test suites (--test only) ============================================
# The build-service and sharing suites run on SQLite and on PostgreSQL. This block gives them a
# cluster of our own (never Debian's "main" cluster, which the package creates but which stays
# stopped): data in $PG_HOME/data, log $PG_HOME/postgres.log, where PG_HOME is
# ${FANCY_ENV_PG_DIR:-$STATE-postgres} (beside the 0700 state dir, owned by the cluster's OS
# user: the cluster's user cannot enter $STATE), postmaster PID in
# $STATE/postgres.pid (scripts/stop-services.sh stops it by that PID).
# - Listens on 127.0.0.1:${FANCY_ENV_PG_PORT:-5433} only; its Unix socket is in
#   $PG_HOME/run (0700, owned by the cluster's OS user), nowhere else.
# - Runs as an unprivileged user (postgres refuses root): the Debian `postgres` OS user when we
#   are root, else the user running this script.
# - Auth: password (scram-sha-256) on TCP, not trust. User servers use host networking, so a
#   user's code can reach 127.0.0.1; with trust it could log in as superuser (and run
#   programs as the cluster's user). The test role `fancy_env_test` (LOGIN CREATEDB, not a
#   superuser) has a random password; its URL is in $STATE/postgres-test.url (0600), which
#   scripts/test.sh exports as FANCY_ENV_TEST_PG_URL. The superuser logs in only through the
#   Unix socket (peer auth).
# - Throwaway test data: fsync, synchronous_commit and full_page_writes are off (speed).
if [[ $WITH_TEST == 1 ]]; then
  PG_PORT="${FANCY_ENV_PG_PORT:-5433}"
  PG_HOME="${FANCY_ENV_PG_DIR:-${STATE%/}-postgres}"
  PG_DATA="$PG_HOME/data" PG_RUN="$PG_HOME/run" PG_LOG="$PG_HOME/postgres.log" PG_ROLE=fancy_env_test
  PG_URL_FILE="$STATE/postgres-test.url" PG_PID_FILE="$STATE/postgres.pid"
  pg_bindir() { find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' -printf '%h\n' 2>/dev/null | sort -V | tail -1; }
  PG_BIN=$(pg_bindir)
  if [[ -z "$PG_BIN" ]]; then
    log "installing Debian postgresql"
    [[ $(id -u) == 0 ]] || "${SUDO[@]}" true 2>/dev/null \
      || { echo "setup.sh: need root (or password-less sudo) to install postgresql" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then  # no service starts from package scripts
      printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
      "${SUDO[@]}" chmod +x /usr/sbin/policy-rc.d
    fi
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      postgresql >"$STATE/apt-postgresql.log" 2>&1 || { tail -30 "$STATE/apt-postgresql.log" >&2; exit 1; }
    PG_BIN=$(pg_bindir)
    [[ -n "$PG_BIN" ]] || { echo "setup.sh: postgresql installed but no initdb under /usr/lib/postgresql" >&2; exit 1; }
    did "apt:postgresql"
  fi
  if [[ $(id -u) == 0 ]]; then
    PG_USER=postgres
    getent passwd postgres >/dev/null \
      || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    as_pg() { runuser -u postgres -- "$@"; }
  else
    PG_USER=$(id -un)
    as_pg() { "$@"; }
  fi
  pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2; }
  pg_pid() {  # the running postmaster's PID (line 1 of postmaster.pid), or nothing
    local pid
    pid=$(head -1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 0
    [[ -n "$pid" && "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres \
      && "$(readlink "/proc/$pid/cwd")" == "$(readlink -f "$PG_DATA")" ]] && echo "$pid"
    return 0
  }
  if [[ -n "$(pg_pid)" && -s "$PG_URL_FILE" ]] && pg_ready; then
    : # running and set up: the quick path
  else
    install -d -m 0700 -o "$PG_USER" "$PG_HOME"
    as_pg test -x "$PG_HOME" \
      || { echo "setup.sh: $PG_USER cannot enter $PG_HOME (its parents must be traversable)" >&2; exit 1; }
    if [[ ! -s "$PG_DATA/PG_VERSION" ]]; then
      log "initdb $PG_DATA (PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), as $PG_USER)"
      install -d -m 0700 -o "$PG_USER" "$PG_DATA"
      as_pg "$PG_BIN/initdb" -D "$PG_DATA" -E UTF8 --locale=C.UTF-8 \
        --auth-local=peer --auth-host=scram-sha-256 >"$STATE/postgres-initdb.log" 2>&1 \
        || { tail -20 "$STATE/postgres-initdb.log" >&2; exit 1; }
      echo "include_if_exists = 'fancy-env.conf'" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
      did "postgres-initdb"
    fi
    install -d -m 0700 -o "$PG_USER" "$PG_RUN"
    as_pg tee "$PG_DATA/fancy-env.conf" >/dev/null <<PGCONF
# written by scripts/setup.sh --test on every start
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
password_encryption = scram-sha-256
fsync = off
synchronous_commit = off
full_page_writes = off
PGCONF
    if [[ -z "$(pg_pid)" ]]; then
      log "starting PostgreSQL on 127.0.0.1:$PG_PORT"
      touch "$PG_LOG" && chown "$PG_USER" "$PG_LOG" && chmod 0600 "$PG_LOG"
      # pg_ctl starts the postmaster in a session of its own (setsid), like dockerd above
      as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null \
        || { echo "PostgreSQL did not start; see $PG_LOG" >&2; tail -20 "$PG_LOG" >&2; exit 1; }
      did "postgres"
    fi
    pg_ready || { echo "setup.sh: PostgreSQL (PID $(pg_pid)) is not answering on 127.0.0.1:$PG_PORT (other port? scripts/stop-services.sh, then again)" >&2; exit 1; }
    PG_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
    # the password travels on stdin, never on a command line (ps shows those to everyone)
    as_pg "$PG_BIN/psql" -h "$PG_RUN" -p "$PG_PORT" -d postgres -qAt -v ON_ERROR_STOP=1 \
      >/dev/null <<SQL || { echo "setup.sh: could not create the test role" >&2; exit 1; }
\set role $PG_ROLE
\set pw $PG_PASSWORD
SELECT format('CREATE ROLE %I', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB NOSUPERUSER PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'role', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'role') \gexec
SQL
    (umask 077 && echo "postgresql+psycopg://$PG_ROLE:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_ROLE" >"$PG_URL_FILE")
  fi
  pg_pid >"$PG_PID_FILE"
  log "PostgreSQL answering on 127.0.0.1:$PG_PORT (PID $(<"$PG_PID_FILE"), URL in $PG_URL_FILE)"
fi
# ==== end of PostgreSQL =========================================================================
summary="none"
(( ${#ACTIONS[@]} )) && summary=$(IFS=,; echo "${ACTIONS[*]}")
printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(elapsed)" "${summary// /+}" \
  >>"$STATE/setup-history.tsv"
log "done (did: $summary)"
