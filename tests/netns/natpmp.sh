#!/usr/bin/env bash
# NAT lab: a router that speaks NAT-PMP but not UPnP. The `upnp` provider finds no UPnP
# gateway, maps the port by NAT-PMP instead, and the node joins a public node's network
# through it; the mapping is removed when it stops.
source "$(dirname "$0")/lab.sh"
lab_require /usr/sbin/miniupnpd
lab_init

pub=http://$LAB_WAN.10:8080
lab_node pub pub1 --bind 0.0.0.0 --public-url "$pub" --tunnel direct
lab_start_upnpd natpmp-only
lab_node home home --bind 0.0.0.0 --tunnel upnp --join "$pub"
lab_await_path home upnp 30
url=$node_url home_id=$node_id
lab_check "mapped by NAT-PMP" 'grep -q "nat-pmp: $LAB_WAN.1:" "$LAB_WORK/home/log"'
lab_check "the URL is the router's wan address" '[[ $url == http://$LAB_WAN.1:* ]]'
lab_wait "home admitted into pub's network" 30 'lab_member_at pub "$home_id" "$url" upnp'
lab_check "the wan gets an /api/ route" 'lab_get client "$url/api/hello/"'
lab_check "the admin API is not reachable through the mapping" \
  '[ "$(lab_in client curl -s -o /dev/null -w "%{http_code}" -m 5 "$url/status")" = 404 ]'
lab_stop home
lab_check "the mapping is gone after home stopped" '[ -z "$(lab_mappings)" ]'
lab_check "the wan no longer reaches the router's port" '! lab_get client "$url/"'
