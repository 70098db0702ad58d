(function () {
  'use strict';

  var REFRESH_MS = 5000;
  var TIMEOUT_MS = 4000;
  var ID_CHARS = 12;

  var els = {
    error: document.getElementById('error'),
    network: document.getElementById('network-id'),
    fingerprint: document.getElementById('fingerprint'),
    admission: document.getElementById('admission'),
    members: document.getElementById('members'),
    updated: document.getElementById('updated')
  };

  var inFlight = false;
  var timer = null;

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function clock(d) {
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }

  function relative(ms) {
    if (typeof ms !== 'number' || !isFinite(ms) || ms <= 0) return 'never';
    // Clamp at zero: peers' clocks may run slightly ahead of ours.
    var s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }

  function shortId(el, id) {
    id = id == null ? '' : String(id);
    el.textContent = id.length > ID_CHARS ? id.slice(0, ID_CHARS) + '…' : id;
    el.title = id;
    return el;
  }

  function cell(tr, child) {
    var td = document.createElement('td');
    if (typeof child === 'string') td.textContent = child;
    else td.appendChild(child);
    tr.appendChild(td);
    return td;
  }

  function urlNode(url) {
    url = url == null ? '' : String(url);
    // Only link http(s) URLs so a peer can't inject javascript: links.
    if (/^https?:\/\//i.test(url)) {
      var a = document.createElement('a');
      a.href = url;
      a.rel = 'noopener noreferrer';
      a.textContent = url;
      return a;
    }
    return document.createTextNode(url);
  }

  function status(online) {
    var span = document.createElement('span');
    span.className = 'status ' + (online ? 'online' : 'offline');
    var dot = document.createElement('span');
    dot.className = 'dot';
    dot.setAttribute('aria-hidden', 'true');
    span.appendChild(dot);
    span.appendChild(document.createTextNode(online ? 'online' : 'offline'));
    return span;
  }

  // The first 16 hex digits of the network id in groups of four, as `./FILE.run` prints it.
  function fingerprint(id) {
    var s = typeof id === 'string' ? id.slice(0, 16) : '';
    return s.replace(/(.{4})(?=.)/g, '$1-');
  }

  function render(data) {
    shortId(els.network, data.network);
    if (els.fingerprint) els.fingerprint.textContent = fingerprint(data.network) || '…';
    if (els.admission) els.admission.hidden = data.admission !== 'invite';
    if (typeof data.download === 'boolean') showDownload(data.download);

    var nodes = Array.isArray(data.nodes) ? data.nodes : [];
    var frag = document.createDocumentFragment();
    nodes.forEach(function (n) {
      var tr = document.createElement('tr');
      cell(tr, shortId(document.createElement('code'), n.id));
      cell(tr, urlNode(n.url));
      cell(tr, status(n.online === true));
      var seen = cell(tr, relative(n.last_seen));
      if (typeof n.last_seen === 'number' && n.last_seen > 0) {
        seen.title = new Date(n.last_seen).toLocaleString();
      }
      cell(tr, n.version == null ? '' : String(n.version));
      frag.appendChild(tr);
    });
    if (!nodes.length) {
      var tr = document.createElement('tr');
      cell(tr, 'No members yet.').colSpan = 5;
      tr.firstChild.className = 'muted';
      frag.appendChild(tr);
    }
    els.members.textContent = '';
    els.members.appendChild(frag);
  }

  function showError(msg) {
    els.error.textContent = msg;
    els.error.hidden = !msg;
  }

  function errorMessage(res, body) {
    if (body && body.error && body.error.message) return String(body.error.message);
    return 'Request failed: HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
  }

  async function refresh() {
    if (inFlight) return;
    inFlight = true;
    var ctrl = new AbortController();
    var killer = setTimeout(function () { ctrl.abort(); }, TIMEOUT_MS);
    try {
      var res = await fetch('/nodes', {
        signal: ctrl.signal,
        cache: 'no-store',
        headers: { 'Accept': 'application/json' }
      });
      var body = null;
      try { body = await res.json(); } catch (e) {
        if (e && e.name === 'AbortError') throw e; // timed out mid-body
      }
      if (!res.ok) throw new Error(errorMessage(res, body));
      if (!body || typeof body !== 'object') throw new Error('Invalid response from /nodes');
      render(body);
      showError('');
      els.updated.textContent = 'updated ' + clock(new Date());
    } catch (e) {
      showError(e && e.name === 'AbortError' ? 'Request timed out.' : (e && e.message) || String(e));
    } finally {
      clearTimeout(killer);
      inFlight = false;
    }
  }

  // Chain with setTimeout rather than setInterval so a slow response
  // never overlaps with the next request.
  function loop() {
    refresh().then(function () {
      timer = setTimeout(loop, REFRESH_MS);
    });
  }

  // The download links only where this node offers the file (`download` in /nodes: a node in
  // --dev mode, or one still installing its release, has none).
  function showDownload(available) {
    document.querySelectorAll('.download-link').forEach(function (el) { el.hidden = !available; });
    document.body.dataset.download = available ? 'yes' : 'no';
    var note = document.getElementById('no-download');
    if (note) {
      note.hidden = available;
      note.textContent = available ? '' :
        'This node offers no download now (it runs no release yet, or runs in dev mode).';
    }
  }

  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible' && !inFlight) {
      clearTimeout(timer);
      loop();
    }
  });

  loop();
})();
