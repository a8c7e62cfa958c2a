'use strict';
// Many live conversations held by madoguchi `serve` (issue 11, "memory at scale"), with the shared
// harness's fake connector in this process (Node built-ins only besides it):
//   1. start serve on a fresh SQLite file; start-up time = spawn -> port 3978 accepts a connection;
//   2. open N conversations (conversationUpdate + 「診断」, each answered), C at a time: every
//      conversation now waits at Q1; RSS of serve;
//   3. stop serve, start it again on the same file (start-up time with N stored conversations);
//   4. resume all N: one answer each (はい), whose reply must be Q2 of that conversation; time and RSS.
// usage: node benches/peer/many.js [--n 100000] [--conc 100] [--harness DIR] [--bin PATH] [--out FILE]
//                                   [--db DIR --opened N] [--resume M]
//   --harness: the shared harness (default ../shared/bench/botframework from the repository root)
//   --db DIR --opened N: skip steps 1-2 and use a database where conversations 0..N-1 wait at Q1
//     (the folder of an earlier run, kept); --resume M: resume only the first M conversations.
const http = require('http');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const ROOT = path.resolve(__dirname, '../..');
const N = Number(args.n || 100000);
const RESUME = Number(args.resume ?? args.opened ?? N);
const C = Number(args.conc || 100);
const HARNESS = path.resolve(args.harness || path.join(ROOT, '../shared/bench/botframework'));
const BIN = path.resolve(args.bin || path.join(ROOT, 'target/release/madoguchi'));
const TIMEOUT_MS = 30000;
const { createConnector } = require(path.join(HARNESS, 'fake-connector/server.js'));

const now = () => performance.now();
const agent = new http.Agent({ keepAlive: true, maxSockets: C });
const waiters = new Map(); // conversation id -> {resolve, text}

function statusKb(pid, key) {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch { return null; }
}
function cpuMs(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const x = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(x[11]) + Number(x[12])) * 10;
}

function canConnect() {
  return new Promise((resolve) => {
    const s = net.connect(3978, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

async function startBot(dbDir) {
  const t0 = now();
  const child = spawn(BIN, ['--config', path.join(__dirname, 'config.toml'), 'serve'], {
    env: { ...process.env, MADOGUCHI__STORAGE__DATABASE: path.join(dbDir, 'peer.db'), RUST_LOG: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (;;) {
    if (await canConnect()) break;
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    if (now() - t0 > 60000) throw new Error('serve did not listen within 60 s');
    await new Promise((r) => setTimeout(r, 1));
  }
  return { child, startupMs: +(now() - t0).toFixed(1) };
}

function stopBot(child) {
  return new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); });
}

function post(activity) {
  return new Promise((resolve) => {
    const body = Buffer.from(JSON.stringify(activity));
    const req = http.request({
      host: '127.0.0.1', port: 3978, path: '/api/messages', method: 'POST', agent,
      headers: { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length },
    }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

function base(k) {
  const convId = `a:many-c${k}`;
  return {
    channelId: 'msteams', serviceUrl: 'http://127.0.0.1:3979/', locale: 'ja-JP',
    from: { id: `29:many-u${k}`, name: `User ${k}` },
    recipient: { id: '28:bot-peer', name: 'PeerBot' },
    conversation: { id: convId, conversationType: 'personal' },
  };
}

// Sends one activity and waits for its reply; returns the reply's text (null on failure).
async function turn(k, id, extra) {
  const act = { ...base(k), ...extra, id };
  const replied = new Promise((resolve) => {
    const timer = setTimeout(() => { waiters.delete(act.conversation.id); resolve(null); }, TIMEOUT_MS);
    waiters.set(act.conversation.id, { id, resolve: (text) => { clearTimeout(timer); resolve(text); } });
  });
  const status = await post(act);
  if (status < 200 || status >= 300) { waiters.delete(act.conversation.id); return null; }
  return replied;
}

async function phase(name, pid, work, count = N) {
  const cpu0 = cpuMs(pid);
  const t0 = now();
  let next = 0, failures = 0;
  const samples = [];
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < count) {
      const k = next++;
      if (!(await work(k))) { failures++; if (samples.length < 5) samples.push(k); }
    }
  }));
  const seconds = (now() - t0) / 1000;
  const out = {
    phase: name, conversations: count, seconds: +seconds.toFixed(1), perSecond: +(count / seconds).toFixed(0),
    cpuMsPerConversation: +((cpuMs(pid) - cpu0) / count).toFixed(3), failures, failureSamples: samples,
    rssMiB: +(statusKb(pid, 'VmRSS') / 1024).toFixed(1), hwmMiB: +(statusKb(pid, 'VmHWM') / 1024).toFixed(1),
  };
  console.log(JSON.stringify(out));
  return out;
}

(async () => {
  const connector = createConnector({
    onActivity(convId, replyToId, activity) {
      const w = waiters.get(convId);
      if (w && replyToId === w.id) { waiters.delete(convId); w.resolve(activity && activity.text); }
    },
  });
  await new Promise((resolve) => connector.listen(3979, '127.0.0.1', resolve));
  const reuse = Boolean(args.db);
  const dbDir = reuse ? path.resolve(args.db) : fs.mkdtempSync(path.join(os.tmpdir(), 'madoguchi-many-'));
  const result = { n: reuse ? Number(args.opened) : N, conc: C, bin: BIN, dbDir, date: new Date().toISOString() };

  let bot;
  if (!reuse) {
    bot = await startBot(dbDir);
    result.startupEmptyMs = bot.startupMs;
    result.idleRssMiB = +(statusKb(bot.child.pid, 'VmRSS') / 1024).toFixed(1);
    result.open = await phase('open', bot.child.pid, async (k) => {
      const greeting = await turn(k, `${k}-0`, { type: 'conversationUpdate', membersAdded: [{ id: `29:many-u${k}` }] });
      if (greeting === null) return false;
      const q1 = await turn(k, `${k}-1`, { type: 'message', text: '診断' });
      return typeof q1 === 'string' && q1.startsWith('Q1.');
    });
    await stopBot(bot.child);
  }
  result.dbMiB = +(fs.readdirSync(dbDir).reduce((a, f) => a + fs.statSync(path.join(dbDir, f)).size, 0) / 1048576).toFixed(1);

  bot = await startBot(dbDir);
  result.startupWithStoredMs = bot.startupMs;
  result.idleRssWithStoredMiB = +(statusKb(bot.child.pid, 'VmRSS') / 1024).toFixed(1);
  result.resume = await phase('resume', bot.child.pid, async (k) => {
    const q2 = await turn(k, `${k}-2`, { type: 'message', text: 'はい' });
    return typeof q2 === 'string' && q2.startsWith('Q2.');
  }, Math.min(RESUME, result.n));
  await stopBot(bot.child);
  result.connector = connector.stats(false);
  console.log(JSON.stringify(result, null, 2));
  if (args.out) fs.writeFileSync(args.out, JSON.stringify(result, null, 2));
  if (!reuse) fs.rmSync(dbDir, { recursive: true, force: true });
  agent.destroy();
  process.exit((result.open ? result.open.failures : 0) + result.resume.failures === 0 ? 0 : 1);
})();
