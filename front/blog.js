(function () {
  'use strict';

  // Lists the blog plugin's posts with their comments (GET /api/blog/posts): every node of
  // the network holds them (replicated collections). Data is written with textContent only:
  // titles, bodies and comments are user content.
  var REFRESH_MS = 5000;
  var TIMEOUT_MS = 4000;
  var els = {
    error: document.getElementById('error'),
    posts: document.getElementById('posts'),
    updated: document.getElementById('updated')
  };
  var inFlight = false;

  function showError(message) {
    els.error.textContent = message;
    els.error.hidden = !message;
  }

  function date(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return '';
    return new Date(ms).toLocaleString();
  }

  function render(posts) {
    els.posts.textContent = '';
    if (!posts.length) {
      var empty = document.createElement('p');
      empty.className = 'muted';
      empty.textContent = 'No posts yet.';
      els.posts.appendChild(empty);
      return;
    }
    posts.forEach(function (post) {
      var article = document.createElement('article');
      article.className = 'post';
      var h = document.createElement('h3');
      h.textContent = String(post.title || '');
      var meta = document.createElement('p');
      meta.className = 'muted';
      meta.textContent = '#' + post.id + ' · ' + date(post.created);
      var body = document.createElement('p');
      body.className = 'post-body';
      body.textContent = String(post.body || '');
      article.appendChild(h);
      article.appendChild(meta);
      article.appendChild(body);
      var comments = Array.isArray(post.comments) ? post.comments : [];
      if (comments.length) {
        var list = document.createElement('ul');
        list.className = 'comments';
        comments.forEach(function (c) {
          var li = document.createElement('li');
          var who = document.createElement('span');
          who.className = 'muted';
          who.textContent = String(c.author || '').slice(0, 8) + ' · ' + date(c.created) + ' — ';
          li.appendChild(who);
          li.appendChild(document.createTextNode(String(c.body || '')));
          list.appendChild(li);
        });
        article.appendChild(list);
      }
      els.posts.appendChild(article);
    });
  }

  function load() {
    if (inFlight) return;
    inFlight = true;
    var controller = new AbortController();
    var timer = setTimeout(function () { controller.abort(); }, TIMEOUT_MS);
    fetch('/api/blog/posts', { signal: controller.signal, headers: { Accept: 'application/json' } })
      .then(function (res) {
        return res.json().catch(function () { return null; }).then(function (data) {
          if (res.status === 404) throw new Error('The blog plugin is not loaded on this node.');
          if (!res.ok) {
            var msg = data && data.error && data.error.message;
            throw new Error(msg || ('HTTP ' + res.status));
          }
          return data;
        });
      })
      .then(function (data) {
        showError('');
        render(Array.isArray(data && data.posts) ? data.posts : []);
        els.updated.textContent = 'updated ' + new Date().toLocaleTimeString();
      })
      .catch(function (err) {
        showError(err.name === 'AbortError' ? 'The node did not answer in time.' : err.message);
      })
      .then(function () {
        clearTimeout(timer);
        inFlight = false;
      });
  }

  load();
  setInterval(load, REFRESH_MS);
})();
