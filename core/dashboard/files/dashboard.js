// The operator's dashboard (docs/operations.md, "The dashboard"). It polls the admin routes
// every second: /status, /nodes and /releases answer in a few milliseconds on loopback, and the
// admin listener has one worker, which a held-open event stream would take. Every value is
// written with textContent: nothing a peer announces becomes markup.
'use strict';

const POLL_MS = 1000;
// The session's token: handed over once in the login redirect's fragment, kept for this tab in
// sessionStorage (this origin only, port included) and sent with every request. The cookie
// alone, which browsers send to every port of 127.0.0.1, opens nothing.
const TOKEN_KEY = 'peerstack-session-token';
if (location.hash.startsWith('#csrf=')) {
  sessionStorage.setItem(TOKEN_KEY, location.hash.slice(6));
  history.replaceState(null, '', location.pathname);
}
let csrf = sessionStorage.getItem(TOKEN_KEY) || '';
let lastOk = 0;
let selfId = '';

const $ = (sel) => document.querySelector(sel);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function short(hex, n = 12) {
  return hex ? String(hex).slice(0, n) : '';
}

function ago(ms) {
  if (!ms) return 'never';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 2) return 'now';
  if (s < 120) return s + ' s ago';
  if (s < 7200) return Math.round(s / 60) + ' min ago';
  return Math.round(s / 3600) + ' h ago';
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  if (s < 120) return s + ' s';
  if (s < 7200) return Math.floor(s / 60) + ' min';
  if (s < 172800) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' days';
}

// A JSON request on the admin listener; throws an Error with the node's message.
async function api(method, path, body) {
  const headers = { 'x-csrf-token': csrf };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let json = null;
  try { json = await r.json(); } catch (e) { json = null; }
  if (!r.ok) {
    const err = new Error((json && json.error && json.error.message) || ('HTTP ' + r.status));
    err.status = r.status;
    throw err;
  }
  return json;
}

function showResult(text, bad) {
  const p = $('#result');
  p.hidden = false;
  p.textContent = text;
  p.className = bad ? 'bad' : '';
}

function facts(dl, rows) {
  dl.replaceChildren();
  for (const [k, v, cls] of rows) {
    dl.append(el('dt', k), el('dd', v, cls));
  }
}

function renderNode(st) {
  const n = st.node || {};
  const net = st.network || {};
  const tn = st.tunnel || {};
  const rel = st.release || {};
  selfId = n.id || '';
  $('#title-node').textContent = short(n.id, 16);
  const failures = (tn.failures || []).map((f) => f.provider + ': ' + f.error).join('; ');
  const loaded = ((st.plugins && st.plugins.loaded) || []).map((p) => p.name + ' ' + p.version);
  const failed = ((st.plugins && st.plugins.failed) || []).map((p) => p.file + ' (' + p.reason + ')');
  const running = rel.running && rel.running.version !== undefined
    ? (rel.running.version === 0 ? 'its own files (release 0)' : 'release ' + rel.running.version)
    : 'nothing yet';
  facts($('#node'), [
    ['id', n.id, 'mono'],
    ['network', net.id || '(none yet)', 'mono'],
    ['state hash', net.state_hash || '', 'mono'],
    ['uptime', duration(n.uptime_ms || 0)],
    ['version', n.version + (st.dev ? ' (dev mode)' : '')],
    ['release', running + ' — ' + (rel.phase || '') + (rel.detail ? ': ' + rel.detail : '')],
    ['reached', (tn.provider || '?') + ' at ' + (tn.url || n.url || '?')],
    ['other providers', failures || 'none failed'],
    ['relay', st.relay ? 'serving on port ' + st.relay.port + ', relaying ' + st.relay.relayed +
      ' node(s)' : 'not serving'],
    ['plugins', loaded.length ? loaded.join(', ') : 'none'],
    ['refused plugins', failed.length ? failed.join('; ') : 'none', failed.length ? 'bad' : ''],
    ['members', String(net.members || 0) + ' (admission: ' + (net.admission || '?') + ')'],
  ]);
}

function whyBehind(node, rollout) {
  if (!node.online) {
    return node.last_seen ? 'not heard from for ' + ago(node.last_seen).replace(' ago', '')
      : 'never heard from';
  }
  if (rollout && rollout.why) return rollout.why;
  return '';
}

