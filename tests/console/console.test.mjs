// chaosd's web console in a real browser: Debian's headless chromium driven by puppeteer-core
// (no browser download). Starts its own chaosd with the console on a free loopback port and a
// state dir in a temp dir, then: the login page refuses a wrong token and takes a right one;
// an experiment pasted on the submit page runs, and its probe samples arrive live (SSE) with
// the fault window open; the faults page lists the held fault with its owner and deadline;
// Abort (with its confirmation) ends the run aborted and the fault's file is gone from the
// disk; the schedules page pauses a schedule; an invalid experiment, uploaded as a file, shows
// chaosctl validate's own messages at their lines. A screenshot of every page goes to the
// output folder.
//
//   node console.test.mjs --chaosd PATH --chaosctl PATH --out DIR
// Exit 0 passed, 1 failed, 77 skipped (not root, or no chromium).
import {spawn, execFileSync} from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, a, i, all) => {
  if (a.startsWith('--')) pairs.push([a.slice(2), all[i + 1]]);
  return pairs;
}, []));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SKIP = 77;

function fail(message) {
  throw new Error(message);
}

function check(cond, message) {
  if (!cond) fail(message);
  console.log('ok - ' + message);
}

async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) fail('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

function fills(dir) {
  return fs.readdirSync(dir).filter((f) => f.startsWith('.chaosd-fill-'));
}

const experiment = (dir, hold) => `apiVersion: chaosd/v1
kind: Experiment
metadata: {name: console-live}
targets:
  data: {path: "${dir}"}
steadyState:
  baseline: {duration: 1500ms}
  recovery: {duration: 500ms}
  probes:
    - {name: alive, command: {argv: [/bin/true]}, every: 100ms}
method:
  - {name: fill, fault: disk.fill, target: data, args: {size: 1MiB}, duration: ${hold}}
`;

// Three problems on known lines: an unknown fault type (line 8), a bad duration (line 8), and
// a probe without a kind (line 6).
const invalid = `apiVersion: chaosd/v1
kind: Experiment
metadata: {name: broken}
steadyState:
  probes:
    - {name: nothing, every: 100ms}
method:
  - {name: fill, fault: disk.overflow, duration: soon}
`;

async function main() {
  if (process.geteuid() !== 0) { console.log('skipped: root tier'); return SKIP; }
  if (!fs.existsSync(CHROMIUM)) { console.log('skipped: no ' + CHROMIUM); return SKIP; }
  for (const k of ['chaosd', 'chaosctl', 'out']) if (!args[k]) fail('--' + k + ' is required');
  const here = path.dirname(new URL(import.meta.url).pathname);
  if (!fs.existsSync(path.join(here, 'node_modules', 'puppeteer-core'))) {
    execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'],
                 {cwd: here, stdio: 'inherit'});
  }
  const {default: puppeteer} = await import('puppeteer-core');
  fs.mkdirSync(args.out, {recursive: true});

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'chaosd-console-'));
  const data = path.join(tmp, 'data');
  fs.mkdirSync(data);
  const sock = path.join(tmp, 'chaosd.sock');
  const log = path.join(tmp, 'chaosd.log');
  const port = await freePort();
  const daemon = spawn(args.chaosd, ['--socket', sock, '--state-dir', path.join(tmp, 'state'),
    '--console-listen', String(port), '--log-file', log, '--log-level', 'debug',
    '--policy', path.join(tmp, 'no-policy.yaml')], {stdio: 'inherit'});
  let browser = null;
  const ctl = (...a) => execFileSync(args.chaosctl, [...a, '--socket', sock], {encoding: 'utf8'});
  try {
    await waitFor('the console listener', () =>
      fs.existsSync(log) && fs.readFileSync(log, 'utf8').includes('console listener'));
    await waitFor('the socket', () => fs.existsSync(sock));
    const token = ctl('console', 'token').trim();
    check(/^chaosd_[0-9a-f]{64}$/.test(token), 'chaosctl console token prints a token');
    ctl('schedule', 'add', writeFile(tmp, 'nightly.yaml', experiment(data, '1s')), '--cron',
        '0 3 * * *');

    browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    const page = await browser.newPage();
    await page.setViewport({width: 1280, height: 900});
    const problems = [];
    page.on('pageerror', (e) => problems.push('page error: ' + e.message));
    page.on('console', (m) => {
      // The refusals the test provokes (a wrong token, the invalid experiment) log their status.
      if (m.type() === 'error' && !/status of (400|401)/.test(m.text())) {
        problems.push('console: ' + m.text());
      }
    });
    const base = `http://127.0.0.1:${port}`;
    const shot = (name) => page.screenshot({path: path.join(args.out, name + '.png'), fullPage: true});

    // Log in: a wrong token is refused, the right one opens the runs page.
    await page.goto(base + '/');
    check(page.url() === base + '/login', 'without a session / goes to /login');
    await page.type('#token', 'chaosd_' + '0'.repeat(64));
    await page.click('button[type=submit]');
    await page.waitForSelector('#error:not([hidden])');
    check(true, 'a wrong token shows the error');
    await shot('login');
    await page.$eval('#token', (e) => { e.value = ''; });
    await page.type('#token', token);
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    await page.waitForSelector('#runs');
    check(page.url().startsWith(base + '/'), 'the token logs in');

    // Submit a run by pasting it; the live view opens and samples arrive as they are taken.
    await page.goto(base + '/#/submit');
    await page.waitForSelector('#yaml');
    await page.$eval('#yaml', (e, text) => { e.value = text; }, experiment(data, '60s'));
    await page.click('#submit');
    await page.waitForFunction(() => location.hash.startsWith('#/run/'));
    const runId = await page.evaluate(() => location.hash.slice('#/run/'.length));
    // The count as the page shows it (0 until the run's status has come).
    const samples = async () => page.evaluate(() =>
      Number((document.querySelector('#samples') || {textContent: '0'}).textContent));
    await waitFor('samples in the live view', async () => (await samples()) >= 5);
    const first = await samples();
    await waitFor('more samples arriving', async () => (await samples()) >= first + 5);
    check(true, `probe samples arrive live (${first} then ${await samples()})`);
    await page.waitForSelector('#run-faults tr[data-state="applied"]', {timeout: 20000});
    await page.waitForSelector('#timeline rect.fault');
    check(fills(data).length === 1, 'the fault window is open and its file is on the disk');
    const phase = await page.$eval('#phase', (e) => e.textContent);
    check(phase === 'during', 'the phase boundary shows: ' + phase);
    await shot('run-live');

    // Faults held now, with owner and deadline.
    await page.goto(base + '/#/faults');
    await page.waitForSelector('#faults tr[data-fault]');
    const row = await page.$eval('#faults tr[data-fault]', (tr) =>
      [...tr.children].map((td) => td.textContent));
    check(row[0] === runId && row[2] === 'disk.fill' && row[6] !== '-' && row[7].startsWith('root'),
          'the faults page lists the held fault with its deadline and owner: ' + row.join(' | '));
    await shot('faults');

    // Runs list, with a filter.
    await page.goto(base + '/#/runs');
    await page.waitForSelector(`#runs tr[data-run="${runId}"]`);
    await page.type('#filter', 'no-such-experiment');
    await page.waitForSelector(`#runs tr[data-run="${runId}"]`, {hidden: true});
    await page.$eval('#filter', (e) => { e.value = ''; e.dispatchEvent(new Event('input')); });
    await page.waitForSelector(`#runs tr[data-run="${runId}"]`);
    check(true, 'the runs list shows the run and the filter hides it');
    await shot('runs');

    // Abort, confirmed; the run ends aborted and the fill file is gone.
    await page.goto(base + '/#/run/' + runId);
    await page.waitForSelector('#abort');
    await page.click('#abort');
    await page.waitForSelector('#abort-confirm');
    await shot('run-abort-confirm');
    check(fills(data).length === 1, 'nothing is reverted before the confirmation');
    await page.click('#abort-yes');
    await page.waitForSelector('#outcome', {timeout: 30000});
    const outcome = await page.$eval('#outcome', (e) => e.textContent);
    check(outcome.includes('aborted'), 'the run ends: ' + outcome);
    check(fills(data).length === 0, 'the aborted run\'s fault is reverted on the disk');
    const reportHref = await page.$eval('#report-link', (a) => a.getAttribute('href'));
    await page.waitForSelector(`#run-faults tr[data-state="reverted"]`);
    await shot('run-ended');
    const report = await page.goto(base + reportHref);
    check(report.status() === 200 && (await page.content()).includes('console-live'),
          'report.html opens from the run page');
    await shot('report');

    // Schedules: pause one.
    await page.goto(base + '/#/schedules');
    await page.waitForSelector('#schedules button[data-action="pause"]');
    await page.click('#schedules button[data-action="pause"]');
    await page.waitForSelector('#schedules button[data-action="resume"]');
    const listed = JSON.parse(ctl('schedule', 'list', '--output', 'json'));
    const schedules = Array.isArray(listed) ? listed : listed.schedules;
    check(schedules[0].paused === true, 'the schedules page paused the schedule in the daemon');
    await shot('schedules');

    // An invalid experiment: chaosctl validate's messages, at their lines.
    const file = writeFile(tmp, 'submitted.yaml', invalid);
    let cli = '';
    try {
      execFileSync(args.chaosctl, ['validate', file], {encoding: 'utf8', stdio: 'pipe'});
    } catch (e) {
      cli = e.stderr + e.stdout;
    }
    // Each diagnostic is FILE:LINE:COL: ...; the count line after them is not one.
    const expected = cli.split('\n').filter((l) => l.startsWith(file + ':'))
      .map((l) => l.slice(file.length)).filter((l) => /^:\d+:\d+: /.test(l));
    check(expected.length >= 2, 'chaosctl validate finds the problems: ' + expected.length);
    // This time uploaded: the file's name is the one the messages use, as the CLI's do.
    await page.goto(base + '/#/submit');
    await page.waitForSelector('#yaml');
    const upload = await page.$('#file');
    await upload.uploadFile(file);
    await page.waitForFunction((text) => document.querySelector('#yaml').value === text, {}, invalid);
    await page.click('#validate');
    await page.waitForSelector('#listing .line.bad');
    const shown = await page.$$eval('#listing .diag', (ds) => ds.map((d) =>
      ({line: Number(d.dataset.line), text: d.textContent.replace(/^\s*\^ /, '')})));
    for (const e of expected) {
      const line = Number(e.split(':')[1]);
      const match = shown.find((s) => s.line === line && s.text === 'submitted.yaml' + e);
      check(match, `the message "${e}" is shown at line ${line}`);
    }
    await shot('submit-invalid');

    check(problems.length === 0, 'no script errors in the pages' +
          (problems.length ? ': ' + problems.join('; ') : ''));
    return 0;
  } finally {
    if (browser) await browser.close();
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.exitCode !== null ? r() : daemon.on('exit', r));
    if (fs.existsSync(log)) fs.copyFileSync(log, path.join(args.out, 'chaosd.log'));
    fs.rmSync(tmp, {recursive: true, force: true});
  }
}

function writeFile(dir, name, text) {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  return p;
}

main().then((code) => process.exit(code), (e) => {
  console.error('not ok - ' + e.message);
  process.exit(1);
});
