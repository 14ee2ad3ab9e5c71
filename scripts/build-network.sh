#!/usr/bin/env bash
# The network that repo2docker's RUN steps run in: a Docker bridge network of our own plus
# iptables rules, so a build reaches package indexes and public hosts but nothing on this
# machine (hub, build service, proxy API, registry, any other listener) and no private or
# link-local range.
#
#   scripts/build-network.sh up      create the network and rules (idempotent; quick when present)
#   scripts/build-network.sh down    remove the network and every rule tagged by us
#   scripts/build-network.sh check   exit 0 when everything is in place, else say what is missing
#
# dockerd here runs with --bridge=none --iptables=false, so Docker adds no NAT and no filter
# rules for this network: this script owns them all, each tagged `-m comment --comment
# fancy-env-build` (find them with `iptables-save | grep fancy-env-build`).
#   nat POSTROUTING   MASQUERADE from the build subnet out of the default-route interface
#   INPUT             DROP from the build bridge to any LOCAL address of the host (the gateway
#                     IP, the host's own addresses, 127/8): no host listener is reachable
#   FORWARD           ACCEPT admin-allowed host:port, DROP 0/8 10/8 100.64/10 127/8 169.254/16
#                     172.16/12 192.168/16 224/4 240/4 and the egress interface's own subnets,
#                     ACCEPT the rest out of the egress interface, replies back in
#   ip6tables         DROP everything from the bridge (the network has no IPv6; fe80::/10 too)
# Name resolution: containers on a user-defined network ask Docker's embedded DNS at
# 127.0.0.11 inside their own namespace; dockerd answers by forwarding from the HOST namespace
# to the host's resolvers, so a private resolver (10.x here) works without the build itself
# being allowed to reach private addresses.
#
# Environment:
#   FANCY_ENV_BUILD_NETWORK  network name (default fancy-env-build)
#   FANCY_ENV_BUILD_SUBNET   IPv4 subnet /24 (default 172.31.250.0/24; gateway .1)
#   FANCY_ENV_BUILD_BRIDGE   Linux bridge name (default fe-build0)
#   FANCY_ENV_BUILD_ALLOW    space-separated IPv4:port (TCP) a build may reach although it is
#                            in a denied range, e.g. a package mirror "10.1.2.3:3141"
#   FANCY_ENV_BUILD_EGRESS   egress interface (default: the one of the default route)
set -euo pipefail
NET="${FANCY_ENV_BUILD_NETWORK:-fancy-env-build}"
SUBNET="${FANCY_ENV_BUILD_SUBNET:-172.31.250.0/24}"
BRIDGE="${FANCY_ENV_BUILD_BRIDGE:-fe-build0}"
ALLOW="${FANCY_ENV_BUILD_ALLOW:-}"
TAG="fancy-env-build"
DENY=(0.0.0.0/8 10.0.0.0/8 100.64.0.0/10 127.0.0.0/8 169.254.0.0/16 172.16.0.0/12
      192.168.0.0/16 224.0.0.0/4 240.0.0.0/4)
GATEWAY="${SUBNET%.*}.1"
SUDO=()
[[ $(id -u) == 0 ]] || SUDO=(sudo -n)
ipt() { "${SUDO[@]}" iptables -w "$@"; }
ip6t() { "${SUDO[@]}" ip6tables -w "$@"; }

egress_if() {
  if [[ -n "${FANCY_ENV_BUILD_EGRESS:-}" ]]; then echo "$FANCY_ENV_BUILD_EGRESS"; return; fi
  ip -4 route show default | awk '{for (i = 1; i < NF; i++) if ($i == "dev") {print $(i + 1); exit}}'
}

