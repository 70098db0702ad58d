#!/usr/bin/env bash
# NAT lab: a node behind NAT is unreachable from the wan (its peer says so, its /status says
# "unreachable"); with miniupnpd on the router the `upnp` provider maps a port, the node
# joins a public node's network through it, is served to the wan, never exposes its admin API
# there, and removes the mapping when it stops.
source "$(dirname "$0")/lab.sh"
lab_require /usr/sbin/miniupnpd
lab_init

pub=http://$LAB_WAN.10:8080
lab_node pub pub1 --bind 0.0.0.0 --public-url "$pub" --tunnel direct
lab_wait "pub1 is reachable at $pub" 15 '[ "$(lab_status pub .tunnel.url)" = "$pub" ]'

# 1. Behind NAT, no port mapping: nobody on the wan reaches the node.
lab_node home home --bind 0.0.0.0 --public-url http://192.168.1.10:8080 --tunnel direct --join "$pub"
lab_wait "home has checked its direct path" 20 'lab_status home ".tunnel.failures[].provider" | grep -qx direct'
lab_check "home says it is unreachable" '[ "$(lab_status home .tunnel.provider)" = unreachable ]'
lab_check "home's direct failure names the URL" 'lab_status home ".tunnel.failures[0].error" | grep -q 192.168.1.10:8080'
lab_check "the wan cannot reach home at the router's address" '! lab_get client http://$LAB_WAN.1:8080/'
lab_check "the wan has no route to the home network" '! lab_get client http://192.168.1.10:8080/'
lab_check "home is not a member of pub's network" '[ "$(lab_admin pub /nodes | jq ".nodes | length")" = 1 ]'
lab_stop home

# 2. miniupnpd on the router: `upnp` maps a port, peers confirm it, the node joins.
lab_start_upnpd
lab_node home home --bind 0.0.0.0 --tunnel upnp,direct --upnp-lease 20 --join "$pub"
lab_await_path home upnp 30
url=$node_url home_id=$node_id mapped_at=$SECONDS
lab_check "the URL is the router's wan address" '[[ $url == http://$LAB_WAN.1:* ]]'
lab_check "the router holds one mapping to home:8080" '[ "$(lab_mappings | grep -c "dnat ip to 192.168.1.10:8080")" = 1 ]'
lab_wait "home admitted into pub's network" 30 'lab_member_at pub "$home_id" "" upnp'
lab_check "pub lists home at its upnp URL, via upnp" 'lab_member_at pub "$home_id" "$url" upnp'
lab_check "home is a member" '[ "$(lab_status home .network.member)" = true ]'
lab_check "the wan gets home's page" 'lab_get client "$url/" | grep -qi "<html"'
lab_check "the wan gets an /api/ route" 'lab_get client "$url/api/hello/"'
lab_check "the admin API is not reachable through the mapping" \
  '[ "$(lab_in client curl -s -o /dev/null -w "%{http_code}" -m 5 "$url/status")" = 404 ]'

# The router drops a mapping when its lease ends (20 s here); the node renews it at half-time.
lab_wait "home renewed its lease" 30 'grep -q "upnp: renewed the mapping of port 8080 (lease 20 s)" "$LAB_WORK/home/log"'
lab_log "waiting past the first lease's end"
lab_wait "24 s since the mapping was made" 30 '(( SECONDS - mapped_at >= 24 ))'
lab_check "the mapping outlived its first lease" '[ "$(lab_mappings | grep -c "dnat ip to 192.168.1.10:8080")" = 1 ]'
lab_check "the wan still reaches home" 'lab_get client "$url/api/hello/"'

# 3. A clean stop removes the mapping.
lab_stop home
lab_check "home's mapping is gone after it stopped" '[ -z "$(lab_mappings)" ]'
lab_check "the wan no longer reaches the router's port" '! lab_get client "$url/"'
