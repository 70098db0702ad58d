# The NAT lab: a small internet in network namespaces, for the reachability tests.
# Sourced by the scenario scripts next to it; run as root (CTest runs them; see README).
#
#   client, pub1, pub2 (100.128.0.20/.10/.11) --- wan bridge --- (100.128.0.1) router (192.168.1.1) --- home (192.168.1.10)
#                                                               nftables NAT (masquerade), miniupnpd on demand
#
# Every namespace is named <prefix>-<role>, the prefix unique per run, and created with its
# interfaces inside it: nothing is added to the host's own network, no namespace has a route
# out of the lab, so no packet leaves it. 100.128.0.0/24 sits outside the reserved ranges
# because miniupnpd refuses to map ports behind a "private" external address.
# Teardown (an EXIT trap) kills every process started in the lab's namespaces by PID, then
# deletes the namespaces, their /etc/netns entries and the work directory, also on failure.
#
# Scenario scripts exit 0 (all checks passed), 1 (a check failed) or 77 (skipped: not root,
# a package missing; CTest reports the test as skipped, never as passed).

set -uo pipefail

LAB_BIN=${PEERSTACK_BIN:?set PEERSTACK_BIN to the peerstack binary}
LAB_SRC=${PEERSTACK_SOURCE_DIR:?set PEERSTACK_SOURCE_DIR}
LAB_PLUGINS=${PEERSTACK_PLUGINS_DIR:?set PEERSTACK_PLUGINS_DIR}
LAB_PREFIX="psl$$"
LAB_WAN=100.128.0
LAB_WORK=""
LAB_FAILS=0
LAB_NAMESPACES=()
declare -A LAB_NODE_NS=() LAB_NODE_PID=()
LAB_PIDS=()

lab_skip() {
  echo "SKIP: $*"
  exit 77
}

# lab_require [command...]: root, network namespaces and the tools, or an explicit skip.
lab_require() {
  [[ $(id -u) -eq 0 ]] || lab_skip "the NAT lab needs root (network namespaces, nftables)"
  local c
  for c in ip nft curl jq "$@"; do
    command -v "$c" >/dev/null 2>&1 || lab_skip "'$c' is missing (scripts/install-deps.sh --lab installs the lab's packages)"
  done
  ip netns add "$LAB_PREFIX-probe" 2>/dev/null || lab_skip "cannot create network namespaces on this machine"
  ip netns del "$LAB_PREFIX-probe"
  lab_sweep_stale
}

