// chaosd's web console: plain JavaScript, no framework, nothing loaded from elsewhere.
// Pages by the location's hash: #/runs, #/run/ID, #/faults, #/schedules, #/submit.
// Every text from the daemon goes into the page as text (textContent), never as markup.
'use strict';

const state = {session: null, timer: null, stream: null};

// ---- small helpers ------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const svg = ['svg', 'rect', 'line', 'circle', 'text', 'g', 'polyline'].includes(tag);
  const node = svg ? document.createElementNS('http://www.w3.org/2000/svg', tag)
                   : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function show(...nodes) {
  const view = document.getElementById('view');
  view.replaceChildren(...nodes.flat());
}

function canOperate() { return state.session && state.session.role === 'operate'; }

// The console's API: the daemon's /v1 under /api, with the session's CSRF token on changes.
async function api(method, path, body) {
  const headers = {};
  if (method !== 'GET') headers['X-CSRF-Token'] = state.session ? state.session.csrf : '';
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch('/api' + path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (r.status === 401) {
    location.href = '/login';
    throw new Error('not logged in');
  }
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch (e) { json = null; }
  return {status: r.status, ok: r.ok, json, text};
}

function errorText(r) {
  return r.json && r.json.error ? r.json.error.message : 'HTTP ' + r.status;
}

function when(iso) {
  if (!iso) return '-';
  const d = new Date(iso);
  return d.toLocaleString();
}

function duration(startIso, endIso) {
  if (!startIso) return '-';
  const ms = (endIso ? new Date(endIso) : new Date()) - new Date(startIso);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
}

function outcomeCell(run) {
  const o = run.outcome || run.state;
  return el('td', {class: o, 'data-outcome': o, text: o});
}

function who(caller) {
  if (!caller || typeof caller !== 'object') return 'root (local)';
  return (caller.user || 'uid') + '(' + caller.uid + ')';
}

// Polls `load` every `ms` while this page is shown.
function every(ms, load) {
  load();
  state.timer = setInterval(load, ms);
}

function leavePage() {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  if (state.stream) state.stream.close();
  state.stream = null;
}

// ---- runs ---------------------------------------------------------------------------------

function runsPage() {
  const filter = el('input', {id: 'filter', type: 'search', placeholder: 'filter: experiment, id, outcome'});
  const outcome = el('select', {id: 'outcome-filter'},
    ['', 'running', 'ok', 'deviated', 'aborted', 'leftovers', 'error'].map(
      (o) => el('option', {value: o, text: o || 'every outcome'})));
  const body = el('tbody');
  let runs = [];
  const render = () => {
    const q = filter.value.trim().toLowerCase();
    const o = outcome.value;
    const rows = runs.filter((r) => {
      const text = [r.id, r.experiment, r.outcome || r.state].join(' ').toLowerCase();
      return (!q || text.includes(q)) && (!o || (r.outcome || r.state) === o);
    }).map((r) => el('tr', {class: 'clickable', 'data-run': r.id,
                            onclick: () => { location.hash = '#/run/' + r.id; }},
      el('td', {}, el('code', {text: r.id})),
      el('td', {text: r.experiment}),
      outcomeCell(r),
      el('td', {text: r.score === undefined || r.score === null ? '-' : r.score}),
      el('td', {text: when(r.startedAt)}),
      el('td', {text: duration(r.startedAt, r.endedAt)}),
      el('td', {class: 'muted', text: who(r.caller)})));
    body.replaceChildren(...(rows.length ? rows
      : [el('tr', {}, el('td', {colspan: 7, class: 'muted', text: 'no runs'}))]));
  };
  filter.addEventListener('input', render);
  outcome.addEventListener('change', render);
  show(el('h1', {text: 'Runs'}),
    el('div', {class: 'toolbar'}, filter, outcome),
    el('table', {id: 'runs'},
      el('thead', {}, el('tr', {}, ['Run', 'Experiment', 'Outcome', 'Score', 'Started',
        'Duration', 'Caller'].map((h) => el('th', {text: h})))),
      body));
  every(3000, async () => {
    const r = await api('GET', '/v1/runs?limit=200&details=1');
    if (r.ok) { runs = r.json.runs; render(); }
  });
}

// ---- one run, live ------------------------------------------------------------------------

function runPage(id) {
  const live = {samples: [], faults: new Map(), phases: [], counts: {}, log: [], ended: null};
  const title = el('h1', {}, 'Run ', el('code', {text: id}));
  const summary = el('div', {class: 'cards', id: 'summary'});
  const actions = el('div', {class: 'toolbar', id: 'actions'});
  const chart = el('svg', {class: 'timeline', id: 'timeline', viewBox: '0 0 1000 260',
                           preserveAspectRatio: 'none'});
  const faultsTable = el('tbody');
  const logList = el('ul', {class: 'log', id: 'events'});
  const verdict = el('div', {id: 'verdict'});
  show(title, summary, actions, verdict,
    el('h2', {text: 'Probe samples and fault windows'}), chart,
    el('h2', {text: 'Faults'}),
    el('table', {id: 'run-faults'}, el('thead', {}, el('tr', {},
      ['Step', 'Type', 'Target', 'State'].map((h) => el('th', {text: h})))), faultsTable),
    el('h2', {text: 'Events'}), logList);

  const note = (line) => {
    live.log.push(line);
    logList.prepend(el('li', {text: line}));
    while (logList.children.length > 300) logList.lastChild.remove();
  };

  const drawFaults = () => {
    faultsTable.replaceChildren(...[...live.faults.values()].map((f) =>
      el('tr', {'data-fault': f.id, 'data-state': f.state},
        el('td', {text: f.step}), el('td', {text: f.fault}), el('td', {text: f.target}),
        el('td', {class: f.state === 'applied' ? 'running' : '', text: f.state}))));
  };

  const drawChart = () => {
    const times = live.samples.map((s) => s.at)
      .concat(live.phases.map((p) => p.at))
      .concat([...live.faults.values()].flatMap((f) => [f.from, f.to].filter(Boolean)));
    if (!times.length) return;
    const t0 = Math.min(...times);
    const t1 = Math.max(...times, Date.now() - (live.ended ? Infinity : 0), t0 + 1000);
    const maxMs = Math.max(10, ...live.samples.map((s) => s.ms));
    const x = (t) => 40 + (t - t0) / (t1 - t0) * 950;
    const y = (ms) => 230 - ms / maxMs * 210;
    const nodes = [el('line', {class: 'axis', x1: 40, y1: 230, x2: 990, y2: 230}),
                   el('text', {x: 2, y: 24, text: Math.round(maxMs) + 'ms'}),
                   el('text', {x: 2, y: 234, text: '0'})];
    for (const f of live.faults.values()) {
      if (!f.from) continue;
      const end = f.to || t1;
      nodes.push(el('rect', {class: 'fault', x: x(f.from), y: 10, height: 220,
                             width: Math.max(1, x(end) - x(f.from)), 'data-step': f.step}));
      nodes.push(el('text', {x: x(f.from) + 3, y: 252, text: f.step}));
    }
    for (const p of live.phases) {
      nodes.push(el('line', {class: 'phase', x1: x(p.at), x2: x(p.at), y1: 10, y2: 230}));
      nodes.push(el('text', {x: x(p.at) + 3, y: 20, text: p.phase}));
    }
    for (const s of live.samples.slice(-3000)) {
      nodes.push(el('circle', {class: s.ok ? 'ok-dot' : 'bad-dot', cx: x(s.at), cy: y(s.ms), r: 2}));
    }
    chart.replaceChildren(...nodes);
  };

  const drawSummary = (run) => {
    const samples = Object.values(live.counts).reduce((a, c) => a + c.samples, 0);
    const failures = Object.values(live.counts).reduce((a, c) => a + c.failures, 0);
    const card = (label, value, idAttr) => el('div', {class: 'card'},
      el('span', {class: 'muted', text: label}), el('b', {id: idAttr, text: value}));
    summary.replaceChildren(
      card('Experiment', run ? run.experiment : '-', 'experiment'),
      card('State', live.ended ? live.ended : (run ? run.outcome || run.state : '-'), 'state'),
      card('Phase', live.phases.length ? live.phases[live.phases.length - 1].phase : '-', 'phase'),
      card('Samples', samples, 'samples'),
      card('Failed samples', failures, 'failures'));
  };

  let run = null;
  const showEnded = async () => {
    const r = await api('GET', '/v1/runs/' + id);
    if (!r.ok) return;
    run = r.json;
    for (const f of run.faults || []) {
      const known = live.faults.get(f.id) || {id: f.id, step: f.step, fault: f.type, target: f.target};
      known.state = f.state;
      live.faults.set(f.id, known);
    }
    drawFaults();
    drawSummary(run);
    if (run.state !== 'ended') return;
    actions.replaceChildren();
    verdict.replaceChildren(el('div', {class: 'notice'},
      el('b', {class: run.outcome, id: 'outcome', text: 'Outcome: ' + run.outcome}),
      ' (exit ' + run.exitCode + ') ',
      el('a', {id: 'report-link', href: '/api/v1/runs/' + id + '/report?format=html',
               target: '_blank', rel: 'noopener', text: 'report.html'}),
      el('ul', {}, (run.reasons || []).map((x) => el('li', {text: x})))));
  };

  const abortButton = () => {
    if (!canOperate()) return [];
    const start = el('button', {id: 'abort', class: 'danger', type: 'button', text: 'Abort'});
    start.addEventListener('click', () => {
      const confirmBox = el('div', {class: 'confirm', id: 'abort-confirm'},
        'Abort this run? Its faults are reverted at once and its rollbacks run.',
        el('button', {id: 'abort-yes', class: 'danger', type: 'button', text: 'Yes, abort',
          onclick: async () => {
            const r = await api('POST', '/v1/runs/' + id + '/abort');
            actions.replaceChildren(el('span', {id: 'abort-result',
              class: r.ok ? 'aborted' : 'error', text: r.ok ? 'aborting…' : errorText(r)}));
          }}),
        el('button', {id: 'abort-no', type: 'button', text: 'Cancel',
          onclick: () => actions.replaceChildren(abortButton())}));
      actions.replaceChildren(confirmBox);
    });
    return start;
  };

  const onEvent = (e) => {
    switch (e.type) {
      case 'sample':
        live.samples.push(e);
        if (live.samples.length > 20000) live.samples.shift();
        live.counts[e.probe] = live.counts[e.probe] || {samples: 0, failures: 0};
        live.counts[e.probe].samples++;
        if (!e.ok) {
          live.counts[e.probe].failures++;
          note(new Date(e.at).toLocaleTimeString() + ' ' + e.probe + ' failed: ' + e.detail);
        }
        break;
      case 'phase':
        live.phases.push(e);
        note(new Date(e.at).toLocaleTimeString() + ' phase ' + e.phase + ' begins (' + e.seconds + 's)');
        break;
      case 'phaseEnded':
        note(new Date(e.at).toLocaleTimeString() + ' phase ' + e.phase + ' ended: ' +
             e.verdicts.map((v) => v.probe + (v.held ? ' held' : ' broke')).join(', '));
        break;
      case 'fault': {
        const f = live.faults.get(e.id) || {id: e.id, step: e.step, fault: e.fault, target: e.target};
        f.state = e.state;
        if (e.state === 'applied') f.from = e.at;
        else if (f.from) f.to = e.at;
        live.faults.set(e.id, f);
        note(new Date(e.at).toLocaleTimeString() + ' fault ' + e.step + ' (' + e.fault + ') ' + e.state +
             (e.error ? ': ' + e.error : ''));
        drawFaults();
        break;
      }
      case 'message':
        note(e.line);
        break;
      case 'end':
        live.ended = e.outcome;
        note('run ended: ' + e.outcome);
        if (state.stream) state.stream.close();
        showEnded();
        break;
      default:
        break;
    }
  };

  let dirty = false;
  drawSummary(null);
  (async () => {
    const r = await api('GET', '/v1/runs/' + id);
    if (!r.ok) { show(title, el('p', {class: 'error', text: errorText(r)})); return; }
    run = r.json;
    drawSummary(run);
    if (run.state === 'ended') { showEnded(); return; }
    actions.replaceChildren(abortButton());
    const stream = new EventSource('/api/v1/runs/' + id + '/events');
    state.stream = stream;
    stream.onmessage = (m) => { onEvent(JSON.parse(m.data)); dirty = true; };
    stream.onerror = () => { if (live.ended) stream.close(); };
    // Drawing at most a few times a second keeps a fast probe from flooding the page.
    state.timer = setInterval(() => {
      if (!dirty) return;
      dirty = false;
      drawChart();
      drawSummary(run);
    }, 250);
  })();
}

// ---- faults held --------------------------------------------------------------------------

function faultsPage() {
  const body = el('tbody');
  show(el('h1', {text: 'Faults held on this host'}),
    el('p', {class: 'muted', text: 'From the journal: every owner\u2019s faults not yet reverted.'}),
    el('table', {id: 'faults'}, el('thead', {}, el('tr', {}, ['Run', 'Step', 'Type', 'Target',
      'State', 'Since', 'Deadline', 'Owner'].map((h) => el('th', {text: h})))), body));
  every(2000, async () => {
    const r = await api('GET', '/v1/faults');
    if (!r.ok) return;
    const rows = r.json.faults.map((f) => el('tr', {'data-fault': f.id},
      el('td', {}, el('a', {href: '#/run/' + f.run}, el('code', {text: f.run}))),
      el('td', {text: f.step}), el('td', {text: f.type}), el('td', {text: f.target}),
      el('td', {text: f.state}), el('td', {text: when(f.since)}),
      el('td', {text: when(f.deadline)}),
      el('td', {text: who(f.owner) + (f.ownerAlive === false ? ' (gone)' : '')})));
    body.replaceChildren(...(rows.length ? rows
      : [el('tr', {}, el('td', {colspan: 8, class: 'muted', text: 'no faults held'}))]));
  });
}

// ---- schedules ----------------------------------------------------------------------------

function schedulesPage() {
  const body = el('tbody');
  const message = el('p', {id: 'schedule-message'});
  show(el('h1', {text: 'Schedules'}), message,
    el('table', {id: 'schedules'}, el('thead', {}, el('tr', {}, ['Name', 'Cron', 'Time zone',
      'Window', 'Next run', 'State', 'Creator', ''].map((h) => el('th', {text: h})))), body));
  const load = async () => {
    const r = await api('GET', '/v1/schedules');
    if (!r.ok) return;
    const rows = r.json.schedules.map((s) => {
      const toggle = s.paused ? 'resume' : 'pause';
      return el('tr', {'data-schedule': s.id},
        el('td', {text: s.name}), el('td', {}, el('code', {text: s.cron})),
        el('td', {text: s.timezone || 'UTC'}),
        el('td', {text: s.window || '-'}),
        el('td', {text: s.paused ? '-' : when(s.nextRun)}),
        el('td', {text: s.paused ? 'paused' : 'active'}),
        el('td', {text: who(s.creator)}),
        el('td', {}, canOperate() ? el('button', {type: 'button', 'data-action': toggle,
          text: toggle === 'pause' ? 'Pause' : 'Resume',
          onclick: async () => {
            const x = await api('POST', '/v1/schedules/' + s.id + '/' + toggle);
            message.textContent = x.ok ? s.name + ': ' + (toggle === 'pause' ? 'paused' : 'resumed')
                                       : errorText(x);
            load();
          }}) : ''));
    });
    body.replaceChildren(...(rows.length ? rows
      : [el('tr', {}, el('td', {colspan: 8, class: 'muted', text: 'no schedules'}))]));
  };
  every(5000, load);
}

// ---- submit -------------------------------------------------------------------------------

// "FILE:LINE:COL: path: message": the daemon's (and chaosctl validate's) diagnostics.
function parseDiagnostic(d) {
  const m = /^(.*?):(\d+):(\d+): (.*)$/.exec(d);
  return m ? {line: Number(m[2]), column: Number(m[3]), text: d} : {line: 0, text: d};
}

function submitPage() {
  const yaml = el('textarea', {id: 'yaml', spellcheck: 'false',
                               placeholder: 'apiVersion: chaosd/v1\nkind: Experiment\n…'});
  const file = el('input', {id: 'file', type: 'file', accept: '.yaml,.yml,text/yaml'});
  const vars = el('input', {id: 'vars', type: 'text', size: 50,
                            placeholder: 'variables: NAME=VALUE NAME2=VALUE2'});
  const result = el('div', {id: 'result'});
  let fileName = 'submitted.yaml';
  file.addEventListener('change', async () => {
    if (!file.files.length) return;
    fileName = file.files[0].name;
    yaml.value = await file.files[0].text();
  });
  const body = () => {
    const v = {};
    for (const pair of vars.value.split(/\s+/).filter(Boolean)) {
      const i = pair.indexOf('=');
      if (i > 0) v[pair.slice(0, i)] = pair.slice(i + 1);
    }
    return {experiment: yaml.value, vars: v, fileName};
  };
  const showDiagnostics = (diags) => {
    const parsed = diags.map(parseDiagnostic);
    const byLine = new Map();
    for (const d of parsed) {
      byLine.set(d.line, (byLine.get(d.line) || []).concat([d]));
    }
    const listing = el('pre', {class: 'listing', id: 'listing'});
    yaml.value.split('\n').forEach((text, i) => {
      const n = i + 1;
      const here = byLine.get(n);
      listing.append(el('span', {class: here ? 'line bad' : 'line', 'data-line': n},
        el('span', {class: 'no', text: n}), text));
      for (const d of here || []) {
        listing.append(el('span', {class: 'diag', 'data-line': n,
          text: ' '.repeat(Math.max(0, d.column - 1)) + '^ ' + d.text}));
      }
    });
    const general = parsed.filter((d) => !d.line || d.line > yaml.value.split('\n').length);
    result.replaceChildren(el('p', {class: 'error', id: 'invalid',
      text: parsed.length + ' problem' + (parsed.length === 1 ? '' : 's') + ' in the experiment'}),
      el('ul', {}, general.map((d) => el('li', {class: 'error', text: d.text}))), listing);
  };
  const send = async (path) => {
    result.replaceChildren(el('p', {class: 'muted', text: 'sending…'}));
    const r = await api('POST', path, body());
    if (r.status === 400 && r.json && r.json.error && r.json.error.diagnostics) {
      showDiagnostics(r.json.error.diagnostics);
    } else if (!r.ok) {
      result.replaceChildren(el('p', {class: 'error', id: 'refused', text: errorText(r)}));
    } else if (path === '/v1/runs') {
      location.hash = '#/run/' + r.json.id;
    } else {
      result.replaceChildren(el('p', {id: 'valid',
        class: r.json.allowed ? 'ok' : 'error',
        text: r.json.allowed ? 'Valid, and the policy allows it (' + r.json.reason + ').'
                             : 'Valid, but the policy refuses it: ' + r.json.reason}));
    }
  };
  show(el('h1', {text: 'Submit an experiment'}),
    el('div', {class: 'toolbar'}, el('label', {}, 'Upload ', file), vars),
    yaml,
    el('div', {class: 'toolbar'},
      el('button', {id: 'validate', type: 'button', text: 'Validate',
                    onclick: () => send('/v1/policy/check')}),
      canOperate() ? el('button', {id: 'submit', class: 'primary', type: 'button',
                                   text: 'Submit', onclick: () => send('/v1/runs')})
                   : el('span', {class: 'muted', text: 'read-only session: validate only'})),
    result);
}

// ---- the frame ----------------------------------------------------------------------------

function route() {
  leavePage();
  const hash = location.hash || '#/runs';
  const [, page, arg] = hash.split('/');
  for (const a of document.querySelectorAll('[data-nav]')) {
    a.classList.toggle('active', a.dataset.nav === page || (page === 'run' && a.dataset.nav === 'runs'));
  }
  if (page === 'run' && arg) runPage(decodeURIComponent(arg));
  else if (page === 'faults') faultsPage();
  else if (page === 'schedules') schedulesPage();
  else if (page === 'submit') submitPage();
  else runsPage();
}

document.addEventListener('DOMContentLoaded', async () => {
  const r = await fetch('/api/session', {credentials: 'same-origin'});
  if (!r.ok) { location.href = '/login'; return; }
  state.session = await r.json();
  document.getElementById('who').textContent =
    who(state.session.issuer) + ' \u00b7 ' + state.session.role;
  document.getElementById('logout').addEventListener('click', async () => {
    await fetch('/logout', {method: 'POST', credentials: 'same-origin',
                            headers: {'X-CSRF-Token': state.session.csrf}});
    location.href = '/login';
  });
  window.addEventListener('hashchange', route);
  route();
});
