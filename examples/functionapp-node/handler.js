'use strict';
// Custom handler of the functionapp-node example: an HTTP server, written
// with Node's built-in http module only, that speaks the Azure Functions
// custom-handler protocol. Sluice (or the Azure Functions host) starts it
// as `node handler.js` with FUNCTIONS_CUSTOMHANDLER_PORT set, waits until
// GET / answers, then POSTs each invocation of function F to /F as
// {"Data": {...}, "Metadata": {...}} and reads {"Outputs": {...},
// "Logs": [...]} back. A status outside 2xx fails the invocation.
//
// host.json sets enableForwardingHttpRequest, so the HTTP-only function
// `device` is not invoked through the protocol: its requests are forwarded
// as they are (GET /api/devices/{id}) and answered directly.

const http = require('node:http');

const port = Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT);
if (!port) {
  console.error('FUNCTIONS_CUSTOMHANDLER_PORT is not set: this program is started by Sluice (sluice dev --app DIR) or by the Azure Functions host');
  process.exit(2);
}
// Sluice gives its handler the address of its own HTTP API, whatever port
// it listens on.
const apiBase = process.env.SLUICE_API || '';

const LOW_BATTERY = 10; // percent; below it ingest queues an alert
const MAX_READINGS = 1000; // per submit request
const DEVICE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// ---------------------------------------------------------------------
// Azure's encodings. The Azure Functions host (and Sluice in its default
// "compat" payload mode) sends:
//
//   Data.events (eventHubTrigger, cardinality many)
//       a JSON string holding a JSON array of strings, each one event's
//       body text
//   Metadata.EnqueuedTimeUtcArray
//       a JSON string holding the JSON array
//   Data.message (queueTrigger)
//       a JSON string holding a JSON string: the message's text, which is
//       JSON here (so three JSON.parse calls from the request's text)
//   Metadata.DequeueCount
//       a JSON string holding the number: "1"
//   Metadata.Id
//       a JSON string holding a JSON string
//   Data.req (httpTrigger), Data.tick (timerTrigger), Metadata.sys
//       plain objects; Data.req.Body is the request body's text
//
// With `sluice dev --payload clean` the same keys hold natural JSON. Every
// helper below accepts both.

// unwrap parses v while it is a string holding JSON, at most `times`
// times: what a compat value needs to become the value itself.
function unwrap(v, times) {
  for (let i = 0; i < times && typeof v === 'string'; i++) {
    try {
      v = JSON.parse(v);
    } catch {
      break; // text, not JSON
    }
  }
  return v;
}

// metadataText reads a string metadata value: compat sends it as a JSON
// string holding the JSON string, clean as the string.
function metadataText(v) {
  return typeof v === 'string' && v.startsWith('"') ? JSON.parse(v) : v;
}

// eventBodies returns the bodies of an event batch, each parsed as JSON,
// or {invalid: message} for a body that is not JSON.
function eventBodies(v) {
  const items = unwrap(v, 1);
  if (!Array.isArray(items)) {
    throw new Error('Data.events is not an array (or a string holding one)');
  }
  return items.map((it) => {
    if (typeof it !== 'string') {
      return it; // clean: the body is JSON
    }
    try {
      return JSON.parse(it); // compat: the body's text
    } catch (err) {
      return { invalid: `not JSON: ${err.message}` };
    }
  });
}

// requestJSON returns an HTTP trigger's body as JSON: compat sends its
// text; clean sends a JSON body as JSON.
function requestJSON(req) {
  const body = req.Body;
  if (body === undefined || body === null || body === '') {
    throw new Error('the request has no body');
  }
  if (typeof body !== 'string') {
    return body;
  }
  try {
    return JSON.parse(body);
  } catch (err) {
    throw new Error(`the request body is not JSON: ${err.message}`);
  }
}

// ---------------------------------------------------------------------
// Readings and devices.

// checkReading returns why r is not a reading, or '' when it is one.
function checkReading(r) {
  if (r === null || typeof r !== 'object' || Array.isArray(r)) {
    return 'a reading is {"deviceId": "d1", "temperature": 21.5, "battery": 80, "time": "2026-11-21T09:00:00Z"}';
  }
  if (r.invalid) {
    return r.invalid;
  }
  if (typeof r.deviceId !== 'string' || !DEVICE_ID.test(r.deviceId)) {
    return `deviceId ${JSON.stringify(r.deviceId)}: give 1 to 64 letters, digits, '-' or '_'`;
  }
  if (typeof r.temperature !== 'number') {
    return 'temperature: missing';
  }
  if (typeof r.battery !== 'number' || r.battery < 0 || r.battery > 100) {
    return 'battery: give a percentage from 0 to 100';
  }
  if (r.time !== undefined && (typeof r.time !== 'string' || !RFC3339.test(r.time) || Number.isNaN(Date.parse(r.time)))) {
    return `time ${JSON.stringify(r.time)}: write RFC 3339, like 2026-11-21T09:00:00Z`;
  }
  return '';
}