# Removes what an earlier run killed without its cleanup (SIGKILL) left behind: namespaces
# named psl<pid>-* whose pid is gone, their processes and /etc/netns entries.
lab_sweep_stale() {
  local ns pid
  for ns in $(ip netns list | grep -oE '^psl[0-9]+-[a-z0-9]+'); do
    pid=${ns#psl}
    pid=${pid%%-*}
    kill -0 "$pid" 2>/dev/null && continue
    echo "removing stale lab namespace $ns"
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
}

lab_log() { echo "[lab $(date +%T.%3N)] $*"; }

lab_cleanup() {
  local pid ns
  # The watchdog's sleep first: once it is gone, the watchdog ends without a signal.
  [[ -n ${LAB_WATCHDOG:-} ]] && { pkill -P "$LAB_WATCHDOG" 2>/dev/null; kill "$LAB_WATCHDOG" 2>/dev/null; }
  for ns in "${LAB_NAMESPACES[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do LAB_PIDS+=("$pid"); done
  done
  for pid in "${LAB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${LAB_PIDS[@]}"; do
    lab_await_exit "$pid" 3 || kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for ns in "${LAB_NAMESPACES[@]}"; do
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  [[ -n $LAB_WORK && ${LAB_KEEP:-0} != 1 ]] && rm -rf "$LAB_WORK"
  return 0
}

lab_finish() {
  local status=$?
  trap '' INT TERM  # the cleanup runs to its end
  if ((status != 0 && status != 77)) || ((LAB_FAILS > 0)); then
    lab_dump_logs
  fi
  lab_cleanup
  if ((status == 0 && LAB_FAILS > 0)); then status=1; fi
  ((status == 0)) && echo "ALL CHECKS PASSED"
  exit "$status"
}

lab_dump_logs() {
  local name
  for name in "${!LAB_NODE_NS[@]}"; do
    echo "---- last lines of $name's log"
    tail -n 25 "$LAB_WORK/$name/log" 2>/dev/null
  done
  [[ -f $LAB_WORK/miniupnpd.log ]] && { echo "---- miniupnpd"; tail -n 15 "$LAB_WORK/miniupnpd.log"; }
  return 0
}

# Creates the work dir, the wan, the public hosts, the router and the home network.
lab_init() {
  LAB_WORK=$(mktemp -d "/tmp/peerstack-lab.XXXXXX")
  trap lab_finish EXIT
  trap 'echo "stopped by a signal"; exit 130' INT TERM
  # A watchdog ends the run (TERM: the cleanup runs) before CTest's timeout would SIGKILL it.
  # (Only if this script still runs: after a SIGKILL its pid could be another process's.)
  (
    exec >/dev/null 2>&1
    sleep "${LAB_DEADLINE:-200}" && grep -q "tests/netns/" "/proc/$$/cmdline" && kill -TERM $$
  ) &
  LAB_WATCHDOG=$!
  local ns role
  for role in wan client pub1 pub2 router home; do
    ns="$LAB_PREFIX-$role"
    ip netns add "$ns" || { echo "cannot create namespace $ns"; exit 1; }
    LAB_NAMESPACES+=("$ns")
    ip -n "$ns" link set lo up
  done
  local wan="$LAB_PREFIX-wan"
  ip -n "$wan" link add br0 type bridge
  ip -n "$wan" link set br0 up
  # Public hosts on the wan.
  local host addr
  for host in client:20 pub1:10 pub2:11; do
    role=${host%%:*}
    addr=$LAB_WAN.${host##*:}
    ip -n "$LAB_PREFIX-$role" link add eth0 type veth peer name "w-$role" netns "$wan"
    ip -n "$wan" link set "w-$role" master br0 up
    ip -n "$LAB_PREFIX-$role" addr add "$addr/24" dev eth0
    ip -n "$LAB_PREFIX-$role" link set eth0 up
  done
  # The router: wan side and home side, forwarding with NAT.
  local r="$LAB_PREFIX-router" h="$LAB_PREFIX-home"
  ip -n "$r" link add r-wan type veth peer name w-router netns "$wan"
  ip -n "$wan" link set w-router master br0 up
  ip -n "$r" addr add "$LAB_WAN.1/24" dev r-wan
  ip -n "$r" link set r-wan up
  ip -n "$r" link add r-lan type veth peer name eth0 netns "$h"
  ip -n "$r" addr add 192.168.1.1/24 dev r-lan
  ip -n "$r" link set r-lan up
  ip -n "$h" addr add 192.168.1.10/24 dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" route add default via 192.168.1.1  # also carries SSDP multicast and NAT-PMP
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
  # Chain names as miniupnpd's nftables backend expects them (table inet filter).
  ip netns exec "$r" nft -f - <<NFT || { echo "nftables set-up failed"; exit 1; }
table inet filter {
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "r-lan" oifname "r-wan" accept
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "r-wan" ip saddr 192.168.1.0/24 masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
NFT
  lab_log "lab up: wan $LAB_WAN.0/24 (client .20, pub1 .10, pub2 .11, router .1), home 192.168.1.10 behind NAT"
}

lab_ns() { echo "$LAB_PREFIX-$1"; }

# lab_hosts ROLE LINE...: /etc/hosts lines seen by programs started in ROLE's namespace
# (ip netns exec bind-mounts /etc/netns/<ns>/hosts); call before starting them.
lab_hosts() {
  local role=$1
  shift
  mkdir -p "/etc/netns/$LAB_PREFIX-$role"
  printf '127.0.0.1 localhost\n::1 localhost\n' >"/etc/netns/$LAB_PREFIX-$role/hosts"
  printf '%s\n' "$@" >>"/etc/netns/$LAB_PREFIX-$role/hosts"
  echo "nameserver 127.0.0.1" >"/etc/netns/$LAB_PREFIX-$role/resolv.conf"  # no DNS beyond the lab
}

# Runs a command in a role's namespace.
lab_in() {
  local role=$1
  shift
  ip netns exec "$LAB_PREFIX-$role" "$@"
}

# lab_start_upnpd [upnp]: starts miniupnpd on the router: UPnP IGD and NAT-PMP, or with
# "natpmp-only" NAT-PMP alone (a router that does not speak UPnP).
lab_start_upnpd() {
  local upnp=yes
  [[ ${1:-} == natpmp-only ]] && upnp=no
  cat >"$LAB_WORK/miniupnpd.conf" <<CONF
ext_ifname=r-wan
listening_ip=r-lan
http_port=5000
enable_upnp=$upnp
enable_natpmp=yes
secure_mode=yes
system_uptime=yes
ext_perform_stun=no
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b
upnp_table_name=filter
upnp_nat_table_name=filter
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
allow 1024-65535 192.168.1.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
CONF
  ip netns exec "$LAB_PREFIX-router" /usr/sbin/miniupnpd -f "$LAB_WORK/miniupnpd.conf" -d \
    -P "$LAB_WORK/miniupnpd.pid" >"$LAB_WORK/miniupnpd.log" 2>&1 &
  LAB_PIDS+=($!)
  if [[ $upnp == yes ]]; then
    lab_wait "miniupnpd listening on the router" 10 "lab_in router bash -c 'exec 3<>/dev/tcp/192.168.1.1/5000'"
  else
    lab_wait "miniupnpd (NAT-PMP) listening on the router" 10 "lab_in router ss -lun | grep -q '192.168.1.1:5351 '"
  fi
}

# The port mappings miniupnpd has installed (DNAT rules), one per line.
lab_mappings() { lab_in router nft list chain inet filter prerouting_miniupnpd | grep dnat || true; }

# lab_node NAME ROLE [peerstack run flags...]: a node in ROLE's namespace, public port 8080,
# admin port 8081 (loopback of that namespace), data and log in the work dir.
lab_node() {
  local name=$1 role=$2
  shift 2
  mkdir -p "$LAB_WORK/$name"
  ip netns exec "$LAB_PREFIX-$role" "$LAB_BIN" run --data-dir "$LAB_WORK/$name/data" \
    --front "$LAB_SRC/front" --plugins "$LAB_PLUGINS" --port 8080 --admin-port 8081 \
    --admission open "$@" \
    >>"$LAB_WORK/$name/log" 2>&1 &
  LAB_NODE_PID[$name]=$!
  LAB_NODE_NS[$name]=$role
  LAB_PIDS+=($!)
  lab_wait "$name answering its admin API" 30 "lab_admin $name /status"
}

# lab_stop NAME [SIGNAL]: stops a node and waits for it (10 s).
lab_stop() {
  local name=$1 sig=${2:-TERM} pid=${LAB_NODE_PID[$1]}
  kill "-$sig" "$pid" 2>/dev/null
  lab_await_exit "$pid" 10 || { echo "$name did not stop within 10 s: killed"; kill -KILL "$pid" 2>/dev/null; }
  wait "$pid" 2>/dev/null
  return 0
}

# lab_await_exit PID SECONDS: returns as soon as PID has exited (true), or after SECONDS
# (false). Any process, not only this shell's children (tail --pid watches it).
lab_await_exit() {
  kill -0 "$1" 2>/dev/null || return 0
  timeout "$2" tail --pid="$1" -s 0.05 -f /dev/null 2>/dev/null
}

# lab_admin NAME PATH: GET on the node's admin API (from inside its namespace), JSON on stdout.
lab_admin() {
  local name=$1 path=$2 role=${LAB_NODE_NS[$1]}
  local token
  token=$(cat "$LAB_WORK/$name/data/admin.token" 2>/dev/null) || return 1
  lab_in "$role" curl -sf -m 5 -H "Authorization: Bearer $token" "http://127.0.0.1:8081$path"
}

# lab_await_path NAME PROVIDER SECONDS: waits until the node is reachable through PROVIDER;
# sets node_url and node_id.
lab_await_path() {
  local name=$1 provider=$2 seconds=$3
  lab_wait "$name reachable through $provider" "$seconds" "[ \"\$(lab_status $name .tunnel.provider)\" = $provider ]"
  node_url=$(lab_status "$name" .tunnel.url)
  node_id=$(lab_status "$name" .node.id)
  lab_log "$name is $node_id at $node_url"
}

# lab_member_at OBSERVER ID URL VIA: does OBSERVER's /nodes list ID at URL, reached via VIA?
lab_member_at() {
  lab_admin "$1" /nodes | jq -e --arg k "$2" --arg u "$3" --arg v "$4" \
    '.nodes[] | select(.id == $k and ($u == "" or .url == $u) and .via == $v)' >/dev/null
}

# lab_get ROLE URL: the body of a 200 answer, from ROLE's namespace.
lab_get() { lab_in "$1" curl -sf -m 5 "$2"; }

# lab_status NAME JQ: a field of the node's /status.
lab_status() { lab_admin "$1" /status | jq -r "$2"; }

# lab_wait DESCRIPTION SECONDS CONDITION: polls CONDITION (shell code, run in this shell so it
# sees the lab's functions) until it holds or the deadline passes; the scenario fails then.
lab_wait() {
  local what=$1 seconds=$2 cond=$3
  local deadline=$((SECONDS + seconds))
  while ((SECONDS < deadline)); do
    if eval "$cond" >/dev/null 2>&1; then
      lab_log "ok: $what"
      return 0
    fi
    sleep 0.2
  done
  echo "TIMEOUT after ${seconds}s waiting for: $what"
  exit 1
}

# lab_check DESCRIPTION CONDITION: one assertion (shell code); the run goes on after a failure.
lab_check() {
  local what=$1 cond=$2
  if eval "$cond" >/dev/null 2>&1; then
    echo "PASS: $what"
  else
    echo "FAIL: $what"
    LAB_FAILS=$((LAB_FAILS + 1))
  fi
}