# The rules, one per line, as `table chain args...` (without -A/-D): `up` inserts what is
# missing, `check` tests each, `down` deletes everything carrying our comment.
rules() {
  local out=$1 c=(-m comment --comment "$TAG") entry net
  echo "nat POSTROUTING -s $SUBNET -o $out ${c[*]} -j MASQUERADE"
  echo "filter INPUT -i $BRIDGE -m addrtype --dst-type LOCAL ${c[*]} -j DROP"
  for net in $(resolvers); do
    echo "filter FORWARD -i $BRIDGE -d $net/32 -p udp --dport 53 ${c[*]} -j ACCEPT"
    echo "filter FORWARD -i $BRIDGE -d $net/32 -p tcp --dport 53 ${c[*]} -j ACCEPT"
  done
  for entry in $ALLOW; do
    [[ "$entry" =~ ^([0-9]{1,3}(\.[0-9]{1,3}){3}):([0-9]{1,5})$ ]] \
      || { echo "build-network.sh: FANCY_ENV_BUILD_ALLOW entry '$entry' is not IPv4:port" >&2; exit 2; }
    echo "filter FORWARD -i $BRIDGE -d ${BASH_REMATCH[1]}/32 -p tcp --dport ${BASH_REMATCH[3]} ${c[*]} -j ACCEPT"
  done
  for net in "${DENY[@]}" $(ip -4 -o addr show dev "$out" | awk '{print $4}'); do
    echo "filter FORWARD -i $BRIDGE -d $net ${c[*]} -j DROP"
  done
  echo "filter FORWARD -i $BRIDGE -o $out ${c[*]} -j ACCEPT"
  echo "filter FORWARD -i $BRIDGE ${c[*]} -j DROP"
  echo "filter FORWARD -o $BRIDGE -m conntrack --ctstate RELATED,ESTABLISHED ${c[*]} -j ACCEPT"
  echo "filter FORWARD -o $BRIDGE ${c[*]} -j DROP"
}

rules6() {
  local c=(-m comment --comment "$TAG")
  echo "filter INPUT -i $BRIDGE ${c[*]} -j DROP"
  echo "filter FORWARD -i $BRIDGE ${c[*]} -j DROP"
  echo "filter FORWARD -o $BRIDGE ${c[*]} -j DROP"
}

network_ok() {
  [[ "$(docker network inspect -f '{{.Driver}} {{(index .IPAM.Config 0).Subnet}} {{index .Options "com.docker.network.bridge.name"}}' "$NET" 2>/dev/null)" == "bridge $SUBNET $BRIDGE" ]]
}

# The host's IPv4 resolvers that are not on loopback. Docker 20.10's embedded DNS sends the
# forwarded query from the CONTAINER's namespace (only loopback resolvers are dialled from the
# host's), so the query crosses FORWARD: port 53 of these addresses is the one exception to the
# private-range drops. Docker reads /run/systemd/resolve/resolv.conf when systemd-resolved runs.
resolvers() {
  local conf=/etc/resolv.conf
  if grep -qE '^nameserver 127\.0\.0\.53' "$conf" 2>/dev/null && [[ -f /run/systemd/resolve/resolv.conf ]]; then
    conf=/run/systemd/resolve/resolv.conf
  fi
  awk '$1 == "nameserver" && $2 ~ /^[0-9.]+$/ && $2 !~ /^127\./ {print $2}' "$conf" 2>/dev/null | sort -u
}

