// Sluice dashboard: polls GET /api/v1/overview every second (the first
// time at once) and renders it; rates are computed between answers. Dead
// letters (newest first, paged), breakers and the document viewer use the
// rest of the HTTP API. A server with API keys gets the key the user
// enters (kept in this tab's sessionStorage) with every call. Times are
// shown as ISO 8601, 2026-12-07 08:14:24, in local time or UTC (a
// preference kept in localStorage). No dependencies.
'use strict';
(() => {
  const POLL_MS = 1000;
  const RATE_WINDOW_MS = 5000; // rates and durations are over about this long
  const DL_LIMIT = 100;

  const $ = (sel) => document.querySelector(sel);
  const nf = new Intl.NumberFormat();
  const nf1 = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
  const nf3 = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

  // ---- HTTP API -------------------------------------------------------

  // api calls the HTTP API; an error answer {"error": "..."} becomes an
  // Error with that message. A 401 (the server requires a key, or refused
  // ours) asks for a key and throws an Error with needsKey set.
  async function api(method, path, body) {
    const opt = { method, headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      opt.headers['Content-Type'] = 'application/json';
      opt.body = JSON.stringify(body);
    }
    const key = apiKey;
    if (key) opt.headers.Authorization = `Bearer ${key}`;
    let res;
    try {
      res = await fetch(path, opt);
    } catch (e) {
      throw new Error(`${method} ${path}: the server does not answer (${e.message})`);
    }
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch { data = null; }
    if (!res.ok) {
      const msg = data && typeof data.error === 'string' ? data.error : (text.trim() || res.statusText);
      const err = new Error(`${method} ${path} answered ${res.status}: ${msg}`);
      if (res.status === 401) {
        err.needsKey = true;
        keyRejected(key, msg);
      }
      throw err;
    }
    return data;
  }

  // ---- API key --------------------------------------------------------

  // Once a server has API keys, every API call needs one. The key entered
  // here is kept in this tab's sessionStorage, so that it survives a
  // reload of the tab but not its closing, and no other tab or site reads
  // it; it is sent as a bearer token, never in a URL, never in
  // localStorage or a cookie.
  const KEY_ITEM = 'sluice.apiKey';
  let apiKey = '';
  let needKey = false; // the key form is shown: polling waits for a key

  function loadKey() {
    try { apiKey = sessionStorage.getItem(KEY_ITEM) || ''; } catch { apiKey = ''; }
    $('#key-forget').hidden = !apiKey;
  }
  function storeKey(key) {
    apiKey = key;
    try {
      if (key) sessionStorage.setItem(KEY_ITEM, key); else sessionStorage.removeItem(KEY_ITEM);
    } catch { /* storage refused: the key lasts as long as the page */ }
    $('#key-forget').hidden = !key;
  }

  // keyRejected handles a 401 to a call sent with key ('' for none): a
  // refused key is forgotten, and the user is asked for one. An answer to
  // a call made with an older key than the current one changes nothing.
  function keyRejected(key, msg) {
    if (key !== apiKey) return;
    if (key) {
      storeKey('');
      askKey('refused', `The server refused the key: ${msg}`);
    } else {
      askKey('required', 'This server requires an API key. Enter one to see its state and act on it.');
    }
  }

  // askKey shows the key form, saying why (reason "required" or
  // "refused", in its data-reason), and stops polling until a key is
  // entered.
  function askKey(reason, msg) {
    const form = $('#key-form');
    needKey = true;
    clearTimeout(timer);
    form.dataset.reason = reason;
    $('#key-msg').textContent = msg;
    $('#live-dot').className = 'dot bad';
    $('#updated').textContent = 'waiting for an API key';
    if (form.hidden) {
      form.hidden = false;
      $('#key-input').focus();
    }
  }

  function useKey(e) {
    e.preventDefault();
    const input = $('#key-input');
    const key = input.value.trim().replace(/^bearer\s+/i, '');
    if (!/^[\x21-\x7e]+$/.test(key)) {
      $('#key-form').dataset.reason = 'invalid';
      $('#key-msg').textContent = key ? 'A key is printable ASCII without spaces, like sluice_…: paste it again.' : 'Enter a key.';
      input.focus();
      return;
    }
    input.value = '';
    storeKey(key);
    needKey = false;
    $('#key-form').hidden = true;
    errors.poll = '';
    errors.action = '';
    showErrors();
    if (!paused) $('#updated').textContent = 'connecting…';
    dlForce = true;
    poll();
  }

  function forgetKey() {
    storeKey('');
    status('The API key is forgotten: this tab no longer sends it.');
    dlForce = true;
    poll();
  }

  const enc = encodeURIComponent;

  // ---- messages -------------------------------------------------------

  // The banner is for errors of the whole page: a failed poll, a part of
  // the overview that could not be read at all, a failed action. An
  // error of one hub, queue or container is shown with it.
  const errors = { poll: '', parts: '', pipelines: '', action: '' };
  function showErrors() {
    const msgs = [errors.action, errors.poll, errors.parts, errors.pipelines].filter(Boolean);
    const box = $('#error');
    const text = msgs.join('\n');
    if (box.textContent !== text) box.textContent = text;
    box.hidden = msgs.length === 0;
  }
  // actionError shows why an action failed, or clears that with null. A
  // missing or refused key is told by the key form instead.
  function actionError(e) { errors.action = e && !e.needsKey ? e.message || String(e) : ''; showErrors(); }
  let statusTimer;
  function status(msg) {
    $('#status').textContent = msg;
    clearTimeout(statusTimer);
    statusTimer = setTimeout(() => { $('#status').textContent = ''; }, 8000);
  }

  // ---- formatting -----------------------------------------------------

  const fmtNum = (n) => (n == null || !isFinite(n) ? '—' : nf.format(Math.round(n)));
  const fmtRate = (r) => (r == null ? '—' : r >= 100 ? nf.format(Math.round(r)) : nf1.format(r));
  function fmtBytes(b) {
    if (b == null) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
    return `${i === 0 ? nf.format(Math.round(b)) : nf1.format(b)} ${units[i]}`;
  }
  function fmtDur(s) {
    if (s == null || !isFinite(s) || s <= 0) return '—';
    if (s < 0.001) return `${nf3.format(s * 1e6)} µs`;
    if (s < 1) return `${nf3.format(s * 1e3)} ms`;
    if (s < 120) return `${nf3.format(s)} s`;
    return `${nf1.format(s / 60)} min`;
  }
  function fmtAge(s) {
    if (s == null || !isFinite(s) || s < 0) return '—';
    if (s < 60) return `${nf.format(Math.floor(s))} s`;
    if (s < 3600) return `${nf.format(Math.floor(s / 60))} min`;
    if (s < 86400) return `${nf1.format(s / 3600)} h`;
    return `${nf1.format(s / 86400)} d`;
  }
  // ---- times ----------------------------------------------------------

  // Every time is shown one way: ISO 8601, "2026-12-07 08:14:24", in local
  // time or in UTC, as the user chose (kept in localStorage: a display
  // preference, not a secret), as the CLI prints them.
  const ZONE_ITEM = 'sluice.timeZone';
  let utc = false;
  function loadZone() {
    try { utc = localStorage.getItem(ZONE_ITEM) === 'utc'; } catch { utc = false; }
    showZone();
  }
  function setZone(toUTC) {
    utc = toUTC;
    try { localStorage.setItem(ZONE_ITEM, utc ? 'utc' : 'local'); } catch { /* kept for this page only */ }
    showZone();
    rerender();
  }
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  // offsetText is the local offset from UTC at d: "+05:30".
  function offsetText(d) {
    const m = -d.getTimezoneOffset();
    return (m < 0 ? '-' : '+') + pad(Math.floor(Math.abs(m) / 60)) + ':' + pad(Math.abs(m) % 60);
  }
  function showZone() {
    const b = $('#tz');
    b.dataset.zone = utc ? 'utc' : 'local';
    // The label says how times are shown; a click shows them the other way.
    b.textContent = utc ? 'Times: UTC' : `Times: local (UTC${offsetText(new Date())})`;
    b.title = utc ? 'Show times in local time' : 'Show times in UTC';
  }
  // isoTime formats a Date: "2026-12-07 08:14:24".
  function isoTime(d) {
    return utc
      ? `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
      : `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  // fmtTime formats a time of the API (RFC 3339); Go's zero time is none.
  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d)) return iso;
    if (d.getUTCFullYear() <= 1) return '—';
    return isoTime(d);
  }
  // fullTime is the time with its offset, for a title: unambiguous.
  function fullTime(iso) {
    const d = new Date(iso);
    if (!iso || isNaN(d) || d.getUTCFullYear() <= 1) return '';
    return isoTime(d).replace(' ', 'T') + (utc ? 'Z' : offsetText(d));
  }
  // fmtGoDuration shortens a Go duration's text: "168h0m0s" → "168h".
  const fmtGoDuration = (d) => (d || '').replace(/(\D)0m0s$/, '$1').replace(/(\D)0s$/, '$1');
  const since = (iso) => (iso ? fmtAge((Date.now() - Date.parse(iso)) / 1000) + ' ago' : '—');

  // ---- DOM helpers ----------------------------------------------------

  // el makes an element: el('button', {type: 'button', onclick}, 'text').
  function el(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v == null || v === false) continue;
      if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else if (k === 'class') n.className = v;
      else if (k === 'dataset') Object.assign(n.dataset, v);
      else n.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c != null) n.append(c);
    return n;
  }

  // A cell spec is text, a number spec {text, value, cls, col, title}, or
  // a function (td, isNew) that fills the cell itself.
  const num = (n, col, text) => ({ text: text ?? fmtNum(n), value: n, cls: 'num', col });
  const txt = (text, col, cls) => ({ text, col, cls });

  function setCell(td, spec, isNew) {
    if (typeof spec === 'function') { spec(td, isNew); return; }
    if (spec == null || typeof spec !== 'object') spec = { text: spec };
    const text = spec.text == null || spec.text === '' ? '—' : String(spec.text);
    if (td.textContent !== text) td.textContent = text;
    const cls = spec.cls || '';
    if (td.className !== cls) td.className = cls;
    if (spec.col && td.dataset.col !== spec.col) td.dataset.col = spec.col;
    if (spec.value != null) td.dataset.value = String(spec.value);
    else delete td.dataset.value;
    if (spec.title) td.title = spec.title;
  }

  // syncRows updates tbody to one row per item, reusing the rows of items
  // with the same key, so that focus, checkboxes and buttons survive the
  // updates. The first cell is the row's header.
  function syncRows(tbody, items, keyOf, cellsOf, emptyText, columns) {
    const rows = tbody._rows || (tbody._rows = new Map());
    const seen = new Set();
    let at = 0;
    if (items.length === 0) {
      tbody.replaceChildren(el('tr', { class: 'empty-row' }, el('td', { colspan: columns, class: 'empty' }, emptyText)));
      rows.clear();
      return;
    }
    const placeholder = tbody.querySelector('tr.empty-row');
    if (placeholder) placeholder.remove();
    for (const item of items) {
      const key = keyOf(item);
      seen.add(key);
      let tr = rows.get(key);
      const isNew = !tr;
      if (isNew) {
        tr = el('tr', { dataset: { key } });
        rows.set(key, tr);
      }
      const cells = cellsOf(item);
      while (tr.cells.length < cells.length) tr.append(tr.cells.length === 0 ? el('th', { scope: 'row' }) : el('td'));
      cells.forEach((spec, i) => setCell(tr.cells[i], spec, isNew));
      if (tbody.children[at] !== tr) tbody.insertBefore(tr, tbody.children[at] || null);
      at++;
    }
    for (const [key, tr] of rows) {
      if (!seen.has(key)) { tr.remove(); rows.delete(key); }
    }
  }

  // setOptions keeps a select's options in step with values, keeping the
  // selection and the first ("any") option.
  function setOptions(select, values) {
    const have = [...select.options].slice(1).map((o) => o.value);
    const current = select.value;
    if (current && !values.includes(current)) values = [...values, current];
    if (have.join('\n') === values.join('\n')) return;
    select.replaceChildren(select.options[0], ...values.map((v) => el('option', { value: v }, v)));
    select.value = current;
  }

  // ---- rates ----------------------------------------------------------

  // history holds recent answers; rates are between the oldest and the
  // newest, about RATE_WINDOW_MS apart.
  const history = [];
  function remember(ov) {
    const t = Date.parse(ov.time);
    if (history.length && history[history.length - 1].t >= t) return;
    ov.fn = new Map(ov.functions.map((f) => [f.name, f]));
    ov.hub = new Map(ov.hubs.map((h) => [h.name, h]));
    ov.ctr = new Map(ov.containers.map((c) => [c.name, c]));
    history.push({ t, ov });
    while (history.length > 2 && t - history[1].t >= RATE_WINDOW_MS) history.shift();
  }
  // window returns [older, newer] answers, or null with one only.
  function span() {
    if (history.length < 2) return null;
    return [history[0], history[history.length - 1]];
  }
  // rate of a counter: get(ov) → number or undefined.
  function rate(get) {
    const s = span();
    if (!s) return null;
    const a = get(s[0].ov), b = get(s[1].ov);
    if (a == null || b == null) return null;
    return Math.max(0, (b - a) / ((s[1].t - s[0].t) / 1000));
  }

  // quantile estimates the q-quantile of n observations from cumulative
  // buckets [{le, count}], as the server does.
  function quantile(q, buckets, n) {
    if (!n || !buckets || !buckets.length) return null;
    const rank = q * n;
    let lower = 0, below = 0;
    for (const b of buckets) {
      if (b.count >= rank) {
        const inside = b.count - below;
        return inside <= 0 ? b.le : lower + (b.le - lower) * (rank - below) / inside;
      }
      lower = b.le; below = b.count;
    }
    return buckets[buckets.length - 1].le;
  }

  // durations over the window when the function ran in it, else since start.
  function durations(f) {
    const s = span();
    const old = s && s[0].ov.fn.get(f.name);
    const n = old ? f.invocations - old.invocations : 0;
    if (n > 0 && old.duration_buckets && f.duration_buckets && old.duration_buckets.length === f.duration_buckets.length) {
      const delta = f.duration_buckets.map((b, i) => ({ le: b.le, count: b.count - old.duration_buckets[i].count }));
      return { mean: (f.duration_sum_seconds - old.duration_sum_seconds) / n, p50: quantile(0.5, delta, n), p99: quantile(0.99, delta, n), recent: true };
    }
    return { mean: f.mean_seconds, p50: f.p50_seconds, p99: f.p99_seconds, recent: false };
  }

  // ---- sections -------------------------------------------------------

  let last = null; // the newest overview

  function render(ov) {
    remember(ov);
    last = ov;
    renderOverview(ov);
  }

  function renderOverview(ov) {
    $('#instance').textContent = ov.instance || '(unnamed)';
    errors.parts = ov.errors && ov.errors.length ? 'Some parts could not be read: ' + ov.errors.join('; ') : '';
    renderHubs(ov);
    renderFunctions(ov);
    renderQueues(ov);
    renderDeadLetterCounts(ov);
    renderContainers(ov);
    renderPartners(ov);
    renderInstances(ov);
  }

  // ---- partners --------------------------------------------------------

  let partnerShown = null; // the partner whose details are open

  function renderPartners(ov) {
    syncRows($('#partners-table tbody'), ov.partners || [], (p) => p.id, (p) => [
      txt(p.name ? `${p.id} (${p.name})` : p.id, 'name'),
      { text: p.enabled ? 'yes' : 'no', col: 'enabled', cls: p.enabled ? '' : 'bad' },
      txt(p.types.join(', '), 'types', 'wrap'),
      num(p.accepted, 'accepted'), { ...num(p.rejected, 'rejected'), cls: 'num' + (p.rejected ? ' bad' : '') },
      num(p.delivered, 'delivered'), { ...num(p.failed, 'failed'), cls: 'num' + (p.failed ? ' bad' : '') },
      { text: p.endpoints.length ? p.endpoints.map((e) => `${e.name} (${e.breaker})`).join(', ') : 'none', col: 'endpoints',
        cls: p.endpoints.some((e) => e.breaker !== 'closed') ? 'bad' : '' },
      (td, isNew) => {
        if (!isNew) return;
        td.append(el('button', { type: 'button', onclick: () => openPartner(p.id), 'aria-label': `Details of partner ${p.id}` }, 'Details'));
      },
    ], 'No partners.', 9);
    if (partnerShown && !(ov.partners || []).some((p) => p.id === partnerShown)) closePartner();
  }

  // fillRows fills tbody with rows of cells; the cells at the indexes in
  // nums are numbers, aligned right.
  function fillRows(tbody, rows, empty, columns, nums = []) {
    tbody.replaceChildren(...(rows.length ? rows.map((cells) => el('tr', {}, ...cells.map((c, i) =>
      el('td', { class: nums.includes(i) ? 'num' : null }, c == null || c === '' ? '—' : String(c)))))
      : [el('tr', {}, el('td', { colspan: String(columns), class: 'hint' }, empty))]));
  }

  async function openPartner(id, focus = true) {
    try {
      const [rej, parked, log] = await Promise.all([
        api('GET', `/api/v1/partners/${enc(id)}/rejections?limit=20`),
        api('GET', `/api/v1/deliveries?partner=${enc(id)}&limit=50`),
        api('GET', `/api/v1/partners/${enc(id)}/deliveries?limit=20`),
      ]);
      actionError(null);
      partnerShown = id;
      $('#partner-detail-h').textContent = `Partner ${id}`;
      fillRows($('#partner-rejections tbody'), rej.rejections.map((r) => [fmtTime(r.time), r.type, r.message_id, r.status, r.stage,
        (r.problems || []).map((p) => (p.location ? p.location + ': ' : '') + p.reason).join('; ') || r.error]), 'No rejections.', 6, [3]);
      fillRows($('#partner-parked tbody'), parked.deliveries.map((d) => [fmtTime(d.created), d.endpoint, d.message_id, d.state, d.attempts,
        d.state === 'parked' ? fmtTime(d.next_attempt) : '', d.reason]), 'Nothing parked.', 7, [4]);
      fillRows($('#partner-log tbody'), log.deliveries.map((d) => [fmtTime(d.time), d.endpoint, d.message_id,
        d.outcome || (d.parked ? 'parked' : ''), d.status || '', d.latency_ns ? fmtDur(d.latency_ns / 1e9) : '',
        d.error || d.reason || (d.response || '').trim()]), 'No deliveries yet.', 7, [4, 5]);
      const card = $('#partner-detail');
      card.hidden = false;
      if (focus) card.focus();
    } catch (e) {
      actionError(e);
    }
  }

  function closePartner() {
    partnerShown = null;
    $('#partner-detail').hidden = true;
  }

  // ---- pipelines -------------------------------------------------------

  function destinationState(d) {
    if (d.paused) return { text: 'paused: ' + (d.reason || ''), cls: 'bad' };
    if (d.breaker && d.breaker !== 'closed') return { text: 'breaker ' + d.breaker, cls: 'bad' };
    if (d.behind > 0) return { text: 'catching up', cls: '' };
    return { text: 'up to date', cls: '' };
  }

  function renderPipelines(list) {
    const rows = [];
    for (const p of list) for (const d of p.destinations) rows.push({ p, d });
    syncRows($('#pipelines-table tbody'), rows, (r) => `${r.p.name}/${r.d.name}`, ({ p, d }) => {
      const st = destinationState(d);
      return [
        txt(p.name, 'pipeline'), num(p.staged, 'staged'),
        { text: p.position || '-', col: 'position', cls: p.source_error ? 'bad' : '' },
        sourceLag(p),
        txt(d.name, 'destination'), num(d.applied, 'applied'), num(d.behind, 'behind'),
        { text: d.behind ? fmtAge(d.lag_seconds) : '—', value: d.lag_seconds, cls: 'num', col: 'lag' },
        { text: st.text, col: 'state', cls: st.cls },
        (td) => {
          const label = d.paused ? 'Resume' : 'Pause';
          let b = td.querySelector('button');
          if (!b) {
            b = el('button', { type: 'button' });
            b.addEventListener('click', () => pipelineAction(p.name, d.name, b.dataset.verb));
            td.append(b);
          }
          b.textContent = label;
          b.dataset.verb = label.toLowerCase();
          b.setAttribute('aria-label', `${label} destination ${d.name} of pipeline ${p.name}`);
        },
        (td, isNew) => {
          if (!isNew) return;
          const input = el('input', { type: 'text', size: '12', placeholder: 'change set or time', 'aria-label': `Replay destination ${d.name} of pipeline ${p.name} from` });
          const form = el('form', { class: 'inline' }, input, el('button', { type: 'submit' }, 'Replay'));
          form.addEventListener('submit', (e) => { e.preventDefault(); replayPipeline(p.name, d.name, input.value.trim()); });
          td.append(form);
        },
      ];
    }, 'No pipelines.', 11);
  }

  // sourceLag shows a source's lag: bytes retained (and seconds, when it
  // has any), or a dash when the source cannot tell.
  function sourceLag(p) {
    const l = p.source_lag;
    if (!l) return { text: '—', cls: 'num', col: 'source-lag' };
    const text = fmtBytes(l.bytes) + (l.seconds > 0 ? ', ' + fmtAge(l.seconds) : '');
    return { text, value: l.bytes, cls: 'num', col: 'source-lag' };
  }

  async function refreshPipelines() {
    const out = await api('GET', '/api/v1/pipelines');
    renderPipelines(out.pipelines || []);
  }

  async function pipelineAction(name, dest, verb) {
    try {
      await api('POST', `/api/v1/pipelines/${enc(name)}/destinations/${enc(dest)}/${verb}`, verb === 'pause' ? { reason: 'paused from the dashboard' } : {});
      actionError(null);
      status(`Destination ${dest} of pipeline ${name} ${verb === 'pause' ? 'paused' : 'resumed'}.`);
      poll();
    } catch (e) {
      actionError(e);
    }
  }

  async function replayPipeline(name, dest, from) {
    if (!from) { actionError(new Error('Give a change set number or a time (RFC 3339) to replay from.')); return; }
    const body = /^[0-9]+$/.test(from) ? { change_set: Number(from) } : { time: from };
    try {
      const out = await api('POST', `/api/v1/pipelines/${enc(name)}/destinations/${enc(dest)}/replay`, body);
      actionError(null);
      status(`Destination ${dest} of pipeline ${name} goes on from change set ${fmtNum(out.from)}.`);
      poll();
    } catch (e) {
      actionError(e);
    }
  }

  async function partnerDeliveries(verb) {
    if (!partnerShown) return;
    const id = partnerShown;
    try {
      const out = await api('POST', `/api/v1/deliveries/${verb}`, { partner: id });
      actionError(null);
      status(verb === 'retry' ? `${fmtNum(out.retried)} deliveries to ${id} will be tried again now.` : `${fmtNum(out.cancelled)} deliveries to ${id} cancelled.`);
      openPartner(id, false);
    } catch (e) {
      actionError(e);
    }
  }

  function renderHubs(ov) {
    const box = $('#hubs-body');
    const blocks = box._blocks || (box._blocks = new Map());
    if (!ov.hubs.length) {
      box.replaceChildren(el('p', { class: 'hint' }, 'No hubs.'));
      blocks.clear();
      return;
    }
    box.querySelector(':scope > p')?.remove();
    const seen = new Set();
    ov.hubs.forEach((h, i) => {
      seen.add(h.name);
      let b = blocks.get(h.name);
      if (!b) {
        const id = 'hub-' + i + '-' + h.name.replace(/[^A-Za-z0-9_-]/g, '_');
        b = {
          root: el('div', { class: 'hub', dataset: { hub: h.name } }),
          summary: el('p', { class: 'hub-summary' }),
          error: el('p', { class: 'hub-error', role: 'alert', hidden: true }),
          thead: el('thead'),
          tbody: el('tbody'),
          sig: '',
        };
        b.root.append(el('h3', { id }, h.name), b.error, b.summary,
          el('div', { class: 'scroll' }, el('table', { 'aria-labelledby': id }, b.thead, b.tbody)));
        blocks.set(h.name, b);
      }
      if (box.children[i] !== b.root) box.insertBefore(b.root, box.children[i] || null);
      // This hub's error, with it (the rest of the page is fine).
      const hubError = h.error ? `This hub could not be read fully: ${h.error}` : '';
      if (b.error.textContent !== hubError) b.error.textContent = hubError;
      b.error.hidden = !hubError;
      const hubRate = (get) => rate((o) => { const x = o.hub.get(h.name); return x && get(x); });
      const parts = [
        ['partitions', fmtNum(h.partitions)],
        ['stored', fmtBytes(h.bytes)],
        ['records', fmtNum(h.records)],
        ['events in', fmtRate(hubRate((x) => x.events_in)) + '/s', 'published through this instance'],
        ['retention', fmtGoDuration(h.retention)],
      ];
      for (const g of h.groups) {
        const gr = hubRate((x) => x.groups.find((y) => y.name === g.name)?.processed);
        parts.push([`${g.name} (${g.functions.join(', ')})`, `${fmtRate(gr)}/s processed, lag ${fmtNum(g.lag)}`]);
      }
      b.summary.replaceChildren(...parts.map(([k, v, title]) => el('span', { title }, k + ' ', el('b', null, v))));
      const sig = h.groups.map((g) => g.name).join('\n');
      if (b.sig !== sig || !b.thead.firstChild) {
        b.sig = sig;
        b.thead.replaceChildren(el('tr', null,
          el('th', { scope: 'col' }, 'Partition'), el('th', { scope: 'col', class: 'num' }, 'Records'),
          el('th', { scope: 'col', class: 'num' }, 'Stored'), el('th', { scope: 'col', class: 'num' }, 'Write rate'),
          el('th', { scope: 'col' }, 'Last event'),
          ...h.groups.flatMap((g) => [el('th', { scope: 'col', class: 'num' }, `Lag (${g.name})`), el('th', { scope: 'col' }, `Owner (${g.name})`)])));
        b.tbody.replaceChildren();
        b.tbody._rows = null;
      }
      syncRows(b.tbody, h.partition_info, (p) => String(p.partition), (p) => {
        const bps = hubRate((x) => x.partition_info[p.partition]?.bytes);
        const cells = [txt(String(p.partition), 'partition'), num(p.records, 'records'), { text: fmtBytes(p.bytes), value: p.bytes, cls: 'num', col: 'bytes' },
          { text: bps == null ? '—' : fmtBytes(bps) + '/s', value: bps, cls: 'num', col: 'write-rate' },
          { text: p.last_enqueued ? since(p.last_enqueued) : 'empty', col: 'last-event', title: fmtTime(p.last_enqueued) }];
        for (const g of h.groups) {
          const gp = g.partitions.find((x) => x.partition === p.partition) || {};
          cells.push({ text: (gp.estimated ? '≈' : '') + fmtNum(gp.lag), value: gp.lag, cls: 'num' + (gp.lag > 10000 ? ' lag-high' : ''), col: 'lag',
            title: gp.checkpoint >= 0 ? `checkpoint ${gp.checkpoint}, updated ${fmtTime(gp.checkpoint_updated)}` : 'no checkpoint yet' });
          cells.push({ text: gp.owner || 'none', cls: 'mono', col: 'owner' });
        }
        return cells;
      }, 'No partitions.', 5 + 2 * h.groups.length);
    });
    for (const [name, b] of blocks) if (!seen.has(name)) { b.root.remove(); blocks.delete(name); }
  }

  function trigger(f) {
    if (!f.trigger) return '—';
    if (f.trigger === 'hub') return `hub ${f.source} (${f.group})`;
    // An HTTP function: its methods (none: any) and route.
    if (f.trigger === 'http') return ['http', (f.methods || []).join(', '), f.source].filter(Boolean).join(' ');
    return `${f.trigger} ${f.source}`;
  }

  function breakerCell(f) {
    return (td, isNew) => {
      if (isNew || !td._state) {
        td._state = el('span', { class: 'state' });
        td._button = el('button', { type: 'button', class: 'small', onclick: () => toggleBreaker(td.dataset.fn, td.dataset.state, td._button) });
        td.replaceChildren(td._state, td._button);
      }
      td.dataset.col = 'breaker';
      td.dataset.fn = f.name;
      if (!f.breaker) {
        td.dataset.state = '';
        td._state.textContent = 'none';
        td._state.className = 'hint';
        td._button.hidden = true;
        return;
      }
      const st = f.breaker.state;
      td.dataset.state = st;
      td._state.textContent = st;
      td._state.className = 'state ' + st;
      td.title = [f.breaker.reason, f.breaker.since && 'since ' + fmtTime(f.breaker.since), f.breaker.manual && 'set by hand'].filter(Boolean).join(' · ');
      td._button.hidden = false;
      const label = st === 'closed' ? 'Open' : 'Close';
      if (td._button.textContent !== label) td._button.textContent = label;
      td._button.setAttribute('aria-label', `${label} the breaker of ${f.name}`);
    };
  }

  async function toggleBreaker(fn, state, button) {
    const open = state === 'closed';
    button.disabled = true;
    try {
      await api('POST', `/api/v1/breakers/${enc(fn)}/${open ? 'open' : 'close'}`, { reason: `${open ? 'opened' : 'closed'} from the dashboard`, by: 'dashboard' });
      actionError(null);
      status(`The breaker of ${fn} is ${open ? 'open: the function takes no new work' : 'closed: work resumes'}.`);
      poll();
    } catch (e) {
      actionError(e);
    } finally {
      button.disabled = false;
    }
  }

  function renderFunctions(ov) {
    syncRows($('#functions-table tbody'), ov.functions, (f) => f.name, (f) => {
      const d = durations(f);
      const r = rate((o) => o.fn.get(f.name)?.processed);
      const when = d.recent ? 'over the last seconds' : 'since start';
      return [
        txt(f.name, 'name'), txt(trigger(f), 'trigger'),
        num(f.processed, 'processed'), { text: fmtRate(r), value: r, cls: 'num', col: 'rate' },
        num(f.invocations, 'invocations'), { ...num(f.failures, 'failures'), cls: 'num' + (f.failures ? ' bad' : '') },
        num(f.retries, 'retries'), num(f.dead_lettered, 'dead-lettered'),
        { text: fmtDur(d.mean), cls: 'num', col: 'mean', title: when }, { text: fmtDur(d.p50), cls: 'num', col: 'p50', title: when },
        { text: fmtDur(d.p99), cls: 'num', col: 'p99', title: when },
        breakerCell(f),
      ];
    }, 'No functions run on this instance.', 12);
  }

  // nameCell is a row's first cell: the name, and the item's own error.
  function nameCell(name, error) {
    return (td) => {
      td.dataset.col = 'name';
      const now = name + '\u0000' + (error || '');
      if (td._now === now) return;
      td._now = now;
      td.replaceChildren(name, ...(error ? [el('span', { class: 'cell-error', role: 'alert' }, `could not be read: ${error}`)] : []));
    };
  }

  function renderQueues(ov) {
    syncRows($('#queues-table tbody'), ov.queues, (q) => q.name, (q) => [
      nameCell(q.name, q.error), txt(q.kind, 'kind'), num(q.depth, 'depth'), num(q.locked, 'locked'), num(q.delayed, 'delayed'),
      { text: q.depth ? fmtAge(q.oldest_age_seconds) : '—', value: q.oldest_age_seconds, cls: 'num', col: 'oldest' },
    ], 'No queues.', 6);
  }

  function renderInstances(ov) {
    syncRows($('#instances-table tbody'), ov.instances, (i) => i.id, (i) => [
      { text: i.id + (i.self ? ' (this instance)' : ''), cls: 'mono', col: 'id' },
      txt(i.partitions.length ? i.partitions.map((p) => `${p.hub} / ${p.group}: ${p.partitions.join(', ')}`).join('; ') : 'no partitions', 'owns', 'wrap'),
    ], 'No instances.', 2);
  }

  // ---- dead letters ---------------------------------------------------

  const selected = new Set(); // "queue/id"
  let letters = []; // listed
  let detail = null; // {queue, id} shown

  function renderDeadLetterCounts(ov) {
    const total = ov.dead_letters.reduce((s, d) => s + d.count, 0);
    const badge = $('#dl-total');
    badge.textContent = fmtNum(total);
    badge.hidden = total === 0;
    $('#dl-counts').textContent = ov.dead_letters.length
      ? ov.dead_letters.map((d) => `${d.queue}: ${fmtNum(d.count)}`).join(' · ')
      : 'No dead-letter queues yet.';
    $('#dl-counts').dataset.total = String(total);
    setOptions($('#dl-function'), ov.functions.map((f) => f.name));
    setOptions($('#dl-queue'), ov.dead_letters.map((d) => d.queue));
  }

  function describeSource(s) {
    if (!s) return '—';
    switch (s.kind) {
      case 'hub': return `hub ${s.hub} (${s.group || '$Default'}) partition ${s.partition} #${s.sequence ?? 0}`;
      case 'queue': return `queue ${s.queue} message ${s.message_id ?? ''}`;
      case 'container': return `container ${s.container} document ${s.document_id} LSN ${s.lsn ?? ''}${s.deleted ? ' (deleted)' : ''}`;
      case 'blob': return `blob ${s.container}/${s.blob}`;
      default: return s.kind || '—';
    }
  }

  // The list is newest first, DL_LIMIT at a time. It shows the newest
  // letters (live: new ones come in at the top), or, once paged to older
  // ones, the same page (dlPage: the cursor it was asked with) until the
  // pager or a filter changes it. It is read again when asked (a filter,
  // an action, the pager), when the counts changed (at most every few
  // seconds: a filter that matches few letters reads them all), and now
  // and then.
  let dlBusy = false;
  let dlAgain = false; // asked for while a read was under way
  let dlForce = true;
  let dlFetched = 0;
  let dlCounts = '';
  let dlPage = null; // null: the newest; else {before} or {after}: a cursor of the API
  let dlCursors = { older: '', newer: '' }; // of the page shown
  function deadLettersDue(ov) {
    const counts = ov.dead_letters.map((d) => `${d.queue}:${d.count}`).join(',');
    const age = Date.now() - dlFetched;
    const due = dlForce || (counts !== dlCounts && age >= 3000) || age >= 15000;
    if (due) { dlCounts = counts; dlForce = false; }
    return due;
  }
  async function refreshDeadLetters() {
    if (dlBusy) { dlAgain = true; return; }
    dlBusy = true;
    dlFetched = Date.now();
    try {
      do {
        dlAgain = false;
        const q = new URLSearchParams({ order: 'newest', limit: String(DL_LIMIT) });
        for (const k of ['function', 'queue', 'reason']) {
          const v = $('#dl-' + k).value.trim();
          if (v) q.set(k, v);
        }
        if (dlPage) q.set(...Object.entries(dlPage)[0]);
        const data = await api('GET', '/api/v1/deadletters?' + q);
        if (dlPage && dlPage.after && !data.newer) {
          // Paged back up to the newest letters: show them live, a full
          // page.
          dlPage = null;
          dlAgain = true;
          continue;
        }
        letters = data.dead_letters || [];
        dlCursors = { older: data.older || '', newer: data.newer || '' };
        renderLetters();
        renderPager();
      } while (dlAgain);
    } finally {
      dlBusy = false;
    }
  }

  function renderPager() {
    $('#dl-older').disabled = !dlCursors.older;
    $('#dl-newer').disabled = !dlPage;
    const n = letters.length;
    $('#dl-page').textContent = !dlPage
      ? (n ? `The newest ${fmtNum(n)}, newest first.` : '')
      : `${fmtNum(n)} older dead letter${n === 1 ? '' : 's'}, newest first.`;
    $('#dl-pager').dataset.page = dlPage ? 'older' : 'newest';
  }

  // page goes to older or newer letters; paging newer past the newest
  // shows the newest.
  function pageDeadLetters(dir) {
    const cursor = dir === 'older' ? dlCursors.older : dlCursors.newer;
    if (dir === 'older' && !cursor) return;
    dlPage = !cursor ? null : dir === 'older' ? { before: cursor } : { after: cursor };
    selected.clear();
    refreshDeadLetters().catch(actionError);
  }

  function renderLetters() {
    const keys = new Set(letters.map((l) => `${l.dead_letter_queue}/${l.id}`));
    for (const k of selected) if (!keys.has(k)) selected.delete(k);
    syncRows($('#dl-table tbody'), letters, (l) => `${l.dead_letter_queue}/${l.id}`, (l) => {
      const key = `${l.dead_letter_queue}/${l.id}`;
      return [
        (td, isNew) => {
          if (isNew || !td.firstChild) {
            const box = el('input', { type: 'checkbox', 'aria-label': `Select dead letter ${l.id} of ${l.dead_letter_queue}` });
            box.addEventListener('change', () => { if (box.checked) selected.add(key); else selected.delete(key); updateSelection(); });
            td.replaceChildren(box);
          }
          td.firstChild.checked = selected.has(key);
        },
        (td, isNew) => {
          if (isNew || !td.firstChild) {
            td.replaceChildren(el('button', { type: 'button', class: 'link', onclick: () => openLetter(l.dead_letter_queue, l.id) },
              `${l.dead_letter_queue} #${l.id}`));
          }
          td.dataset.col = 'id';
        },
        txt(l.function, 'function'), txt(describeSource(l.source), 'source'),
        { text: l.reason, cls: 'wrap', col: 'reason' }, num(l.attempts, 'attempts'),
        { text: fmtTime(l.last_failure), col: 'last-failure', cls: 'time', title: fullTime(l.last_failure) },
      ];
    }, 'No dead letters match.', 7);
    updateSelection();
  }

  function updateSelection() {
    const n = selected.size;
    $('#dl-selected').textContent = n ? `${fmtNum(n)} selected` : '';
    $('#dl-redrive').disabled = n === 0;
    $('#dl-purge').disabled = n === 0;
    const all = $('#dl-all');
    all.checked = letters.length > 0 && n === letters.length;
    all.indeterminate = n > 0 && n < letters.length;
    if (n === 0) disarm($('#dl-purge'));
  }

  // byQueue groups "queue/id" keys into the requests' {queue, ids}.
  function byQueue(keys) {
    const m = new Map();
    for (const k of keys) {
      const i = k.lastIndexOf('/');
      const q = k.slice(0, i);
      if (!m.has(q)) m.set(q, []);
      m.get(q).push(Number(k.slice(i + 1)));
    }
    return [...m].map(([queue, ids]) => ({ queue, ids }));
  }

  async function act(what, keys) {
    let done = 0;
    try {
      for (const sel of byQueue(keys)) {
        const res = await api('POST', `/api/v1/deadletters/${what}`, sel);
        done += (what === 'redrive' ? res.redriven : res.purged) || 0;
      }
      actionError(null);
      status(what === 'redrive'
        ? `Redrove ${fmtNum(done)} dead letter${done === 1 ? '' : 's'} to ${done === 1 ? 'its source' : 'their sources'}.`
        : `Purged ${fmtNum(done)} dead letter${done === 1 ? '' : 's'}.`);
    } catch (e) {
      actionError(e);
    }
    for (const k of keys) selected.delete(k);
    if (detail && keys.includes(`${detail.queue}/${detail.id}`)) closeLetter();
    dlForce = true;
    poll();
  }

  // Purging asks for a second click, within a few seconds.
  function arm(button, label) {
    button.dataset.label = button.dataset.label || button.textContent;
    button.textContent = label;
    button.classList.add('confirm');
    clearTimeout(button._disarm);
    button._disarm = setTimeout(() => disarm(button), 5000);
  }
  function disarm(button) {
    if (!button.dataset.label) return;
    button.textContent = button.dataset.label;
    delete button.dataset.label;
    button.classList.remove('confirm');
    clearTimeout(button._disarm);
  }
  const armed = (button) => !!button.dataset.label;

  // openLetter shows a letter's details (and moves the focus there, unless
  // focus is false: shown again).
  async function openLetter(queue, id, focus = true) {
    try {
      const l = await api('GET', `/api/v1/deadletters/${enc(queue)}/${enc(id)}`);
      actionError(null);
      detail = { queue, id };
      const props = Object.entries(l.properties || {}).filter(([k]) => k !== 'sluice.dead_letter');
      const fields = [
        ['Queue', `${l.dead_letter_queue} #${l.id}`], ['Function', l.function], ['Reason', l.reason],
        ['Source', describeSource(l.source)], ['Attempts', fmtNum(l.attempts)],
        ['First failure', fmtTime(l.first_failure)], ['Last failure', fmtTime(l.last_failure)],
        ['Redriven before', fmtNum(l.redriven || 0)],
        ['Properties', props.length ? props.map(([k, v]) => `${k}=${v}`).join('\n') : 'none'],
      ];
      if (l.source && l.source.partition_key) fields.push(['Partition key', l.source.partition_key]);
      if (l.state) fields.push(['State', JSON.stringify(l.state, null, 2)]);
      $('#dl-detail-h').textContent = `Dead letter ${l.dead_letter_queue} #${l.id}`;
      $('#dl-detail-fields').replaceChildren(...fields.flatMap(([k, v]) => [el('dt', null, k), el('dd', { class: k === 'Properties' || k === 'State' ? 'mono' : null }, v)]));
      let body;
      if (l.body_text != null) {
        body = l.body_text;
        try { body = JSON.stringify(JSON.parse(body), null, 2); } catch { /* not JSON: as is */ }
      } else {
        const raw = atob(l.body || '');
        body = `(binary, ${fmtNum(raw.length)} bytes, base64)\n${l.body || ''}`;
      }
      $('#dl-detail-body').textContent = body;
      disarm($('#dl-detail-purge'));
      const box = $('#dl-detail');
      box.hidden = false;
      if (focus) box.focus();
    } catch (e) {
      actionError(e);
    }
  }
  function closeLetter() {
    detail = null;
    $('#dl-detail').hidden = true;
  }

  // ---- containers -----------------------------------------------------

  function renderContainers(ov) {
    syncRows($('#containers-table tbody'), ov.containers, (c) => c.name, (c) => {
      const r = rate((o) => o.ctr.get(c.name)?.last_lsn);
      return [
        nameCell(c.name, c.error), { text: c.partition_key_path, cls: 'mono', col: 'pk' },
        c.documents == null ? txt('—', 'documents') : num(c.documents, 'documents'),
        { text: fmtRate(r), value: r, cls: 'num', col: 'writes' }, num(c.last_lsn, 'lsn'),
        (td, isNew) => {
          if (isNew || !td.firstChild) {
            td.replaceChildren(el('button', { type: 'button', class: 'small', 'aria-label': `Browse the documents of ${c.name}`,
              onclick: () => browse(c.name) }, 'Browse'));
          }
        },
      ];
    }, 'No containers.', 6);
    setOptions($('#viewer-container'), ov.containers.map((c) => c.name));
  }

  function browse(name) {
    $('#viewer').hidden = false;
    const sel = $('#viewer-container');
    if (![...sel.options].some((o) => o.value === name)) sel.append(el('option', { value: name }, name));
    sel.value = name;
    $('#viewer-query').value = '';
    latest();
    $('#viewer-h').scrollIntoView({ block: 'start', behavior: 'smooth' });
  }

  async function latest() {
    const name = $('#viewer-container').value;
    if (!name) return;
    const c = last && last.ctr.get(name);
    const after = Math.max(0, (c ? c.last_lsn : 0) - 25);
    try {
      const data = await api('GET', `/api/v1/containers/${enc(name)}/feed?after=${after}&limit=25`);
      actionError(null);
      showDocs(name, (data.changes || []).slice().reverse(), `the latest changes of ${name}`);
    } catch (e) {
      actionError(e);
    }
  }

  async function runQuery() {
    const name = $('#viewer-container').value;
    const query = $('#viewer-query').value.trim();
    if (!name) return;
    if (!query) { latest(); return; }
    try {
      const page = await api('POST', `/api/v1/containers/${enc(name)}/query`, { query, max_items: 50 });
      actionError(null);
      const n = (page.documents || []).length;
      showDocs(name, page.documents || [], `${fmtNum(n)} result${n === 1 ? '' : 's'} of the query` + (page.continuation ? ' (the first page; more exist)' : ''));
    } catch (e) {
      actionError(e);
    }
  }

  let shownDocs = null; // the arguments of showDocs, to show them again
  function showDocs(name, docs, what) {
    shownDocs = [name, docs, what];
    $('#viewer-h').textContent = `Documents: ${what}`;
    $('#viewer-doc').hidden = true;
    const tbody = $('#viewer-table tbody');
    tbody._rows = null;
    tbody.replaceChildren();
    syncRows(tbody, docs, (d) => `${d.partition_key}\u0000${d.id}`, (d) => [
      (td) => td.replaceChildren(el('button', { type: 'button', class: 'link', onclick: () => showDoc(d) }, d.id)),
      { text: d.partition_key, cls: 'mono' }, fmtTime(d.ts) + (d.deleted ? ' (deleted)' : ''), num(d.lsn),
    ], 'No documents.', 4);
  }

  function showDoc(d) {
    const pre = $('#viewer-doc');
    let text = '(deleted: the change feed keeps a tombstone)';
    if (!d.deleted) text = JSON.stringify(d.body, null, 2);
    pre.textContent = text;
    pre.hidden = false;
    pre.focus();
  }

  // ---- polling --------------------------------------------------------

  let paused = false;
  let timer = null;
  let running = false;
  let again = false; // poll asked for while one runs: poll once it is done
  let updated = null; // when the last answer came

  // poll asks for the overview now (on load too, without waiting for a
  // period), then every POLL_MS. Asked for while a poll runs (after an
  // action), it polls again as soon as that one is done.
  async function poll() {
    clearTimeout(timer);
    if (running) { again = true; return; }
    again = false;
    if (paused || needKey || document.hidden) return;
    running = true;
    const dot = $('#live-dot');
    try {
      const ov = await api('GET', '/api/v1/overview');
      render(ov);
      try {
        await refreshPipelines();
        errors.pipelines = '';
      } catch (e) {
        if (e.needsKey) throw e;
        errors.pipelines = 'Pipelines could not be read: ' + e.message;
      }
      errors.poll = '';
      if (deadLettersDue(ov)) await refreshDeadLetters();
      dot.className = 'dot ok';
      updated = new Date();
      showUpdated();
    } catch (e) {
      // Without a key, the key form says what is wrong, and polling
      // resumes once a key is entered.
      errors.poll = e.needsKey ? '' : e.message;
      dot.className = 'dot bad';
    } finally {
      running = false;
      showErrors();
      if (again) poll();
      else if (!paused && !needKey) timer = setTimeout(poll, POLL_MS);
    }
  }

  function showUpdated() {
    if (updated && !paused && !needKey) $('#updated').textContent = 'updated ' + isoTime(updated);
  }

  // rerender shows what is shown again (times in the other zone).
  function rerender() {
    if (last) renderOverview(last);
    renderLetters();
    showUpdated();
    if (shownDocs) {
      const doc = $('#viewer-doc');
      const open = !doc.hidden;
      showDocs(...shownDocs);
      doc.hidden = !open;
    }
    if (detail) openLetter(detail.queue, detail.id, false);
  }

  function setPaused(p) {
    paused = p;
    const b = $('#pause');
    b.textContent = p ? 'Resume' : 'Pause';
    b.setAttribute('aria-pressed', String(p));
    if (p) {
      clearTimeout(timer);
      $('#live-dot').className = 'dot paused';
      $('#updated').textContent = 'paused';
    } else {
      poll();
    }
  }

  function init() {
    loadKey();
    loadZone();
    $('#tz').addEventListener('click', () => setZone(!utc));
    $('#dl-older').addEventListener('click', () => pageDeadLetters('older'));
    $('#dl-newer').addEventListener('click', () => pageDeadLetters('newer'));
    $('#key-form').addEventListener('submit', useKey);
    $('#key-forget').addEventListener('click', forgetKey);
    $('#pause').addEventListener('click', () => setPaused(!paused));
    document.addEventListener('visibilitychange', () => { if (!document.hidden && !paused) poll(); });
    const dlChanged = () => { selected.clear(); dlPage = null; refreshDeadLetters().catch(actionError); };
    $('#dl-function').addEventListener('change', dlChanged);
    $('#dl-queue').addEventListener('change', dlChanged);
    let typing;
    $('#dl-reason').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(dlChanged, 300); });
    $('#dl-filter').addEventListener('submit', (e) => { e.preventDefault(); dlChanged(); });
    $('#dl-all').addEventListener('change', (e) => {
      for (const l of letters) {
        const k = `${l.dead_letter_queue}/${l.id}`;
        if (e.target.checked) selected.add(k); else selected.delete(k);
      }
      renderLetters();
    });
    $('#dl-redrive').addEventListener('click', () => act('redrive', [...selected]));
    $('#dl-purge').addEventListener('click', (e) => {
      const b = e.currentTarget;
      if (!armed(b)) { arm(b, `Confirm: purge ${fmtNum(selected.size)}`); return; }
      disarm(b);
      act('purge', [...selected]);
    });
    $('#dl-detail-redrive').addEventListener('click', () => detail && act('redrive', [`${detail.queue}/${detail.id}`]));
    $('#dl-detail-purge').addEventListener('click', (e) => {
      const b = e.currentTarget;
      if (!armed(b)) { arm(b, 'Confirm: purge'); return; }
      disarm(b);
      if (detail) act('purge', [`${detail.queue}/${detail.id}`]);
    });
    $('#dl-detail-close').addEventListener('click', closeLetter);
    $('#partner-detail-close').addEventListener('click', closePartner);
    $('#partner-retry').addEventListener('click', () => partnerDeliveries('retry'));
    $('#partner-cancel').addEventListener('click', (e) => {
      const b = e.currentTarget;
      if (!armed(b)) { arm(b, 'Confirm: cancel them'); return; }
      disarm(b);
      partnerDeliveries('cancel');
    });
    $('#viewer-form').addEventListener('submit', (e) => { e.preventDefault(); runQuery(); });
    $('#viewer-latest').addEventListener('click', () => { $('#viewer-query').value = ''; latest(); });
    $('#viewer-container').addEventListener('change', () => { $('#viewer-query').value = ''; latest(); });
    poll();
  }

  init();
})();
