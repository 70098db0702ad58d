// The dashboard in a real browser (docs/operations.md, "The dashboard"): Debian's Chromium,
// driven by puppeteer-core, against a network of three `peerstack run` processes on loopback
// that this script starts and kills by PID. Exit 77 (ctest: skipped) with the reason when
// Chromium or puppeteer-core is missing; never a silent pass.
//
//   PEERSTACK_BINARY, PEERSTACK_PLUGINS_DIR, PEERSTACK_FRONT_DIR, PEERSTACK_E2E_OUT (screenshots)
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = process.env.PEERSTACK_BINARY;
const PLUGINS = process.env.PEERSTACK_PLUGINS_DIR;
const FRONT = process.env.PEERSTACK_FRONT_DIR;
const OUT = process.env.PEERSTACK_E2E_OUT || path.join(os.tmpdir(), 'peerstack-e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function skip(why) {
  console.log('SKIP: ' + why);
  process.exit(77);
}

if (!BIN || !fs.existsSync(BIN)) throw new Error('PEERSTACK_BINARY is not a file: ' + BIN);
if (!fs.existsSync(CHROMIUM)) {
  skip(CHROMIUM + ' is missing (scripts/install-deps.sh --browser installs Debian\'s chromium)');
}
let puppeteer;
try {
  puppeteer = (await import('puppeteer-core')).default;
} catch (e) {
  skip('puppeteer-core is not installed (npm ci --prefix tests/e2e): ' + e.message);
}

// The nodes get no PEERSTACK_* variable of this shell: every flag reads one.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) =>
  !k.startsWith('PEERSTACK_') && k !== 'NETWORK_NODE_URL'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'peerstack-e2e-'));
const children = [];
let browser = null;

function cleanup() {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch (e) { /* gone already */ }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(1));

async function waitFor(what, fn, ms = 20000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('timed out after ' + ms + ' ms waiting for ' + what + ' (last: ' + last + ')');
}

function check(cond, what) {
  if (!cond) throw new Error('failed: ' + what);
  console.log('ok: ' + what);
}

async function startNode(name, extra) {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const log = fs.openSync(path.join(dir, 'node.log'), 'a');
  const data = path.join(dir, 'data');
  const child = spawn(BIN, ['run', '--data-dir', data, '--port', '0', '--admin-port', '0',
    '--tunnel', 'direct', '--plugins', PLUGINS, '--front', FRONT, '--dev', ...extra],
  { stdio: ['ignore', log, log], env });
  children.push(child);
  const ports = await waitFor(name + "'s ports.json", () =>
    JSON.parse(fs.readFileSync(path.join(data, 'ports.json'), 'utf8')));
  const node = { name, data, child, pub: ports.public, admin: ports.admin };
  node.url = 'http://127.0.0.1:' + node.pub;
  node.status = async () => {
    const token = fs.readFileSync(path.join(data, 'admin.token'), 'utf8').trim();
    const r = await fetch('http://127.0.0.1:' + node.admin + '/status',
      { headers: { authorization: 'Bearer ' + token } });
    return r.json();
  };
  node.id = (await node.status()).node.id;
  return node;
}

function loginUrl(node) {
  return execFileSync(BIN, ['dashboard', '--data-dir', node.data], { env }).toString().trim();
}

async function rows(page) {
  return page.$$eval('#peers tbody tr', (trs) => trs.map((tr) => ({
    id: tr.dataset.id,
    path: tr.querySelector('.path').textContent,
    online: tr.querySelector('.online').textContent,
    state: tr.querySelector('.state').textContent,
    why: tr.querySelector('.why').textContent,
  })));
}

