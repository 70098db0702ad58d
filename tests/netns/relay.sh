#!/usr/bin/env bash
# NAT lab, no UPnP on the router: a node behind NAT joins through a public member's relay and
# is served to the wan from the relay's port — page, its assets, /nodes and an /api/ route, as
# a browser fetches them; the admin API is not reachable there. With --failover: that relay
# member is killed, the node moves to the other member's relay and announces its new URL.
source "$(dirname "$0")/lab.sh"
failover=0
[[ ${1:-} == --failover ]] && failover=1
lab_require
lab_init

pub1=http://$LAB_WAN.10:8080
pub2=http://$LAB_WAN.11:8080
lab_node pub1 pub1 --bind 0.0.0.0 --public-url "$pub1" --tunnel direct --relay-port 9000
lab_node pub2 pub2 --bind 0.0.0.0 --public-url "$pub2" --tunnel direct --relay-port 9000 --join "$pub1"
lab_wait "pub2 admitted" 30 '[ "$(lab_admin pub1 /nodes | jq ".nodes | length")" = 2 ]'

# The home node: no UPnP on its router, so `upnp` fails and `relay` is used; it finds the
# relays by itself (no --relay-via): the node it joins, then the members, name theirs.
lab_node home home --bind 0.0.0.0 --tunnel upnp,relay --join "$pub1"
lab_await_path home relay 60
url=$node_url home_id=$node_id
lab_check "upnp was tried and failed" 'lab_status home ".tunnel.failures[].provider" | grep -qx upnp'
lab_check "the URL is on pub1's address" '[[ $url == http://$LAB_WAN.10:* ]]'
lab_wait "home admitted into the network" 40 'lab_member_at pub2 "$home_id" "" relay'
lab_check "pub2 lists home at its relay URL" 'lab_member_at pub2 "$home_id" "$url" relay'

# What a browser on the wan does: the page, the files it links, then the API calls.
browse() {
  local base=$1 page asset
  page=$(lab_get client "$base/") || { echo "browse: no page at $base/"; return 1; }
  grep -qi "<html" <<<"$page" || { echo "browse: not a page"; return 1; }
  # What the page loads (scripts, styles, images), not what it links to.
  for asset in $(grep -oE '(src="/[^"]+"|href="/[^"]+\.(css|js|svg|png|ico)")' <<<"$page" | sed -E 's/^(src|href)="//; s/"$//'); do
    lab_get client "$base$asset" >/dev/null || { echo "asset $asset failed"; return 1; }
  done
  lab_get client "$base/nodes" | jq -e '.nodes | length == 3' >/dev/null || { echo "browse: /nodes"; return 1; }
  lab_get client "$base/api/hello/" >/dev/null || { echo "browse: /api/hello/"; return 1; }
  # A client-side route of the single-page app falls back to the page.
  lab_get client "$base/some/app/route" | grep -qi "<html" || { echo "browse: SPA route"; return 1; }
}
lab_check "a browser-like client gets page, assets, /nodes and /api/hello/ through the relay" 'browse "$url"'
lab_check "the admin API is not reachable through the relay" \
  '[ "$(lab_in client curl -s -o /dev/null -w "%{http_code}" -m 5 "$url/status")" = 404 ]'
lab_check "home is not reachable any other way" '! lab_get client http://$LAB_WAN.1:8080/'
lab_check "pub1 relays one node" '[ "$(lab_status pub1 .relay.relayed)" = 1 ]'

if ((failover)); then
  lab_log "killing pub1 (and its relay)"
  lab_stop pub1 KILL
  lab_wait "home moved to pub2's relay" 60 \
    '[ "$(lab_status home .tunnel.provider)" = relay ] && [[ "$(lab_status home .tunnel.url)" == http://$LAB_WAN.11:* ]]'
  url2=$(lab_status home .tunnel.url)
  lab_log "home's new URL: $url2"
  lab_wait "pub2 learnt home's new URL" 30 'lab_member_at pub2 "$home_id" "$url2" relay'
  lab_check "home's failures say why it moved" 'lab_status home ".tunnel.failures[].provider" | grep -qx relay'
  lab_check "a browser-like client gets everything through the new relay" 'browse "$url2"'
  lab_check "the old URL is dead" '! lab_get client "$url/"'
fi