// device is the document kept for each device in the devices container.
function device(r) {
  return {
    id: r.deviceId,
    deviceId: r.deviceId, // the partition key, /deviceId
    temperature: r.temperature,
    battery: r.battery,
    time: r.time,
    status: r.battery < LOW_BATTERY ? 'low-battery' : 'ok',
  };
}

// ---------------------------------------------------------------------
// The Sluice HTTP API. Sluice does not support cosmosDB input bindings yet,
// so the functions that read documents ask the platform directly, as an
// Azure handler would use the Cosmos DB SDK.

function api(method, path, body) {
  return new Promise((resolve, reject) => {
    if (!apiBase) {
      reject(new Error('the app setting SLUICE_API, the URL of the Sluice API, is not set: Sluice sets it for the handlers it runs (sluice dev --app DIR); elsewhere, set it'));
      return;
    }
    const data = body === undefined ? undefined : JSON.stringify(body);
    const headers = data === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) };
    const req = http.request(new URL(path, apiBase), { method, headers, timeout: 10000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', (err) => reject(new Error(`the Sluice API (SLUICE_API=${apiBase}) is not answering: ${err.message}`)));
    req.end(data);
  });
}

function withoutSystemFields(doc) {
  const { _etag, _ts, _lsn, ...rest } = doc;
  return rest;
}

// readDocument returns a document without its system fields, or null
// when it (or its container) does not exist.
async function readDocument(container, pk, id) {
  const path = `/api/v1/containers/${encodeURIComponent(container)}/docs/${encodeURIComponent(pk)}/${encodeURIComponent(id)}`;
  const res = await api('GET', path);
  if (res.status === 404) {
    return null;
  }
  if (res.status !== 200) {
    throw new Error(`GET ${path}: ${res.status}: ${res.text.trim()}`);
  }
  return withoutSystemFields(JSON.parse(res.text));
}

// queryAll returns the bodies of every document a query finds, following
// the continuation tokens of the pages.
async function queryAll(container, query) {
  const path = `/api/v1/containers/${encodeURIComponent(container)}/query`;
  const out = [];
  let continuation = '';
  do {
    const res = await api('POST', path, { query, max_items: 1000, continuation });
    if (res.status !== 200) {
      throw new Error(`POST ${path}: ${res.status}: ${res.text.trim()}`);
    }
    const page = JSON.parse(res.text);
    for (const d of page.documents) {
      out.push(d.body);
    }
    continuation = page.continuation || '';
  } while (continuation);
  return out;
}

// ---------------------------------------------------------------------
// The functions: each takes the invocation and returns
// {Outputs: {<binding name>: value}, Logs: [...]}.

function httpOutput(statusCode, body) {
  return { statusCode, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) };
}

function httpError(statusCode, message) {
  return { Outputs: { res: httpOutput(statusCode, { error: message }) } };
}

// submit (httpTrigger POST /api/submit) checks one reading or an array of
// them and sends each as an event to the telemetry hub (eventHub output
// "telemetry"). All readings of one request go to the same partition, in
// order.
function submit(inv) {
  let body;
  try {
    body = requestJSON(inv.Data.req);
  } catch (err) {
    return httpError(400, `${err.message}; send a reading or an array of them as JSON`);
  }
  const readings = Array.isArray(body) ? body : [body];
  if (readings.length === 0 || readings.length > MAX_READINGS) {
    return httpError(400, `send 1 to ${MAX_READINGS} readings, not ${readings.length}`);
  }
  for (const [i, r] of readings.entries()) {
    const problem = checkReading(r);
    if (problem) {
      return httpError(400, `reading ${i}: ${problem}`);
    }
  }
  return { Outputs: { telemetry: readings, res: httpOutput(202, { accepted: readings.length }) } };
}

// utcTime makes an enqueued time RFC 3339: the Azure host writes them as
// .NET writes a UTC DateTime, without a zone ("2026-11-21T09:00:00.25"),
// which Date.parse would read as local time.
function utcTime(t) {
  return /(Z|[+-]\d{2}:\d{2})$/.test(t) ? t : t + 'Z';
}

