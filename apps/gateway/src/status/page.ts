/**
 * STATUS_PAGE is the whole live status page: no framework, no external file (the management network
 * may have no way out). It listens to /status/stream and renders with textContent only (names come from
 * the cluster, never as HTML).
 */
export const STATUS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>onehost gateway</title>
<style>
  :root { --fg: #1d2430; --muted: #6b7585; --line: #e3e7ee; --bg: #f6f8fb; --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; gap: 1.5em; align-items: baseline; padding: 0.8em 1.2em; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15em; margin: 0; }
  header .meta { color: var(--muted); }
  #conn { margin-left: auto; font-weight: 600; }
  #conn.live { color: var(--ok); } #conn.lost { color: var(--bad); }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1em; padding: 1em 1.2em; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 0.6em 0.9em 0.9em; overflow-x: auto; }
  section h2 { font-size: 1em; margin: 0.2em 0 0.6em; }
  #members-section, #entries-section { grid-column: 1 / -1; }
  table { border-collapse: collapse; width: 100%; }
  th, td { text-align: left; padding: 0.25em 0.6em 0.25em 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { color: var(--muted); font-weight: 500; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .state { font-weight: 600; }
  .state.active { color: var(--ok); } .state.draining { color: var(--warn); } .state.down { color: var(--bad); }
  .ev-down, .ev-refused, .ev-kernel, .ev-unhealthy { color: var(--bad); } .ev-up, .ev-undrain, .ev-reload, .ev-healthy { color: var(--ok); }
  .health.failing { color: var(--bad); } .ev-drain, .ev-leave { color: var(--warn); }
  .muted { color: var(--muted); }
  svg.spark { width: 120px; height: 24px; vertical-align: middle; }
  svg.spark polyline { fill: none; stroke: #3a6fd8; stroke-width: 1.5; }
  form { display: flex; flex-wrap: wrap; gap: 0.5em; align-items: end; }
  label { display: flex; flex-direction: column; font-size: 0.85em; color: var(--muted); }
  input, select, button { font: inherit; padding: 0.25em 0.4em; }
  input.addr { width: 9.5em; } input.port { width: 5.5em; } input.flags { width: 4em; }
  pre { background: var(--bg); padding: 0.6em; margin: 0.6em 0 0; white-space: pre-wrap; }
</style>
</head>
<body>
<header>
  <h1>onehost gateway <span id="gw-name"></span></h1>
  <span class="meta">data path <b id="datapath">…</b></span>
  <span class="meta">table version <b id="version">…</b></span>
  <span id="conn" class="lost">connecting…</span>
</header>
<main>
  <section id="members-section">
    <h2>Members</h2>
    <table id="members"><thead><tr><th>node</th><th>id</th><th>state</th><th>address</th><th>port block</th><th>health</th><th>last seen</th><th class="num">packets/s</th><th class="num">Mbit/s</th><th>last minutes</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="entries-section">
    <h2>Switch table <span class="muted" id="conn-note"></span></h2>
    <table id="entries"><thead><tr><th>entry</th><th>function</th><th>options</th><th class="num">connections</th><th>by node</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="exports-section">
    <h2>Exports</h2>
    <table id="exports"><thead><tr><th>path</th><th>node</th><th class="num">export id</th><th>mountd</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="events-section">
    <h2>Recent events</h2>
    <table id="events"><tbody></tbody></table>
  </section>
  <section id="explain-section">
    <h2>Explain a flow</h2>
    <form id="explain">
      <label>protocol<select name="protocol"><option>tcp</option><option>udp</option></select></label>
      <label>source<input class="addr" name="src" value="203.0.113.10" required></label>
      <label>port<input class="port" name="sport" value="40000" required></label>
      <label>destination<input class="addr" name="dst" id="explain-dst" required></label>
      <label>port<input class="port" name="dport" value="80" required></label>
      <label>TCP flags<input class="flags" name="flags" value="S"></label>
      <button type="submit">explain</button>
    </form>
    <pre id="explain-out" class="muted">which node would this flow reach, and why</pre>
  </section>
</main>
<script>
'use strict';
const $ = (id) => document.getElementById(id);
function cell(tr, text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; tr.appendChild(td); return td; }
function fill(tbody, rows, make) { const f = document.createDocumentFragment(); for (const r of rows) f.appendChild(make(r)); tbody.replaceChildren(f); }
function fmt(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + 'M' : n >= 1e3 ? (n / 1e3).toFixed(1) + 'k' : n.toFixed(0); }
function ago(ms, now) { if (!ms) return 'never'; const s = (now - ms) / 1000; return s < 1 ? Math.round(s * 1000) + ' ms ago' : s < 120 ? s.toFixed(0) + ' s ago' : Math.round(s / 60) + ' min ago'; }
function clock(ms) { return new Date(ms).toLocaleTimeString(); }
function spark(series) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg'); svg.setAttribute('class', 'spark'); svg.setAttribute('viewBox', '0 0 120 24');
  const max = Math.max(1, ...series.map((p) => p.pps));
  const pts = series.map((p, i) => ((series.length < 2 ? 0 : (i * 120) / (series.length - 1)).toFixed(1)) + ',' + (23 - (p.pps / max) * 22).toFixed(1));
  const line = document.createElementNS(ns, 'polyline'); line.setAttribute('points', pts.join(' ')); svg.appendChild(line);
  return svg;
}
function render(s) {
  $('gw-name').textContent = s.gateway.name;
  $('datapath').textContent = s.gateway.datapath;
  $('version').textContent = s.gateway.version;
  if (!$('explain-dst').value && s.gateway.clusterAddresses.length > 0) $('explain-dst').value = s.gateway.clusterAddresses[0];
  fill($('members').tBodies[0], s.members, (m) => {
    const tr = document.createElement('tr'); tr.dataset.node = m.name;
    cell(tr, m.name); cell(tr, String(m.id), 'num');
    const st = cell(tr, m.state + ((m.state === 'down' || m.state === 'unreachable') && m.downReason ? ' (' + m.downReason + ')' : ''), 'state ' + m.state);
    st.dataset.state = m.state;
    cell(tr, m.address); cell(tr, m.block);
    const failing = m.health.filter((h) => !h.healthy);
    const hc = cell(tr, m.health.length === 0 ? '—' : failing.length === 0 ? 'ok (' + m.health.length + ')' : failing.map((h) => h.name + ': ' + h.description + ' ' + h.detail + ' since ' + clock(h.sinceUnixMs)).join('; '), failing.length > 0 ? 'health failing' : 'health');
    hc.dataset.failing = failing.map((h) => h.name).join(',');
    cell(tr, ago(m.lastSeenUnixMs, s.gateway.now));
    cell(tr, fmt(m.rate.pps), 'num'); cell(tr, ((m.rate.bps * 8) / 1e6).toFixed(2), 'num');
    cell(tr, '').appendChild(spark(m.series));
    return tr;
  });
  fill($('entries').tBodies[0], s.entries, (e) => {
    const tr = document.createElement('tr'); tr.dataset.entry = e.key;
    cell(tr, e.key); cell(tr, e.function); cell(tr, e.options, 'muted'); cell(tr, String(e.total), 'num');
    cell(tr, Object.entries(e.nodes).sort().map(([n, c]) => n + ' ' + c).join(', ') + (e.skipped.length ? ' — ' + e.skipped.join('; ') : ''));
    return tr;
  });
  $('conn-note').textContent = s.connections.more ? '(connections: the first ' + s.connections.counted + ' counted)' : '';
  fill($('exports').tBodies[0], s.exports, (x) => {
    const tr = document.createElement('tr');
    cell(tr, x.path); cell(tr, x.node); cell(tr, String(x.exportId), 'num'); cell(tr, x.mountd || '—');
    return tr;
  });
  fill($('events').tBodies[0], s.events, (ev) => {
    const tr = document.createElement('tr'); tr.dataset.kind = ev.kind;
    cell(tr, clock(ev.t), 'muted'); cell(tr, ev.text, 'ev-' + ev.kind);
    return tr;
  });
  document.body.dataset.updated = String(s.gateway.now);
}
function connect() {
  const es = new EventSource('/status/stream');
  es.onopen = () => { $('conn').textContent = 'live'; $('conn').className = 'live'; };
  es.onmessage = (e) => render(JSON.parse(e.data));
  es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').className = 'lost'; };
}
$('explain').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const out = $('explain-out');
  const q = new URLSearchParams(new FormData(ev.target));
  const r = await fetch('/status/explain?' + q);
  const body = await r.json();
  out.className = '';
  if (!r.ok) { out.textContent = 'refused: ' + body.error; return; }
  const d = body.decision;
  const head = d.kind === 'forward' ? 'forward to ' + d.nodeName + ' (node ' + d.node + ')' + (d.port !== undefined ? ', port ' + d.port : '') : d.kind === 'local' ? 'local (the gateway answers)' : 'drop: ' + d.reason;
  const lines = [head];
  if (body.path) lines.push('path: ' + body.path);
  out.textContent = [...lines, '', ...body.trace].join('\\n');
  out.dataset.decision = d.kind === 'forward' ? d.nodeName : d.kind;
});
fetch('/status/state').then((r) => r.json()).then((s) => { render(s); connect(); }, connect);
</script>
</body>
</html>
`;