# `up`: insert every wanted rule at the top of its chain (in order, so a later ACCEPT-all rule
# of someone else cannot pre-empt our DROPs), then delete our older copies below them: the
# rules never have a gap, and rules no longer wanted (an ALLOW entry removed) go away.
# `check`: report missing rules and stale ones (more tagged rules than wanted).
apply() {  # mode(up|check) tool save-command rules...
  local mode=$1 tool=$2 save=$3 missing=0 line table chain rest have key
  shift 3
  declare -A pos=()
  for line in "$@"; do
    read -r table chain rest <<<"$line"
    pos[$table/$chain]=$(( ${pos[$table/$chain]:-0} + 1 ))
    if [[ $mode == up ]]; then
      # shellcheck disable=SC2086
      $tool -t "$table" -I "$chain" "${pos[$table/$chain]}" $rest
    # shellcheck disable=SC2086
    elif ! $tool -t "$table" -C "$chain" $rest 2>/dev/null; then
      missing=$((missing + 1))
      echo "missing: ${tool/ipt/iptables} -t $table -A $chain $rest"
    fi
  done
  if [[ $mode == up ]]; then
    for key in "${!pos[@]}"; do purge_below "$tool" "${key%/*}" "${key#*/}" "${pos[$key]}"; done
    return 0
  fi
  have=$("${SUDO[@]}" "$save" 2>/dev/null | grep -c -- "--comment $TAG" || true)
  if (( have > $# )); then
    echo "stale: $((have - $#)) rule(s) tagged $TAG that are not wanted (run up)"; missing=1
  fi
  [[ $missing == 0 ]]
}

purge_below() {  # tool table chain keep: delete our tagged rules after position `keep`
  local tool=$1 table=$2 chain=$3 keep=$4 n
  for n in $($tool -t "$table" -L "$chain" -n --line-numbers \
      | awk -v tag="/* $TAG */" -v keep="$keep" 'NR > 2 && index($0, tag) && $1 > keep {print $1}' \
      | sort -rn); do
    $tool -t "$table" -D "$chain" "$n"
  done
}

delete_tagged() {  # tool (ipt|ip6t) save-command tables...
  local tool=$1 save=$2 table line
  shift 2
  for table in "$@"; do
    "${SUDO[@]}" "$save" -t "$table" 2>/dev/null | grep -- "--comment $TAG" \
      | sed 's/^-A /-D /' | while read -r line; do
        # shellcheck disable=SC2086
        eval "$tool -t $table $line" || true
      done
  done
}

up() {
  local out
  out=$(egress_if)
  [[ -n "$out" ]] || { echo "build-network.sh: no default route: builds would have no egress" >&2; exit 1; }
  if ! network_ok; then
    if docker network inspect "$NET" >/dev/null 2>&1; then
      echo "[build-network] $NET exists with other settings: recreating it"
      docker network rm "$NET" >/dev/null
    fi
    docker network create --driver bridge --subnet "$SUBNET" --gateway "$GATEWAY" \
      --opt com.docker.network.bridge.name="$BRIDGE" \
      --opt com.docker.network.bridge.enable_ip_masquerade=false \
      --label fancy-env.build-network=1 "$NET" >/dev/null
    echo "[build-network] created Docker network $NET ($SUBNET, bridge $BRIDGE)"
  fi
  # the bridge exists once the network does; no IPv6 on it (no fe80:: neighbours either)
  ip link show "$BRIDGE" >/dev/null 2>&1 && "${SUDO[@]}" sysctl -qw "net.ipv6.conf.$BRIDGE.disable_ipv6=1" 2>/dev/null || true
  [[ "$(cat /proc/sys/net/ipv4/ip_forward)" == 1 ]] || "${SUDO[@]}" sysctl -qw net.ipv4.ip_forward=1
  mapfile -t r4 < <(rules "$out")
  mapfile -t r6 < <(rules6)
  apply up ipt iptables-save "${r4[@]}"
  if ip6t -S >/dev/null 2>&1; then apply up ip6t ip6tables-save "${r6[@]}"; fi
  echo "[build-network] $NET ready (egress via $out, gateway $GATEWAY unreachable)"
}

check() {
  local out ok=0
  out=$(egress_if)
  network_ok || { echo "missing: Docker network $NET (bridge $BRIDGE, $SUBNET)"; ok=1; }
  [[ "$(cat /proc/sys/net/ipv4/ip_forward)" == 1 ]] || { echo "missing: net.ipv4.ip_forward=1"; ok=1; }
  if [[ -e /proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6 && "$(cat "/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6")" != 1 ]]; then
    echo "missing: net.ipv6.conf.$BRIDGE.disable_ipv6=1"; ok=1
  fi
  mapfile -t r4 < <(rules "$out")
  apply check ipt iptables-save "${r4[@]}" || ok=1
  if ip6t -S >/dev/null 2>&1; then
    mapfile -t r6 < <(rules6)
    apply check ip6t ip6tables-save "${r6[@]}" || ok=1
  fi
  return $ok
}

down() {
  if docker network inspect "$NET" >/dev/null 2>&1; then
    if docker network rm "$NET" >/dev/null; then echo "[build-network] removed Docker network $NET"
    else echo "[build-network] $NET is still in use (a build running?): network kept" >&2; fi
  fi
  delete_tagged ipt iptables-save filter nat
  if ip6t -S >/dev/null 2>&1; then delete_tagged ip6t ip6tables-save filter; fi
  echo "[build-network] rules tagged $TAG removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  check) check ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