async function main() {
  fs.mkdirSync(OUT, { recursive: true });
  const a = await startNode('a', []);
  const b = await startNode('b', ['--join', a.url]);
  // c asks a node that is not there: it stays a joiner until the page sends it elsewhere.
  const c = await startNode('c', ['--join', 'http://127.0.0.1:1']);
  await waitFor('b admitted', async () => (await b.status()).network.member);

  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });

  // Log in to a's dashboard with the printed link: the session cookie, then the page.
  const url = loginUrl(a);
  check(/^http:\/\/127\.0\.0\.1:\d+\/login\?code=[0-9a-f]{64}$/.test(url), 'the printed link');
  const ctxA = await browser.createBrowserContext();
  const pageA = await ctxA.newPage();
  await pageA.setViewport({ width: 1200, height: 900 });
  pageA.on('dialog', (d) => d.accept());
  await pageA.goto(url);
  check(new URL(pageA.url()).pathname === '/', 'the login link lands on the dashboard');
  const cookies = await ctxA.cookies('http://127.0.0.1:' + a.admin);
  const session = cookies.find((k) => k.name === 'peerstack_session_' + a.admin);
  check(session && session.httpOnly && session.sameSite === 'Strict', 'an HttpOnly, SameSite=Strict cookie');
  await waitFor('two peers on a\'s page', async () => (await rows(pageA)).length === 2);
  const r1 = await rows(pageA);
  check(r1.every((r) => r.path === 'direct'), 'both paths are direct');
  check(r1.some((r) => r.id === b.id) && r1.some((r) => r.id === a.id), 'a and b are listed');
  await waitFor('agreement of both members', async () =>
    (await pageA.$eval('#agreement', (e) => e.textContent)).startsWith('2 of 2 members'));
  check(true, 'the page says both members hold the same state');
  await waitFor('a round trip to b', async () =>
    /^\d+ ms$/.test(await pageA.$eval('#peers tr[data-id="' + b.id + '"] .rtt', (e) => e.textContent)));
  check(true, 'the round trip to b is shown');
  await pageA.evaluate(() => window.scrollTo(0, 0));
  await pageA.screenshot({ path: path.join(OUT, 'dashboard.png') });

  // The link works once; a wrong one never.
  const ctxX = await browser.createBrowserContext();
  const pageX = await ctxX.newPage();
  let resp = await pageX.goto(url);
  check(resp.status() === 403, 'a used link is refused (403)');
  resp = await pageX.goto('http://127.0.0.1:' + a.admin + '/login?code=' + '0'.repeat(64));
  check(resp.status() === 403, 'a wrong code is refused (403)');
  resp = await pageX.goto('http://127.0.0.1:' + a.admin + '/');
  await waitFor('the login notice', async () => pageX.$eval('#login', (e) => !e.hidden));
  check(true, 'without a session the page asks to log in');
  // Nothing of it on the public listener (where tunnelled requests arrive).
  // On the public listener /login and /dashboard/... are the app's paths (its index.html):
  // no session, no token, no dashboard.
  for (const p of ['/login?code=' + '0'.repeat(64), '/dashboard/session', '/dashboard.js']) {
    const pr = await fetch(a.url + p, { redirect: 'manual' });
    const text = await pr.text();
    check(pr.status !== 303 && !pr.headers.get('set-cookie') && !text.includes('csrf') &&
      !text.includes('Peerstack dashboard') && !text.includes('POLL_MS'), 'public ' + p + ' is not the dashboard\'s');
  }
  check((await fetch(a.url + '/metrics')).status === 404, 'public /metrics is 404');
  const front = await (await fetch(a.url + '/')).text();
  check(!front.includes('Peerstack dashboard'), 'the public / is the app, not the dashboard');
  // The public page shows its download link only when the node offers the file (a --dev
  // node has none: it runs no release), and says why not.
  const dl = await fetch(a.url + '/download', { method: 'HEAD' });
  const pub = await ctxX.newPage();
  await pub.goto(a.url + '/');
  await waitFor('the public page\'s download check', async () =>
    pub.$eval('body', (e) => e.dataset.download !== undefined));
  const linkShown = await pub.$eval('a.download-link', (e) => !e.closest('[hidden]'));
  const why = await pub.$eval('#no-download', (e) => e.textContent);
  check(dl.ok ? linkShown : !linkShown && why.startsWith('This node offers no download now'),
    'the download link is there only when /download answers (' + dl.status + ')');
  // The cookie alone (what any server on 127.0.0.1 could collect) is worth nothing: without
  // the session's token, reads and changes are refused.
  const csrfless = await pageA.evaluate(async () => [
    (await fetch('/leave', { method: 'POST' })).status, (await fetch('/status')).status]);
  check(csrfless[0] === 403 && csrfless[1] === 403, 'the cookie without the token is refused (403)');
  check(!(new URL(pageA.url()).hash), 'the token left the address bar');
  const mint = await pageA.evaluate(async () => (await fetch('/dashboard/codes', {
    method: 'POST', headers: { 'x-csrf-token': sessionStorage.getItem('peerstack-session-token') },
  })).status);
  check(mint === 401, 'a session cannot make login codes (401)');

  // Join from c's page: c was asking nobody; now a admits it.
  const ctxC = await browser.createBrowserContext();
  const pageC = await ctxC.newPage();
  await pageC.goto(loginUrl(c));
  await pageC.waitForSelector('#main:not([hidden])');
  await pageC.type('#join-url', a.url);
  await pageC.click('#join-btn');
  await waitFor('c\'s join result', async () =>
    (await pageC.$eval('#result', (e) => e.textContent)).includes('asking ' + a.url));
  await waitFor('c on a\'s page', async () => (await rows(pageA)).some((r) => r.id === c.id), 30000);
  check(true, 'c joined from its page and appears on a\'s');

  // Sync now.
  await pageA.click('#sync-btn');
  await waitFor('the sync result', async () =>
    /sync: \d+ new event\(s\), \d+ in all/.test(await pageA.$eval('#result', (e) => e.textContent)));
  check(true, 'sync from the page reports the events');

  // A frozen peer: b stops answering; a's page says so, in words; then it comes back.
  process.kill(b.child.pid, 'SIGSTOP');
  await waitFor('b offline on a\'s page', async () => {
    const row = (await rows(pageA)).find((r) => r.id === b.id);
    return row && row.online === 'offline' && /not heard from for/.test(row.why);
  }, 60000);
  check(true, 'a frozen b shows offline, "not heard from for ..."');
  await pageA.evaluate(() => document.querySelector('#peers').scrollIntoView());
  await pageA.screenshot({ path: path.join(OUT, 'dashboard-frozen-peer.png') });
  process.kill(b.child.pid, 'SIGCONT');
  await waitFor('b online again', async () =>
    (await rows(pageA)).find((r) => r.id === b.id).online === 'online', 60000);
  check(true, 'b thawed shows online');

  // c is killed; once a's page shows it offline, evict it from there (the dialog is accepted;
  // members approve only the eviction of a member they also see gone).
  process.kill(c.child.pid, 'SIGKILL');
  await waitFor('c offline on a\'s page', async () =>
    (await rows(pageA)).find((r) => r.id === c.id).online === 'offline', 60000);
  check(true, 'a killed c shows offline');
  await waitFor('b sees c offline too', async () =>
    !(await (await fetch(b.url + '/nodes')).json()).nodes.find((n) => n.id === c.id).online, 60000);
  await pageA.click('.evict-btn[data-id="' + c.id + '"]');
  await waitFor('the evict result', async () =>
    (await pageA.$eval('#result', (e) => e.textContent)).startsWith('evict'));
  console.log('  ' + await pageA.$eval('#result', (e) => e.textContent));
  await waitFor('c evicted', async () => !(await rows(pageA)).some((r) => r.id === c.id), 60000);
  check(true, 'c evicted from the page is gone from the table');

  // A phone-sized screen: nothing wider than the screen but the peers table's own scroller.
  await pageA.setViewport({ width: 390, height: 844, isMobile: true });
  const wide = await pageA.evaluate(() => document.documentElement.scrollWidth);
  check(wide <= 391, 'no sideways scrolling on a 390 px screen (' + wide + ')');
  await pageA.evaluate(() => window.scrollTo(0, 0));
  await pageA.screenshot({ path: path.join(OUT, 'dashboard-phone.png') });
  console.log('screenshots in ' + OUT);
}

try {
  await main();
  await browser.close();
  process.exit(0);
} catch (e) {
  console.error(e.stack || String(e));
  for (const n of ['a', 'b', 'c']) {
    const log = path.join(tmp, n, 'node.log');
    if (fs.existsSync(log)) console.error('--- ' + n + ' ---\n' + fs.readFileSync(log, 'utf8').slice(-3000));
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}