function renderPeers(nodes, releases, st) {
  const byId = {};
  for (const r of (releases && releases.nodes) || []) byId[r.id] = r;
  const rtt = {};  // by URL: how long the last message to it took
  for (const p of (st.transport && st.transport.peers) || []) rtt[p.peer] = p.rtt_ms;
  const tbody = $('#peers tbody');
  tbody.replaceChildren();
  for (const n of nodes.nodes || []) {
    const tr = document.createElement('tr');
    tr.dataset.id = n.id;
    const self = n.id === selfId;
    const rel = byId[n.id] || {};
    const state = n.agrees === true ? 'same' : n.agrees === false ? 'differs' : 'unknown';
    tr.append(
      el('td', short(n.id) + (self ? ' (this node)' : ''), 'mono'),
      el('td', n.url),
      el('td', n.via === 'direct' ? 'direct' : 'relay via ' + n.via, 'path'),
      el('td', n.online ? 'online' : 'offline', n.online ? 'ok online' : 'bad online'),
      el('td', self ? 'now' : ago(n.last_seen)),
      el('td', self ? '' : rtt[n.url] >= 0 ? rtt[n.url] + ' ms' : '—', 'rtt'),
      el('td', n.version || '—'),
      el('td', rel.version !== undefined ? rel.version : (n.release || '—')),
      el('td', state, state === 'same' ? 'ok state' : state === 'differs' ? 'warn state' : 'state'),
      el('td', whyBehind(n, rel), 'why'));
    const act = document.createElement('td');
    if (!self) {
      const b = el('button', 'Evict', 'danger evict-btn');
      b.type = 'button';
      b.dataset.id = n.id;
      b.addEventListener('click', () => evict(n.id));
      act.append(b);
    }
    tr.append(act);
    tbody.append(tr);
  }
  const members = (nodes.nodes || []).length;
  const same = (nodes.nodes || []).filter((n) => n.agrees === true).length;
  const unknown = (nodes.nodes || []).filter((n) => n.agrees === null || n.agrees === undefined).length;
  $('#agreement').textContent = members === 0 ? 'not a member of a network yet'
    : same + ' of ' + members + ' members hold the same state as this node' +
      (unknown ? ' (' + unknown + ' not heard from yet)' : '');
}

function renderJoins(st) {
  const net = st.network || {};
  const quorum = net.quorum || 0;
  $('#joins').textContent = (net.pending_joins || 0) + ' join request(s) waiting, ' +
    (net.pending_approvals || 0) + ' approval(s) collected (a join needs ' + quorum + ' of ' +
    (net.members || 0) + ' members)';
  const ul = $('#refusals');
  ul.replaceChildren();
  for (const r of net.join_refusals || []) ul.append(el('li', 'refused: ' + r, 'bad'));
}

function renderReleases(releases, st) {
  const ro = releases && releases.rollout;
  const ul = $('#stages');
  ul.replaceChildren();
  if (!ro) {
    const v = st.network && st.network.release;
    $('#release').textContent = v ? 'release ' + v + ' in force'
      : 'no release yet: the network runs release 0 (the files its founder started with)';
    return;
  }
  $('#release').textContent = 'release ' + ro.version + (ro.halted ? ' — HALTED' : '') +
    (ro.expired ? ' — EXPIRED' : '') + ': ' + ro.healthy + ' healthy, ' + ro.failures +
    ' failed (halts at ' + ro.max_failures + ')';
  for (const s of ro.stages || []) {
    ul.append(el('li', 'stage ' + s.stage + ': ' + s.members + ' member(s), ' +
      (s.started ? 'started' : 'not started')));
  }
}

async function refresh() {
  try {
    const [st, nodes, releases] = await Promise.all([
      api('GET', '/status'), api('GET', '/nodes'), api('GET', '/releases')]);
    $('#login').hidden = true;
    $('#main').hidden = false;
    renderNode(st);
    renderPeers(nodes, releases, st);
    renderJoins(st);
    renderReleases(releases, st);
    lastOk = Date.now();
    $('#live').textContent = 'live';
    $('#live').className = 'ok';
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      csrf = '';
      sessionStorage.removeItem(TOKEN_KEY);
      $('#login').hidden = false;
      $('#main').hidden = true;
      $('#live').textContent = 'not logged in';
    } else {
      $('#live').textContent = 'node not answering (' + e.message + ')' +
        (lastOk ? ', last update ' + ago(lastOk) : '');
      $('#live').className = 'bad';
    }
  }
  setTimeout(refresh, POLL_MS);
}

async function act(what, fn) {
  try {
    const r = await fn();
    showResult(what + ': ' + r, false);
  } catch (e) {
    showResult(what + ' failed: ' + e.message, true);
  }
}

function evict(id) {
  if (!confirm('Evict member ' + short(id) + '? The members vote; an evicted node must join again.')) return;
  act('evict', async () => {
    await api('POST', '/evict', { id });
    return 'asked the members to evict ' + short(id);
  });
}

function wire() {
  $('#join-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const url = $('#join-url').value.trim();
    act('join', async () => 'asking ' + (await api('POST', '/join', { url })).joining + ' to admit this node');
  });
  $('#sync-btn').addEventListener('click', () => act('sync', async () => {
    const r = await api('GET', '/sync');
    return r.added + ' new event(s), ' + r.events + ' in all';
  }));
  $('#leave-btn').addEventListener('click', () => {
    if (!confirm('Leave the network? This node stops being a member; joining again needs approval.')) return;
    act('leave', async () => { await api('POST', '/leave'); return 'left the network'; });
  });
  $('#invite-btn').addEventListener('click', () => act('invitation', async () => {
    const r = await api('POST', '/invitations', {});
    const p = $('#invitation');
    p.hidden = false;
    p.replaceChildren(el('span', 'Send this link to a friend (one use): '), el('code', r.link));
    return 'made one, valid until ' + new Date(r.expires).toLocaleString();
  }));
  $('#publish-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f = $('#publish-file').files[0];
    if (!f) return;
    if (!confirm('Publish ' + f.name + ' to the whole network? A release cannot be taken back, only replaced.')) return;
    act('publish', async () => {
      const file = JSON.parse(await f.text());
      const r = await api('POST', '/releases', { manifest: file.manifest, signatures: file.signatures });
      return 'release ' + r.version + ' published (code ' + short(r.code, 16) + ')';
    });
  });
}

wire();
refresh();
