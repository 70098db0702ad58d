#!/usr/bin/env bash
# NAT lab, no NAT involved: a member whose packets are dropped (nftables `drop` in its own
# namespace: no RST, no ICMP, every connection to it hangs until a deadline), which is what
# the internet does to a sleeping laptop or an expired mapping. A join into the network still
# completes through the others, in at most 1.5x the time of a join measured in the same run
# while everyone answered (plus 300 ms: the joiner's timer ticks every 100 ms, and this
# script polls every 20 ms through curl); the silent member is shown offline; once its packets
# pass again it catches up.
source "$(dirname "$0")/lab.sh"
lab_require
lab_init

pub1=http://$LAB_WAN.10:8080
pub2=http://$LAB_WAN.11:8080
cli=http://$LAB_WAN.20:8080
rtr=http://$LAB_WAN.1:8080
lab_node pub1 pub1 --bind 0.0.0.0 --public-url "$pub1" --tunnel direct
lab_node pub2 pub2 --bind 0.0.0.0 --public-url "$pub2" --tunnel direct --join "$pub1"
lab_wait "pub2 admitted" 30 '[ "$(lab_admin pub1 /nodes | jq ".nodes | length")" = 2 ]'

now_ms() { date +%s%3N; }
# timed_join NAME ROLE URL: starts a node that joins pub1; sets join_ms to how long it took
# from its admin API answering to its being a member (not in a subshell: lab_node records
# the node for the lab's functions and its cleanup).
timed_join() {
  local name=$1 role=$2 url=$3 t0 deadline
  lab_node "$name" "$role" --bind 0.0.0.0 --public-url "$url" --tunnel direct --join "$pub1"
  t0=$(now_ms)
  deadline=$((SECONDS + 60))
  join_ms=999999
  while ((SECONDS < deadline)); do
    if [ "$(lab_status "$name" .network.member)" = true ]; then
      join_ms=$(($(now_ms) - t0))
      return 0
    fi
    sleep 0.02
  done
}

timed_join cli client "$cli"
healthy=$join_ms
lab_log "join with every member answering: $healthy ms"
lab_wait "three members agree" 20 '[ "$(lab_admin pub2 /nodes | jq ".nodes | length")" = 3 ]'

# pub2 goes silent: everything in or out of its namespace is dropped.
lab_in pub2 nft -f - <<'NFT'
table inet silence {
  chain input { type filter hook input priority -10; policy drop; }
  chain output { type filter hook output priority -10; policy drop; }
}
NFT
lab_log "pub2's packets are dropped from now on"
timed_join rtr router "$rtr"
silent=$join_ms
lab_log "join with pub2 silent: $silent ms (healthy: $healthy ms)"
echo "silent-member join: healthy ${healthy} ms, with a silent member ${silent} ms" >"$LAB_WORK/figures"
lab_check "the join completed within 1.5x the healthy join + 300 ms" "((silent <= healthy * 3 / 2 + 300))"
lab_wait "pub1 and cli agree on four members" 20 \
  '[ "$(lab_admin pub1 /status | jq .network.state_hash)" = "$(lab_admin cli /status | jq .network.state_hash)" ] && [ "$(lab_admin pub1 /nodes | jq ".nodes | length")" = 4 ]'
pub2_id=$(lab_admin pub1 /nodes | jq -r --arg u "$pub2" '.nodes[] | select(.url == $u) | .id')
lab_wait "pub1 shows pub2 offline" 20 \
  '[ "$(lab_admin pub1 /nodes | jq --arg k "$pub2_id" ".nodes[] | select(.id == \$k) | .online")" = false ]'
lab_wait "pub1's transport gave up on exchanges with pub2 (deadlines), at most 2 in flight" 15 \
  '[ "$(lab_status pub1 "[.transport.peers[] | select(.peer == \"$pub2\")][0] | select(.failed >= 1 and .in_flight <= 2) | .failed")" -ge 1 ]'
lab_check "/sync on pub1 answers within 4 s" \
  'lab_in pub1 timeout 4 curl -sf -H "Authorization: Bearer $(cat $LAB_WORK/pub1/data/admin.token)" http://127.0.0.1:8081/sync'

# Its packets pass again: it catches up (it missed rtr's admission) and is online again.
lab_in pub2 nft delete table inet silence
lab_log "pub2's packets pass again"
lab_wait "pub2 caught up: four members, the same state as pub1" 40 \
  '[ "$(lab_admin pub2 /status | jq .network.state_hash)" = "$(lab_admin pub1 /status | jq .network.state_hash)" ] && [ "$(lab_admin pub2 /nodes | jq ".nodes | length")" = 4 ]'
lab_wait "pub1 shows pub2 online again" 30 \
  '[ "$(lab_admin pub1 /nodes | jq --arg k "$pub2_id" ".nodes[] | select(.id == \$k) | .online")" = true ]'
cat "$LAB_WORK/figures"
