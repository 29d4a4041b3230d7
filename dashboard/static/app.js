/*
 * The dashboard page: reads /api/curves, /api/workers and /api/releases and draws them with uPlot
 * (served by the dashboard from node_modules; nothing is fetched from elsewhere). Plain browser
 * JavaScript, no build step. Series colours and dashes come from the API (analytics/palette.ts).
 */
'use strict';

(function main() {
  const pollMs = Number(document.body.dataset.pollMs) || 5000;
  const charts = new Map(); // element id -> { plot, signature }
  let day = 'all';

  const $ = (sel) => document.querySelector(sel);
  const fmt = (v, digits) => (v === null || v === undefined ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }));
  const int = (v) => (v === null || v === undefined ? '—' : Math.round(v).toLocaleString('en-US'));
  const age = (sec) => {
    if (sec === null || sec === undefined) return '—';
    if (sec < 120) return `${Math.round(sec)} s`;
    if (sec < 7200) return `${Math.round(sec / 60)} min`;
    if (sec < 172800) return `${(sec / 3600).toFixed(1)} h`;
    return `${(sec / 86400).toFixed(1)} d`;
  };
  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  };

  const errors = new Map();
  function showError(key, message) {
    if (message) errors.set(key, message);
    else errors.delete(key);
    const box = $('#error');
    box.hidden = errors.size === 0;
    box.textContent = [...errors.values()].join(' · ');
  }

  async function getJson(path) {
    const res = await fetch(path, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return res.json();
  }

  function widthOf(el) {
    return Math.max(320, Math.floor(el.getBoundingClientRect().width || 480));
  }

  /** Draws (or updates) a uPlot chart; a new plot only when the series changed. */
  function draw(el, signature, makeOpts, data) {
    const prev = charts.get(el.id);
    if (prev && prev.signature === signature) {
      prev.plot.setData(data);
      return prev.plot;
    }
    if (prev) prev.plot.destroy();
    el.textContent = '';
    const plot = new uPlot(makeOpts(widthOf(el)), data, el);
    charts.set(el.id, { plot, signature });
    return plot;
  }

  function curveChart(el, buckets, series) {
    el.dataset.series = String(series.length);
    el.classList.toggle('empty', series.length === 0);
    if (series.length === 0) {
      const prev = charts.get(el.id);
      if (prev) prev.plot.destroy();
      charts.delete(el.id);
      el.textContent = '';
      return;
    }
    const xs = buckets.map((_, i) => i);
    const data = [xs, ...series.map((s) => s.auc)];
    const signature = JSON.stringify(series.map((s) => [s.label, s.color, s.dash]));
    draw(
      el,
      signature,
      (width) => ({
        width,
        height: 300,
        legend: { show: true, live: true, markers: { width: 2, dash: (u, i) => (u.series[i] && u.series[i].dash ? 'dashed' : 'solid') } },
        cursor: { points: { size: 7 } },
        scales: { x: { time: false, range: [-0.3, buckets.length - 0.7] }, y: { auto: true } },
        axes: [
          { label: 'prior interactions', splits: () => xs, values: (u, vals) => vals.map((v) => buckets[v] ?? ''), grid: { show: false } },
          { label: 'AUC', values: (u, vals) => vals.map((v) => v.toFixed(2)), size: 48 },
        ],
        series: [
          { label: 'bucket', value: (u, v) => (v === null || v === undefined ? '—' : (buckets[v] ?? '')) },
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            dash: s.dash ? [6, 4] : undefined,
            points: { show: true, size: 5, fill: s.color },
            // n: the bucket's events, shown beside the AUC of the hovered bucket.
            value: (u, v, si, idx) => (idx === null || idx === undefined ? '' : `${v === null || v === undefined ? '—' : v.toFixed(3)} n ${int(s.n[idx])}`),
          })),
        ],
      }),
      data,
    );
  }

  async function refreshCurves() {
    try {
      const body = await getJson(`/api/curves?day=${encodeURIComponent(day)}`);
      const select = $('#day');
      const wanted = ['all', ...body.days];
      if ([...select.options].map((o) => o.value).join() !== wanted.join()) {
        select.textContent = '';
        for (const d of wanted) select.append(new Option(d === 'all' ? 'all days' : d, d, false, d === day));
      }
      curveChart($('#chart-item'), body.buckets, body.sides.item);
      curveChart($('#chart-user'), body.buckets, body.sides.user);
      const when = body.queriedAtMs > 0 ? new Date(body.queriedAtMs).toLocaleTimeString() : 'never';
      $('#curves-meta').textContent = `namespace ${body.namespaces.join(', ')} · queried ${when}`;
      document.body.dataset.curvesLoaded = 'true';
      document.body.dataset.curvesDay = body.day;
      showError('curves', body.error ? `curves: ${body.error}` : '');
    } catch (err) {
      showError('curves', `curves: ${err.message}`);
    }
  }

  let workers = [];
  function renderWorkers(body) {
    workers = body.targets;
    const tbody = $('#workers tbody');
    tbody.textContent = '';
    for (const t of body.targets) {
      const tr = document.createElement('tr');
      tr.dataset.target = t.url;
      tr.dataset.up = String(t.up);
      if (!t.up) tr.className = 'down';
      tr.append(text('td', t.url));
      const status = t.up ? 'up' : t.error === null ? 'waiting' : 'down';
      const st = text('td', status, t.up ? 'status-up' : 'status-down');
      st.dataset.status = status;
      if (!t.up && t.error) st.title = t.error;
      if (!t.up && t.error) st.textContent = `down: ${t.error}`;
      tr.append(st);
      tr.append(text('td', t.namespace ?? '—'));
      tr.append(text('td', t.side || t.adapter ? `${t.side ?? '—'} / ${t.adapter ?? '—'}` : t.kind === 'server' ? 'server' : '—'));
      const rate = text('td', fmt(t.ratePerSec, 1), 'num rate');
      tr.append(rate);
      tr.append(text('td', int(t.lag), 'num'));
      tr.append(text('td', `${fmt(t.latencyP50Ms, 1)} / ${fmt(t.latencyP99Ms, 1)}`, 'num'));
      tr.append(text('td', int(t.deadLetters), 'num'));
      tr.append(text('td', t.release ?? '—'));
      tr.append(text('td', age(t.releaseAgeSec), 'num'));
      tbody.append(tr);
    }
    const up = body.targets.filter((t) => t.up).length;
    $('#workers-meta').textContent = body.targets.length === 0 ? 'no --targets given' : `${up} of ${body.targets.length} up · scraped every ${pollMs / 1000} s`;
    // Rate over time, one series per target (x: unix seconds).
    const el = $('#chart-rate');
    const withHistory = body.targets.filter((t) => t.history.t.length > 0);
    if (withHistory.length === 0) return;
    const times = [...new Set(withHistory.flatMap((t) => t.history.t))].sort((a, b) => a - b);
    const data = [
      times.map((ms) => ms / 1000),
      ...withHistory.map((t) => {
        const at = new Map(t.history.t.map((ms, i) => [ms, t.history.rate[i]]));
        return times.map((ms) => (at.has(ms) ? at.get(ms) : null));
      }),
    ];
    const palette = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#bcbd22', '#17becf'];
    draw(
      el,
      JSON.stringify(withHistory.map((t) => t.url)),
      (width) => ({
        width,
        height: 160,
        scales: { x: { time: true } },
        axes: [{}, { label: 'events /s', size: 56 }],
        series: [{}, ...withHistory.map((t, i) => ({ label: t.url, stroke: palette[i % palette.length], width: 2, spanGaps: false }))],
      }),
      data,
    );
  }

  async function refreshWorkers() {
    try {
      renderWorkers(await getJson('/api/workers'));
      document.body.dataset.workersLoaded = 'true';
      showError('workers', '');
    } catch (err) {
      showError('workers', `workers: ${err.message}`);
    }
  }

  async function refreshReleases() {
    try {
      const body = await getJson('/api/releases');
      const tbody = $('#releases tbody');
      tbody.textContent = '';
      for (const m of body.models) {
        const tr = document.createElement('tr');
        tr.append(text('td', m.model));
        tr.append(text('td', m.release ?? 'none promoted'));
        tr.append(text('td', m.createdAtMs === null ? '—' : new Date(m.createdAtMs).toISOString().replace('T', ' ').slice(0, 19) + ' UTC'));
        tr.append(text('td', age(m.ageSec), 'num'));
        tr.append(text('td', int(m.releases), 'num'));
        const on = workers.filter((w) => w.up && w.release === m.release).length;
        const behind = workers.filter((w) => w.up && w.release !== null && w.release !== m.release && w.release.startsWith(`${m.model}/`)).length;
        tr.append(text('td', behind > 0 ? `${on} (${behind} on another release)` : String(on), behind > 0 ? 'num stale' : 'num'));
        tbody.append(tr);
      }
      $('#releases-meta').textContent = body.dir === null ? 'no release directory' : `${body.dir}${body.models.length === 0 ? ': no releases' : ''}`;
      showError('releases', body.error ? `releases: ${body.error}` : '');
    } catch (err) {
      showError('releases', `releases: ${err.message}`);
    }
  }

  $('#day').addEventListener('change', (e) => {
    day = e.target.value;
    void refreshCurves();
  });
  window.addEventListener('resize', () => {
    for (const [id, c] of charts) c.plot.setSize({ width: widthOf(document.getElementById(id)), height: c.plot.height });
  });

  async function tick() {
    await refreshWorkers();
    await Promise.all([refreshCurves(), refreshReleases()]);
  }
  void tick();
  setInterval(() => void tick(), pollMs);
})();