// ingest (eventHubTrigger on telemetry, cardinality many) decodes a batch
// of readings, upserts each device's newest one into the devices container
// (cosmosDB output "devices"), and queues an alert for each reading with a
// low battery (queue output "alerts"). Readings that cannot be decoded are
// logged and skipped: failing the function would only deliver the same
// batch again.
function ingest(inv) {
  const bodies = eventBodies(inv.Data.events);
  const enqueued = unwrap(inv.Metadata.EnqueuedTimeUtcArray, 1);
  const sequences = unwrap(inv.Metadata.SequenceNumberArray, 1);
  const partition = inv.Metadata.PartitionContext.PartitionId;
  if (!Array.isArray(enqueued) || enqueued.length !== bodies.length) {
    throw new Error(`Metadata.EnqueuedTimeUtcArray does not have a time for each of the ${bodies.length} events`);
  }
  const logs = [];
  const latest = new Map(); // device id -> document, in the order first seen
  const alerts = [];
  bodies.forEach((r, i) => {
    const problem = checkReading(r);
    if (problem) {
      logs.push(`partition ${partition}, sequence number ${sequences[i]}: skipped: ${problem}`);
      return;
    }
    const d = device({ ...r, time: r.time || utcTime(enqueued[i]) });
    const cur = latest.get(d.id);
    if (!cur || Date.parse(d.time) >= Date.parse(cur.time)) {
      latest.set(d.id, d);
    }
    if (d.battery < LOW_BATTERY) {
      alerts.push({ deviceId: d.deviceId, battery: d.battery, time: d.time });
    }
  });
  logs.push(`partition ${partition}: ${bodies.length} events, ${latest.size} devices updated, ${alerts.length} alerts`);
  return { Outputs: { devices: [...latest.values()], alerts }, Logs: logs };
}

// alert (queueTrigger on alerts) records each alert in the alerts
// container (cosmosDB output "alert"), where an operator (or a test) finds
// it. A real app would page someone here.
function alert(inv) {
  const a = unwrap(inv.Data.message, 2);
  const dequeueCount = unwrap(inv.Metadata.DequeueCount, 1);
  const messageId = metadataText(inv.Metadata.Id);
  if (a === null || typeof a !== 'object' || typeof a.deviceId !== 'string') {
    throw new Error(`message ${messageId} is not an alert: ${JSON.stringify(a)}`);
  }
  const doc = {
    id: `${a.deviceId}@${a.time}`,
    deviceId: a.deviceId, // the partition key, /deviceId
    battery: a.battery,
    time: a.time,
    message: `battery at ${a.battery}%`,
    dequeueCount,
  };
  return { Outputs: { alert: doc }, Logs: [`device ${a.deviceId}: battery at ${a.battery}% (message ${messageId}, delivery ${dequeueCount})`] };
}

// report (timerTrigger, every 10 seconds) summarises the devices container
// into the document "latest" of the reports container (cosmosDB output
// "summary").
async function report(inv) {
  const devices = await queryAll('devices', 'SELECT * FROM c');
  const summary = { id: 'latest', kind: 'summary', devices: devices.length, lowBattery: [], hottest: null, generatedAt: inv.Metadata.sys.UtcNow };
  for (const d of devices) {
    if (d.battery < LOW_BATTERY) {
      summary.lowBattery.push(d.deviceId);
    }
    if (summary.hottest === null || d.temperature > summary.hottest.temperature) {
      summary.hottest = { deviceId: d.deviceId, temperature: d.temperature };
    }
  }
  summary.lowBattery.sort();
  let line = `${summary.devices} devices, ${summary.lowBattery.length} with a low battery`;
  if (inv.Data.tick.IsPastDue) {
    line += ' (this tick is late)';
  }
  return { Outputs: { summary }, Logs: [line] };
}

const functions = new Map([['submit', submit], ['ingest', ingest], ['alert', alert], ['report', report]]);

// device (httpTrigger GET /api/devices/{id}), forwarded as is: the
// device's document, read through the Sluice API.
async function deviceRoute(id, res) {
  if (!DEVICE_ID.test(id)) {
    return send(res, 400, { error: `${JSON.stringify(id)} is not a device id` });
  }
  let doc;
  try {
    doc = await readDocument('devices', id, id);
  } catch (err) {
    return send(res, 502, { error: err.message });
  }
  if (doc === null) {
    return send(res, 404, { error: `device ${id} has sent no reading` });
  }
  return send(res, 200, doc);
}

// ---------------------------------------------------------------------
// The server.

function send(res, status, body) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

const server = http.createServer(async (req, res) => {
  const path = new URL(req.url, 'http://handler').pathname;
  try {
    if (req.method === 'GET' && path === '/') {
      return send(res, 200); // Sluice waits until GET / answers
    }
    const m = /^\/api\/devices\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && m) {
      return await deviceRoute(decodeURIComponent(m[1]), res);
    }
    const fn = req.method === 'POST' && functions.get(path.slice(1));
    if (!fn) {
      return send(res, 404, { error: `no function at ${req.method} ${path}` });
    }
    const inv = JSON.parse(await readBody(req));
    return send(res, 200, await fn(inv));
  } catch (err) {
    // The invocation fails; Sluice retries it as its trigger does.
    console.error(`${path}: ${err.stack || err}`);
    res.writeHead(500, { 'Content-Type': 'text/plain' });
    res.end(`${path}: ${err.message || err}`);
  }
});

server.listen(port, '127.0.0.1');

// Sluice stops the handler with SIGTERM: finish the invocations in flight,
// then exit.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
