// An attacker's page. It reads the requests to try from requests.json
// beside it, then sends each one to the Sluice server at ?target= (another
// origin; or its own, after DNS rebinding) in every way a page can without
// the server's consent:
//
//   - fetch in no-cors mode (simple methods only: the browser refuses
//     others) and in cors mode with a text/plain body, which the browser
//     sends without asking the server first;
//   - fetch in cors mode with a JSON body, as a client would, which the
//     browser preflights (OPTIONS) and sends only if the server agrees
//     (to its own origin, it sends it at once);
//   - a hidden <form> posted into a hidden iframe, with text/plain (its
//     body made to be the JSON request), urlencoded and multipart bodies;
//   - navigator.sendBeacon with a text, an urlencoded and a JSON body.
//
// Fetches are awaited; forms and beacons are not (a 204 answer never loads
// a frame, and a beacon has no answer): the page counts them, and the test
// watches the browser's network events until they are done. When all is
// sent, window.attackDone holds the counts and the title is "attack sent".
'use strict';
(async () => {
  const target = new URLSearchParams(location.search).get('target');
  if (!target) throw new Error('no ?target=');
  const requests = await (await fetch('requests.json')).json();
  const log = (window.attackLog = []);
  let forms = 0;
  let beacons = 0;

  // members are a JSON object's top-level members as form fields.
  function members(body) {
    try {
      const v = JSON.parse(body);
      if (v && typeof v === 'object' && !Array.isArray(v)) {
        return Object.entries(v).map(([k, x]) => [k, typeof x === 'string' ? x : JSON.stringify(x)]);
      }
    } catch { /* not an object */ }
    return body ? [['body', body]] : [];
  }

  // textPlainFields makes a text/plain form whose body is body, give or
  // take one '=' that the encoding puts between a field's name and value:
  // a body ending with a string member gets it at the end of that string.
  function textPlainFields(body) {
    if (body.endsWith('"}')) return [[body.slice(0, -2), '"}']];
    return body ? [[body, '']] : [];
  }

  function post(url, enctype, fields) {
    const name = `frame-${++forms}`;
    const frame = document.createElement('iframe');
    frame.name = name;
    frame.hidden = true;
    document.body.append(frame);
    const form = document.createElement('form');
    form.method = 'POST';
    form.action = url;
    form.enctype = enctype;
    form.target = name;
    form.hidden = true;
    for (const [k, v] of fields) {
      const input = document.createElement('input');
      input.type = 'hidden';
      input.name = k;
      input.value = v;
      form.append(input);
    }
    document.body.append(form);
    form.submit();
  }

  let i = 0;
  for (const r of requests) {
    i++;
    document.getElementById('progress').textContent = `${i} of ${requests.length}: ${r.method} ${r.path}`;
    const url = target + r.path;
    const body = r.body || undefined;
    const note = (vector, outcome) => log.push({ route: r.name, method: r.method, path: r.path, vector, outcome });
    const attempts = [
      ['fetch no-cors', { mode: 'no-cors' }],
      ['fetch cors text', { mode: 'cors' }],
      ['fetch cors json', { mode: 'cors', headers: { 'Content-Type': 'application/json' } }],
    ];
    for (const [vector, opt] of attempts) {
      try {
        const res = await fetch(url, { method: r.method, body, credentials: 'include', cache: 'no-store', ...opt });
        note(vector, `${res.type} ${res.status}`);
      } catch (e) {
        note(vector, `refused by the browser: ${e.message}`);
      }
    }
    if (r.method !== 'POST') continue; // forms and beacons only POST

    post(url, 'text/plain', textPlainFields(r.body || ''));
    post(url, 'application/x-www-form-urlencoded', members(r.body || ''));
    post(url, 'multipart/form-data', members(r.body || ''));
    note('forms', 'posted');

    const beaconBodies = [
      ['beacon text', r.body || ''],
      ['beacon urlencoded', new URLSearchParams(members(r.body || ''))],
      ['beacon json', new Blob([r.body || ''], { type: 'application/json' })],
    ];
    for (const [vector, data] of beaconBodies) {
      try {
        if (navigator.sendBeacon(url, data)) {
          beacons++;
          note(vector, 'queued');
        } else {
          note(vector, 'not queued');
        }
      } catch (e) {
        note(vector, `refused by the browser: ${e.message}`);
      }
    }
  }
  window.attackDone = { requests: requests.length, forms, beacons };
  document.title = 'attack sent';
})().catch((e) => {
  window.attackFailed = String(e && e.stack || e);
  document.title = 'attack failed';
});
