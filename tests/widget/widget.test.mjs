// End-to-end test of the public map widget (/widget and /widget/embed.js)
// in a real headless Chromium, against a running ketnoi server.
//
// Run by tests/api/widget.rs, which starts the server on a seeded database
// and computes the case from the database. By hand:
//
//   npm ci --prefix widget
//   KETNOI_URL=http://127.0.0.1:8080 KETNOI_WIDGET_CASE=case.json \
//   KETNOI_ARTIFACTS=target/test-artifacts/widget node --test tests/widget/widget.test.mjs
//
// Environment:
//   KETNOI_URL          the server's base URL (required)
//   KETNOI_WIDGET_CASE  the case, as JSON or as the path of a JSON file (required):
//     {
//       "bbox": [minLon, minLat, maxLon, maxLat],  a view where every service is its own marker
//       "services": ["<service id>", ...],         service ids with a public point in (and around) it
//       "category": "<code>",                       a category to filter by
//       "category_services": ["<service id>", ...], the ids of that category there
//       "listed": n,                                services at a location in the whole directory,
//                                                   all inside the widget's first view
//       "category_listed": n,                       the same, of "category" only
//       "confidential": [{"location_id": "<id>", "lon": x, "lat": y, "address": "...",
//                         "listed": true|false}]
//                                                   every confidential location, exactly;
//                                                   listed: not archived and with an
//                                                   active service, so on the map
//     }
//
// What "never shown exactly" means here: a confidential location's own
// marker or feature is marked approximate and is at least
// CONFIDENTIAL_RADIUS_DEG from its exact point (the API rounds it to 0.1°);
// no coordinates anywhere equal an exact point; no text contains its
// address. (Other, public locations may well be near a shelter: an
// organisation's office often is.)
//   KETNOI_ARTIFACTS    where screenshots go (default: a new temporary folder)
//   KETNOI_CHROMIUM     the browser (default /usr/bin/chromium)
//
// Steps share one browser and run in order. Nothing is timed: every wait is
// for a condition, with a generous timeout.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

// playwright-core lives in widget/node_modules (npm ci --prefix widget).
const require = createRequire(new URL('../../widget/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const BASE = required('KETNOI_URL').replace(/\/+$/, '');
const CASE = readCase(required('KETNOI_WIDGET_CASE'));
const ARTIFACTS = process.env.KETNOI_ARTIFACTS
  || fs.mkdtempSync(path.join(os.tmpdir(), 'ketnoi-widget-'));
const CHROMIUM = process.env.KETNOI_CHROMIUM || '/usr/bin/chromium';

/** Generous: a cold, software-rendered WebGL map on a busy CI machine. */
const WAIT_MS = 90_000;
/** A confidential location shown this close to its exact point is given away. */
const CONFIDENTIAL_RADIUS_DEG = 0.01;
/** Coordinates this close to an exact point are that point. */
const SAME_POINT_DEG = 1e-6;
/** A confidential location's public point is its point snapped to a 0.1° grid: within 0.05° on each axis. */
const APPROXIMATE_MAX_DEG = 0.05;
/** Below this zoom the widget shows the server's clusters; from it, the services (widget.js POINTS_MIN_ZOOM). */
const POINTS_MIN_ZOOM = 12;
/** "Near me" centres the map on the position snapped to this grid (widget.js NEAR_ME_GRID_DEG). */
const NEAR_ME_GRID_DEG = 0.05;
const EMBED_ORIGIN = 'http://embed.test';
/** Lào Cai city, zoomed in far enough for ward names (widget.js WARD_LABELS_MIN_ZOOM is 10). */
const LAO_CAI = { center: [103.97, 22.49], zoom: 11 };
/** A ward in that view, as the reference data names it. */
const LAO_CAI_WARD = { code: '02647', vi: 'Phường Lào Cai', en: 'Lao Cai Ward' };
/** The coverage view checked: a category, and the group's profile band (widget.js GROUPS). */
const COVERAGE = {
  category: 'legal_aid',
  group: 'girls',
  query: { category: 'legal_aid', radius_km: '30', gender: 'female', max_age: '17' },
};
const BAND_LABELS = {
  vi: ['≤ 5 km', '≤ 15 km', '≤ 30 km', '≤ 60 km', 'Trên 60 km'],
  en: ['≤ 5 km', '≤ 15 km', '≤ 30 km', '≤ 60 km', '> 60 km'],
};

const BBOX = CASE.bbox.join(',');

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see the top of ${import.meta.url})`);
  return value;
}

function readCase(value) {
  const text = value.trim().startsWith('{') ? value : fs.readFileSync(value, 'utf8');
  const parsed = JSON.parse(text);
  for (const key of ['bbox', 'services', 'category', 'category_services', 'listed', 'category_listed', 'confidential']) {
    assert.ok(key in parsed, `KETNOI_WIDGET_CASE has no "${key}"`);
  }
  assert.ok(parsed.services.length > 0, 'the case expects no services: the test would prove nothing');
  assert.ok(parsed.confidential.length > 0, 'the case has no confidential location to check');
  return parsed;
}

// --- Browser, pages and what they report -------------------------------------------------

let browser;
/** Everything that went wrong in any page: console errors, page errors, failed requests. */
const problems = [];
/** Pending checks of /v1/public/ response bodies. */
const bodyChecks = [];
/** Every URL any page requested, for the "near me" privacy check. */
const requestedUrls = [];

before(async () => {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  console.log(`# artifacts: ${ARTIFACTS}`);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Software WebGL (SwiftShader): MapLibre needs WebGL and CI has no GPU.
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
      // The embedding test puts a "public" site (http://embed.test) in
      // front of a server on loopback, which Chromium's private/local
      // network protections would block; a real server is public.
      '--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,PrivateNetworkAccessForIframes,LocalNetworkAccessChecks',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
});

/** Chromium's own WebGL chatter, not the page's. */
function isNoise(text) {
  return /GL Driver Message/.test(text);
}

/** A new page in a context of its own (a fresh profile each: launch() uses a temporary one). */
async function newPage(label, contextOptions = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...contextOptions });
  const page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error' && !isNoise(message.text())) {
      problems.push(`${label}: console error: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`${label}: page error: ${error.message}`));
  page.on('request', (request) => requestedUrls.push(request.url()));
  page.on('requestfailed', (request) => {
    const failure = request.failure();
    // The widget aborts the fetch of a view it has left, and MapLibre the
    // tiles it no longer needs.
    if (failure && failure.errorText === 'net::ERR_ABORTED') return;
    problems.push(`${label}: request failed: ${request.url()}: ${failure && failure.errorText}`);
  });
  page.on('response', (response) => {
    if (response.status() >= 400) {
      problems.push(`${label}: HTTP ${response.status()} for ${response.url()}`);
    }
    const url = new URL(response.url());
    if (url.origin === BASE && url.pathname.startsWith('/v1/public/')) {
      bodyChecks.push(checkPublicBody(label, response));
    }
  });
  return page;
}

/** The confidential points or addresses in one /v1/public/ JSON body, as messages. */
async function checkPublicBody(label, response) {
  const type = response.headers()['content-type'] || '';
  if (!/json/.test(type)) return; // vector tiles are binary
  let text;
  try {
    text = await response.text();
  } catch {
    return; // aborted by the page before it was read
  }
  const leaks = leaksIn(JSON.parse(text));
  for (const leak of leaks) problems.push(`${label}: ${response.url()} ${leak}`);
}

/** The confidential location with this id, if it is one. */
function confidentialLocation(locationId) {
  return CASE.confidential.find((place) => place.location_id === locationId);
}

/**
 * Why a point, said to be at `locationId` (if known), gives a confidential
 * location away; null if it does not.
 */
function pointLeak(lon, lat, locationId) {
  const own = locationId && confidentialLocation(locationId);
  if (own && Math.hypot(own.lon - lon, own.lat - lat) < CONFIDENTIAL_RADIUS_DEG) {
    return `confidential location ${locationId} at [${lon},${lat}], within ${CONFIDENTIAL_RADIUS_DEG}° of its exact point`;
  }
  const exact = CASE.confidential.find((place) => Math.hypot(place.lon - lon, place.lat - lat) < SAME_POINT_DEG);
  return exact ? `[${lon},${lat}] is the exact point of confidential location ${exact.location_id}` : null;
}

/** Where a JSON value gives a confidential location away: its address, or its exact point. */
function leaksIn(value, where = '$', found = [], locationId = null) {
  if (typeof value === 'string') {
    for (const place of CASE.confidential) {
      if (place.address && value.includes(place.address)) {
        found.push(`${where} contains the confidential address "${place.address}"`);
      }
    }
  } else if (Array.isArray(value)) {
    if (value.length === 2 && value.every((n) => typeof n === 'number')) {
      const leak = pointLeak(value[0], value[1], locationId);
      if (leak) found.push(`${where}: ${leak}`);
    }
    value.forEach((item, i) => leaksIn(item, `${where}[${i}]`, found, locationId));
  } else if (value && typeof value === 'object') {
    // A GeoJSON feature names its location in its properties.
    const id = (value.properties && value.properties.location_id) || value.location_id || value.id || locationId;
    if (typeof value.longitude === 'number' && typeof value.latitude === 'number') {
      const leak = pointLeak(value.longitude, value.latitude, id);
      if (leak) found.push(`${where}: ${leak}`);
    }
    for (const [key, item] of Object.entries(value)) leaksIn(item, `${where}.${key}`, found, id);
  }
  return found;
}

// --- The widget's state -------------------------------------------------------------------------

/** Waits until the widget's first services fetch has settled; it must have succeeded. */
async function waitFirstLoad(target) {
  await target.waitForFunction(
    () => window.ketnoiWidget && window.ketnoiWidget.settledCount() > 0
      && document.getElementById('ketnoi').dataset.state !== 'loading',
    null,
    { timeout: WAIT_MS },
  );
  await assertReady(target);
}

/** Runs `action`, then waits for the services fetch it causes to settle. */
async function afterFetch(target, action) {
  const before = await target.evaluate(() => window.ketnoiWidget.settledCount());
  await action();
  await target.waitForFunction(
    (count) => window.ketnoiWidget.settledCount() > count
      && document.getElementById('ketnoi').dataset.state !== 'loading',
    before,
    { timeout: WAIT_MS },
  );
  await assertReady(target);
}

async function assertReady(target) {
  const { state, message } = await target.evaluate(() => ({
    state: document.getElementById('ketnoi').dataset.state,
    message: document.getElementById('ketnoi-message').textContent,
  }));
  assert.equal(state, 'ready', `the widget failed to load services: "${message}"`);
}

/** The point markers on the map, as their data attributes say. */
async function markers(target) {
  return target.$$eval('.ketnoi-marker', (elements) => elements.map((e) => ({
    serviceId: e.dataset.serviceId,
    locationId: e.dataset.locationId,
    lon: Number(e.dataset.lon),
    lat: Number(e.dataset.lat),
    approximate: e.classList.contains('ketnoi-approximate'),
    label: e.getAttribute('aria-label'),
  })));
}

/** The server's cluster markers on the map: their counts, points and labels. */
async function serverClusters(target) {
  return target.$$eval('.ketnoi-server-cluster', (elements) => elements.map((e) => ({
    count: Number(e.dataset.count),
    text: e.textContent,
    lon: Number(e.dataset.lon),
    lat: Number(e.dataset.lat),
    label: e.getAttribute('aria-label'),
    button: e.tagName === 'BUTTON',
    box: (({ left, top, width, height }) => ({ left, top, width, height }))(e.getBoundingClientRect()),
  })));
}

/** Asserts that no cluster button covers another, however little. */
function assertApart(clusters, what) {
  for (const [i, a] of clusters.entries()) {
    for (const b of clusters.slice(i + 1)) {
      // Round buttons: their centres are at least the sum of the radii apart.
      const distance = Math.hypot(
        (a.box.left + a.box.width / 2) - (b.box.left + b.box.width / 2),
        (a.box.top + a.box.height / 2) - (b.box.top + b.box.height / 2),
      );
      assert.ok(distance >= (a.box.width + b.box.width) / 2,
        `${what}: the clusters of ${a.count} and ${b.count} overlap (${distance.toFixed(1)} px apart, sizes ${a.box.width} and ${b.box.width})`);
    }
  }
}

function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

/** The vector tiles among `urls`: {z, x, y, layers, category, lang}. */
function tileRequests(urls) {
  return urls.map((u) => new URL(u)).flatMap((u) => {
    const match = /^\/v1\/public\/tiles\/(\d+)\/(\d+)\/(\d+)\.mvt$/.exec(u.pathname);
    if (!match) return [];
    const [z, x, y] = match.slice(1).map(Number);
    return [{ href: u.href, z, x, y, layers: u.searchParams.get('layers'), category: u.searchParams.get('category'), lang: u.searchParams.get('lang') }];
  });
}

/**
 * Resolves once the map has drawn everything it is loading and its own
 * 'idle' handlers (the ward names) have run.
 */
async function mapIdle(target) {
  await target.evaluate(() => new Promise((resolve) => {
    const { map } = window.ketnoiWidget;
    map.once('idle', resolve);
    map.triggerRepaint();
  }));
}

/** Moves the map and waits for the services fetch that follows, and for the map to settle. */
async function jumpTo(target, view) {
  await afterFetch(target, () => target.evaluate(({ center, zoom }) => {
    window.ketnoiWidget.map.jumpTo({ center, zoom });
  }, view));
  await mapIdle(target);
}

/** The ward names shown, as the page shows them. */
async function wardLabels(target) {
  return target.$$eval('.ketnoi-ward-label:not([hidden])', (elements) => elements.map((e) => e.textContent));
}

/** Waits until a ward name is shown. */
async function waitForWardLabel(target, name) {
  await target.waitForFunction(
    (text) => [...document.querySelectorAll('.ketnoi-ward-label:not([hidden])')].some((e) => e.textContent === text),
    name,
    { timeout: WAIT_MS },
  );
}

/** The wards (code → band feature state) among the features of `layer` drawn now. */
async function renderedWardBands(target, layer) {
  return target.evaluate((id) => {
    const bands = {};
    for (const f of window.ketnoiWidget.map.queryRenderedFeatures({ layers: [id] })) {
      bands[f.properties.code] = f.state && f.state.band;
    }
    return bands;
  }, layer);
}

function sortedUnique(values) {
  return [...new Set(values)].sort();
}

// --- The bbox the widget sends --------------------------------------------------------------------

/**
 * The grid of the bbox the widget sends at `zoom`, as documented in
 * widget.js (bboxGridStep): 360 / 2^k degrees, k = max(0, floor(zoom) - 1).
 */
function bboxGridStep(zoom) {
  return 360 / 2 ** Math.max(0, Math.floor(zoom + 1e-9) - 1);
}

/** The bbox of every services.geojson request among `urls`, as numbers. */
function servicesBboxes(urls) {
  return urls
    .map((u) => new URL(u))
    .filter((u) => u.pathname === '/v1/public/services.geojson' && u.searchParams.has('bbox'))
    .map((u) => ({ url: u.href, box: u.searchParams.get('bbox').split(',').map(Number) }));
}

/**
 * Asserts that every box lies on the grid of `zoom` (each edge a multiple of
 * its step, or the edge of the world), is at least one step wide and high,
 * and covers the view `bounds` ([[w, s], [e, n]]) when given.
 */
function assertBboxesOnGrid(requests, zoom, bounds, what) {
  assert.ok(requests.length > 0, `${what}: no services.geojson request with a bbox`);
  const step = bboxGridStep(zoom);
  const onGrid = (v, limit) => Math.abs(v) === limit || Math.abs(v / step - Math.round(v / step)) < 1e-9;
  for (const { url, box } of requests) {
    const [west, south, east, north] = box;
    assert.ok(box.length === 4 && box.every(Number.isFinite), `${what}: bad bbox in ${url}`);
    assert.ok([west, east].every((v) => onGrid(v, 180)) && [south, north].every((v) => onGrid(v, 90)),
      `${what}: the bbox of ${url} is not on the ${step}° grid of zoom ${zoom}`);
    assert.ok(east - west >= step - 1e-9 && north - south >= Math.min(step, 180) - 1e-9,
      `${what}: the bbox of ${url} is smaller than one ${step}° cell`);
    if (bounds) {
      const [[w, s], [e, n]] = bounds;
      assert.ok(west <= Math.max(w, -180) && south <= Math.max(s, -90)
        && east >= Math.min(e, 180) && north >= Math.min(n, 90),
      `${what}: the bbox of ${url} does not cover the view ${JSON.stringify(bounds)}`);
    }
  }
}

/** Asserts the markers are exactly these services, none of them hidden in a cluster. */
async function assertMarkerServices(target, expected, what) {
  const clusters = await target.locator('.ketnoi-cluster').count();
  assert.equal(clusters, 0, `${what}: ${clusters} clusters are shown; the case's bbox must be small enough for single markers`);
  const shown = await markers(target);
  assert.deepEqual(sortedUnique(shown.map((m) => m.serviceId)), sortedUnique(expected),
    `${what}: the markers' services differ from the expected ones`);
  return shown;
}

async function assertNoConfidentialMarker(target, what) {
  for (const marker of await markers(target)) {
    const leak = pointLeak(marker.lon, marker.lat, marker.locationId);
    assert.equal(leak, null, `${what}: the marker of service ${marker.serviceId} gives a confidential location away: ${leak}`);
    if (confidentialLocation(marker.locationId)) {
      assert.ok(marker.approximate, `${what}: confidential location ${marker.locationId} has a marker without the class ketnoi-approximate`);
    }
  }
}

async function assertNoConfidentialAddress(target, what) {
  const text = await target.evaluate(() => document.body.textContent);
  for (const place of CASE.confidential) {
    assert.ok(!text.includes(place.address), `${what}: the page shows the confidential address "${place.address}"`);
  }
}

// --- Opening hours, independently of widget.js ----------------------------------------------------

const DAYS = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];

/** Whether hours say open at `date` in Vietnam, or undefined where this simple check can't tell. */
function expectedOpen(hours, date) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Asia/Ho_Chi_Minh', weekday: 'short', year: 'numeric', month: '2-digit',
    day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(date).map((p) => [p.type, p.value]));
  const day = DAYS[['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'].indexOf(parts.weekday)];
  const isoDate = `${parts.year}-${parts.month}-${parts.day}`;
  const now = `${parts.hour}:${parts.minute}`;
  let open = false;
  for (const entry of hours) {
    const opens = entry.opens || '00:00';
    const closes = entry.closes || '24:00';
    if (closes <= opens) return undefined; // past midnight: not modelled here
    const days = entry.days && entry.days.length ? entry.days : DAYS;
    const valid = (!entry.valid_from || entry.valid_from <= isoDate) && (!entry.valid_to || isoDate <= entry.valid_to);
    if (days.includes(day) && valid && opens <= now && now < closes) open = true;
  }
  return open;
}

/** Clicks a non-confidential marker whose service lists phones and hours; returns its feature. */
async function openPopupWithDetails(page) {
  const feature = await page.evaluate(() => {
    const shown = new Set([...document.querySelectorAll('.ketnoi-marker')]
      .map((e) => `${e.dataset.serviceId}/${e.dataset.locationId}`));
    return window.ketnoiWidget.lastFeatures().find((f) => !f.properties.approximate
      && f.properties.phones.length > 0 && f.properties.opening_hours.length > 0
      && shown.has(`${f.properties.service_id}/${f.properties.location_id}`));
  });
  assert.ok(feature, 'no marker in the case bbox has a service with phones and opening hours');
  const p = feature.properties;
  const close = page.locator('.maplibregl-popup-close-button');
  if (await close.count()) await close.click();
  const before = new Date();
  await page.locator(`.ketnoi-marker[data-service-id="${p.service_id}"][data-location-id="${p.location_id}"]`).click();
  const popup = page.locator('.maplibregl-popup .ketnoi-popup');
  await popup.waitFor({ timeout: WAIT_MS });
  return { feature, popup, before, after: new Date() };
}

async function assertPopup(page, { feature, popup, before, after: afterClick }, lang) {
  const p = feature.properties;
  const words = {
    vi: { hours: 'Giờ làm việc', open: 'Đang mở cửa', closed: 'Đã đóng cửa' },
    en: { hours: 'Opening hours', open: 'Open now', closed: 'Closed now' },
  }[lang];
  const text = await popup.textContent();
  assert.ok(text.includes(p.name), `popup: no service name "${p.name}" in:\n${text}`);
  const tels = await popup.locator('a[href^="tel:"]').allTextContents();
  assert.deepEqual(tels, p.phones.map((phone) => phone.number), 'popup: the phones are not tel: links of the listed numbers');
  assert.ok(text.includes(words.hours), `popup (${lang}): no "${words.hours}" heading in:\n${text}`);
  assert.equal(await popup.locator('.ketnoi-hours li').count(), p.opening_hours.length,
    'popup: not one line per opening_hours entry');
  const state = (await popup.locator('.ketnoi-open-state').textContent()).trim();
  assert.ok([words.open, words.closed].includes(state), `popup (${lang}): open state "${state}" is not "${words.open}" or "${words.closed}"`);
  // The clock may cross an opening or closing time during the click; only
  // when it did not is the answer pinned down.
  const then = expectedOpen(p.opening_hours, before);
  const now = expectedOpen(p.opening_hours, afterClick);
  if (then !== undefined && then === now) {
    assert.equal(state, then ? words.open : words.closed,
      `popup: open state is wrong for Vietnam time ${afterClick.toISOString()} and hours ${JSON.stringify(p.opening_hours)}`);
  }
  return text;
}

// --- The steps -----------------------------------------------------------------------------------------

let main; // the page of steps 1 to 4

test('/widget?bbox= shows one marker per expected service', async () => {
  main = await newPage('widget');
  await main.goto(`${BASE}/widget?bbox=${BBOX}`);
  await waitFirstLoad(main);
  assert.equal(await main.evaluate(() => document.documentElement.lang), 'vi', 'the default language is not vi');
  await assertMarkerServices(main, CASE.services, `bbox ${BBOX}`);
  assert.ok(await main.locator('.maplibregl-canvas').isVisible(), 'no map canvas');
  await main.screenshot({ path: path.join(ARTIFACTS, 'widget.png') });
});

test('the category filter shows exactly that category\'s services', async () => {
  assert.ok(main, 'step 1 did not run');
  const values = await main.locator('#ketnoi-category option').evaluateAll((o) => o.map((e) => e.value));
  assert.ok(values.includes(CASE.category), `#ketnoi-category has no option "${CASE.category}" (has ${values})`);
  await afterFetch(main, () => main.selectOption('#ketnoi-category', CASE.category));
  await assertMarkerServices(main, CASE.category_services, `category ${CASE.category}`);
  assert.match(main.url(), new RegExp(`category=${CASE.category}`), 'the address does not keep the category');
  await afterFetch(main, () => main.selectOption('#ketnoi-category', ''));
  await assertMarkerServices(main, CASE.services, 'all categories again');
});

test('a marker opens a popup with phones, opening hours and whether it is open now', async () => {
  assert.ok(main, 'step 1 did not run');
  const opened = await openPopupWithDetails(main);
  await assertPopup(main, opened, 'vi');
});

test('the language switch changes the labels, the page language and the popup', async () => {
  assert.ok(main, 'step 1 did not run');
  const categories = await (await fetch(`${BASE}/v1/categories`)).json();
  const category = categories.find((c) => c.code === CASE.category);
  const label = () => main.locator(`#ketnoi-category option[value="${CASE.category}"]`).textContent();
  assert.equal(await label(), category.label_vi, 'the category is not labelled in Vietnamese');
  assert.equal(await main.locator('#ketnoi-near-me').textContent(), 'Gần tôi');

  await afterFetch(main, () => main.locator('#ketnoi-lang').click());
  assert.equal(await main.evaluate(() => document.documentElement.lang), 'en', 'html[lang] is not en');
  assert.equal(await label(), category.label_en, 'the category is not labelled in English');
  assert.equal(await main.locator('#ketnoi-category option[value=""]').textContent(), 'All categories');
  assert.equal(await main.locator('#ketnoi-near-me').textContent(), 'Near me');
  assert.match(main.url(), /lang=en/, 'the address does not keep the language');
  await assertMarkerServices(main, CASE.services, 'in English');

  const opened = await openPopupWithDetails(main);
  await assertPopup(main, opened, 'en');
  await main.screenshot({ path: path.join(ARTIFACTS, 'widget-en.png') });

  await afterFetch(main, () => main.locator('#ketnoi-lang').click());
  assert.equal(await main.evaluate(() => document.documentElement.lang), 'vi', 'switching back did not give vi');
});

test('a confidential location is never shown at its exact point or with its address', async () => {
  assert.ok(main, 'step 1 did not run');
  await assertNoConfidentialMarker(main, 'case bbox');
  await assertNoConfidentialAddress(main, 'case bbox');

  // All of Vietnam: below POINTS_MIN_ZOOM the widget holds the server's
  // clusters and no services; no cluster is at a shelter's exact point.
  const page = await newPage('widget, Vietnam');
  const urls = [];
  page.on('request', (request) => urls.push(request.url()));
  await page.goto(`${BASE}/widget`);
  await waitFirstLoad(page);
  const first = await page.evaluate(() => window.ketnoiWidget.map.getZoom());
  assert.ok(first < POINTS_MIN_ZOOM, `the whole-Vietnam view is at zoom ${first}`);
  assert.deepEqual(servicesBboxes(urls), [], 'below zoom 12 the widget fetched services.geojson');
  assert.deepEqual(await page.evaluate(() => window.ketnoiWidget.lastFeatures()), [],
    'below zoom 12 the widget holds services');
  const clusters = await serverClusters(page);
  assert.ok(clusters.length > 0, 'no clusters in the whole of Vietnam');
  for (const cluster of clusters) {
    const leak = pointLeak(cluster.lon, cluster.lat, null);
    assert.equal(leak, null, `a cluster gives a confidential location away: ${leak}`);
  }
  await assertNoConfidentialMarker(page, 'Vietnam');
  await assertNoConfidentialAddress(page, 'Vietnam');
  // The whole directory: province boundaries from our own tiles, clusters.
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-vietnam.png') });

  // Zoomed in on each listed confidential location's public point (its
  // 0.1° cell): the widget's services there mark it approximate, with no
  // address, in its cell. A view that holds several checks them all.
  const listed = CASE.confidential.filter((place) => place.listed);
  assert.ok(listed.length > 0, 'the case has no listed confidential location');
  const seen = new Map();
  for (const place of listed) {
    if (seen.has(place.location_id)) continue;
    const center = [Math.round(place.lon * 10) / 10, Math.round(place.lat * 10) / 10];
    const before = urls.length;
    await jumpTo(page, { center, zoom: POINTS_MIN_ZOOM });
    const view = await page.evaluate(() => {
      const { map } = window.ketnoiWidget;
      return { zoom: map.getZoom(), bounds: map.getBounds().toArray() };
    });
    assertBboxesOnGrid(servicesBboxes(urls.slice(before)), view.zoom, view.bounds, `around ${place.location_id}`);
    const features = await page.evaluate(() => window.ketnoiWidget.lastFeatures());
    const leaks = leaksIn(features, 'lastFeatures()');
    assert.deepEqual(leaks, [], `the features the widget holds around ${place.location_id} give confidential locations away`);
    for (const f of features) {
      if (f.properties.approximate) {
        assert.equal(f.properties.address, null, `approximate location ${f.properties.location_id} comes with an address`);
      }
      const other = listed.find((l) => l.location_id === f.properties.location_id);
      if (other && !seen.has(other.location_id)) seen.set(other.location_id, f);
    }
    assert.ok(seen.has(place.location_id),
      `listed confidential location ${place.location_id} is not among the widget's services at its public point`);
  }
  for (const place of listed) {
    const f = seen.get(place.location_id);
    const [lon, lat] = f.geometry.coordinates;
    assert.equal(f.properties.approximate, true, `confidential location ${place.location_id} is not marked approximate`);
    assert.equal(f.properties.address, null, `confidential location ${place.location_id} comes with an address`);
    assert.ok(Math.abs(lon - place.lon) <= APPROXIMATE_MAX_DEG + 1e-9 && Math.abs(lat - place.lat) <= APPROXIMATE_MAX_DEG + 1e-9,
      `confidential location ${place.location_id} is at [${lon},${lat}], not at its approximate point (its 0.1° cell)`);
  }

  // Zoomed in on one: its marker is approximate, and so is its popup.
  const target = seen.get(listed[0].location_id);
  await afterFetch(page, () => page.evaluate((center) => {
    window.ketnoiWidget.map.jumpTo({ center, zoom: 14 });
  }, target.geometry.coordinates));
  const marker = page.locator(`.ketnoi-marker[data-service-id="${target.properties.service_id}"][data-location-id="${target.properties.location_id}"]`);
  assert.ok(await marker.evaluate((e) => e.classList.contains('ketnoi-approximate')),
    'a confidential location\'s marker does not have the class ketnoi-approximate');
  await assertNoConfidentialMarker(page, 'zoomed in on a confidential location');
  await marker.click();
  const popup = page.locator('.maplibregl-popup .ketnoi-popup');
  await popup.waitFor({ timeout: WAIT_MS });
  const text = await popup.textContent();
  assert.ok(text.includes('Khu vực gần đúng; địa chỉ được cung cấp qua điện thoại'),
    `the popup of a confidential location does not say it is approximate:\n${text}`);
  await assertNoConfidentialAddress(page, 'popup of a confidential location');
  await page.context().close();

  // Every /v1/public/ response any page received so far.
  await Promise.all(bodyChecks);
  const leaked = problems.filter((p) => /confidential/.test(p));
  assert.deepEqual(leaked, [], 'an API response gives a confidential location away');
});

test('"near me" moves the map near the position and never sends the position', async () => {
  // Off every grid, so that snapping shows (Lào Cai).
  const position = { latitude: 22.48763, longitude: 103.97251 };
  const page = await newPage('near me', { permissions: ['geolocation'], geolocation: position });
  const urls = [];
  page.on('request', (request) => urls.push(request.url()));
  await page.goto(`${BASE}/widget`);
  await waitFirstLoad(page);
  const first = await page.evaluate(() => window.ketnoiWidget.map.getZoom());
  assert.ok(first < POINTS_MIN_ZOOM, `the first view is at zoom ${first}`);
  // Below zoom 12, clusters from the tiles: no services box is sent at all.
  assert.deepEqual(servicesBboxes(urls), [], 'near me, before: services.geojson was fetched below zoom 12');
  const clickedAt = urls.length;
  await afterFetch(page, () => page.locator('#ketnoi-near-me').click());
  const view = await page.evaluate(() => {
    const { map } = window.ketnoiWidget;
    const marker = document.querySelector('.ketnoi-position').getBoundingClientRect();
    const canvas = map.getCanvas().getBoundingClientRect();
    return {
      center: map.getCenter(),
      zoom: map.getZoom(),
      bounds: map.getBounds().toArray(),
      // Where the "you are here" marker is drawn, as a map coordinate.
      marker: map.unproject([
        marker.left + marker.width / 2 - canvas.left,
        marker.top + marker.height / 2 - canvas.top,
      ]),
    };
  });
  assert.ok(Math.abs(view.zoom - 12) < 0.5, `the map is not at zoom 12: ${view.zoom}`);

  // The centre is the position snapped to the 0.05° grid, not the position.
  const snap = (v) => Math.round(v / NEAR_ME_GRID_DEG) * NEAR_ME_GRID_DEG;
  const expected = { lng: snap(position.longitude), lat: snap(position.latitude) };
  assert.ok(Math.abs(view.center.lng - expected.lng) < 1e-6 && Math.abs(view.center.lat - expected.lat) < 1e-6,
    `the map is not centred on the position snapped to ${NEAR_ME_GRID_DEG}° (${JSON.stringify(expected)}): ${JSON.stringify(view.center)}`);
  assert.ok(Math.hypot(view.center.lng - position.longitude, view.center.lat - position.latitude) > 0.01,
    `the map is centred on the position itself: ${JSON.stringify(view.center)}`);

  // The exact position is shown, locally, by the marker.
  assert.equal(await page.locator('.ketnoi-position').count(), 1, 'the position is not marked');
  assert.ok(Math.abs(view.marker.lng - position.longitude) < 1e-3 && Math.abs(view.marker.lat - position.latitude) < 1e-3,
    `the position marker is not at the position: ${JSON.stringify(view.marker)}`);

  // What the server saw: boxes on the zoom's grid, covering the view.
  const after = servicesBboxes(urls.slice(clickedAt));
  assertBboxesOnGrid(after, view.zoom, view.bounds, 'near me');
  for (const { url, box } of after) {
    assert.ok(box[0] <= position.longitude && position.longitude <= box[2]
      && box[1] <= position.latitude && position.latitude <= box[3],
    `the box of ${url} does not hold the position: the view is not near it`);
  }
  const digits = ['22.48763', '103.97251', '22.4876', '103.9725'];
  const sent = urls.filter((u) => digits.some((d) => u.includes(d)));
  assert.deepEqual(sent, [], 'a request carries the position');
  await page.context().close();

  const denied = await newPage('near me, denied');
  await denied.goto(`${BASE}/widget?lang=en`);
  await waitFirstLoad(denied);
  await denied.locator('#ketnoi-near-me').click();
  const message = denied.locator('#ketnoi-message');
  await message.waitFor({ state: 'visible', timeout: WAIT_MS });
  assert.match(await message.textContent(), /location/i, 'no message when location is refused');
  await denied.context().close();
});

test('below zoom 12 the clusters are the server\'s: they add up to the directory, follow the filter, and zoom in', async () => {
  const page = await newPage('clusters');
  const urls = [];
  page.on('request', (request) => urls.push(request.url()));
  await page.goto(`${BASE}/widget`);
  await waitFirstLoad(page);
  const zoom = () => page.evaluate(() => window.ketnoiWidget.map.getZoom());
  const start = await zoom();
  assert.ok(start < POINTS_MIN_ZOOM, `the first view is at zoom ${start}`);

  // The whole directory lies in the first view (the case checks it), so
  // the counts the markers show add up to the directory's, whatever was
  // loaded: no services were fetched, and no note asks to zoom in.
  const assertClusters = async (expected, lang, what) => {
    const clusters = await serverClusters(page);
    assert.ok(clusters.length > 1, `${what}: ${clusters.length} clusters`);
    assert.equal(sum(clusters.map((c) => c.count)), expected,
      `${what}: the clusters' counts do not add up to the directory's ${expected}: ${clusters.map((c) => c.count)}`);
    for (const c of clusters) {
      assert.ok(c.button, `${what}: a cluster is not a button`);
      assert.equal(c.text, String(c.count), `${what}: a cluster shows ${c.text}, not its count ${c.count}`);
      const label = lang === 'vi' ? `${c.count} dịch vụ — bấm để phóng to` : `${c.count} services — click to zoom in`;
      assert.equal(c.label, label, `${what}: a cluster's aria-label`);
    }
    assertApart(clusters, what);
    assert.equal(await page.locator('.ketnoi-marker').count(), 0, `${what}: service markers below zoom 12`);
    assert.ok(await page.locator('#ketnoi-more').isHidden(), `${what}: the "zoom in" note is shown below zoom 12`);
    return clusters;
  };
  await assertClusters(CASE.listed, 'vi', 'Vietnam');

  // The filter reloads the clusters' tiles for the category.
  await afterFetch(page, () => page.selectOption('#ketnoi-category', CASE.category));
  await assertClusters(CASE.category_listed, 'vi', `Vietnam, ${CASE.category}`);
  const filtered = tileRequests(urls).filter((t) => t.layers === 'services' && t.category === CASE.category);
  assert.ok(filtered.length > 0, `no clusters' tile was asked for category=${CASE.category}`);

  // In English, the labels; all categories again, the whole directory.
  await afterFetch(page, () => page.locator('#ketnoi-lang').click());
  await assertClusters(CASE.category_listed, 'en', `Vietnam, ${CASE.category}, en`);
  await afterFetch(page, () => page.selectOption('#ketnoi-category', ''));
  await assertClusters(CASE.listed, 'en', 'Vietnam, all categories again, en');
  assert.deepEqual(servicesBboxes(urls), [], 'services.geojson was fetched below zoom 12');

  // At every zoom below 12 the buttons stand apart (above, in the first
  // view, they also add up to the whole directory).
  const [cx, cy] = [(CASE.bbox[0] + CASE.bbox[2]) / 2, (CASE.bbox[1] + CASE.bbox[3]) / 2];
  const first = await page.evaluate(() => {
    const { map } = window.ketnoiWidget;
    return { center: map.getCenter().toArray(), zoom: map.getZoom() };
  });
  for (let z = 4; z < POINTS_MIN_ZOOM; z += 1) {
    await jumpTo(page, { center: z < 7 ? first.center : [cx, cy], zoom: z });
    const clusters = await serverClusters(page);
    assert.ok(clusters.length > 0, `no clusters at zoom ${z}`);
    assertApart(clusters, `zoom ${z}`);
  }
  await jumpTo(page, first);

  // A click on a cluster zooms in on it, two levels at a time, up to zoom
  // 12; the cluster followed is the one nearest the case's services.
  for (let step = 0; (await zoom()) < POINTS_MIN_ZOOM; step += 1) {
    assert.ok(step < 8, 'clicking clusters does not reach zoom 12');
    const before = await zoom();
    const clusters = await serverClusters(page);
    const nearest = clusters.reduce((a, b) => (Math.hypot(a.lon - cx, a.lat - cy) <= Math.hypot(b.lon - cx, b.lat - cy) ? a : b));
    // Dispatched to the marker itself: neighbouring clusters may overlap it.
    await afterFetch(page, () => page.locator(`.ketnoi-server-cluster[data-lon="${nearest.lon}"][data-lat="${nearest.lat}"]`).dispatchEvent('click'));
    const view = await page.evaluate(() => {
      const { map } = window.ketnoiWidget;
      return { zoom: map.getZoom(), center: map.getCenter() };
    });
    assert.equal(view.zoom, Math.min(POINTS_MIN_ZOOM, Math.floor(before) + 2), `a click at zoom ${before} went to zoom ${view.zoom}`);
    assert.ok(Math.abs(view.center.lng - nearest.lon) < 1e-6 && Math.abs(view.center.lat - nearest.lat) < 1e-6,
      `a click on the cluster at [${nearest.lon},${nearest.lat}] centred the map on ${JSON.stringify(view.center)}`);
  }

  // From zoom 12: no clusters' tiles, the services of the view are fetched,
  // and the server's clusters are gone.
  const tiles = tileRequests(urls).filter((t) => t.layers === 'services');
  assert.deepEqual(tiles.filter((t) => t.z >= POINTS_MIN_ZOOM).map((t) => t.href), [],
    'clusters\' tiles were asked for at zoom 12 or closer');
  assert.ok(servicesBboxes(urls).length > 0, 'at zoom 12 the services in view were not fetched');
  assert.equal(await page.locator('.ketnoi-server-cluster').count(), 0, 'the server\'s clusters stay at zoom 12');

  // Closer still (through the browser's clusters of what was fetched), a
  // marker per service, with its popup.
  for (let step = 0; ; step += 1) {
    const shown = new Set((await markers(page)).map((m) => m.serviceId));
    if (CASE.services.every((id) => shown.has(id))) break;
    assert.ok(step < 6, `clicking clusters does not show the case's services: ${[...shown]}`);
    const nearest = (await page.$$eval('.ketnoi-cluster', (elements) => elements.map((e) => [Number(e.dataset.lon), Number(e.dataset.lat)])))
      .reduce((a, b) => (Math.hypot(a[0] - cx, a[1] - cy) <= Math.hypot(b[0] - cx, b[1] - cy) ? a : b));
    await afterFetch(page, () => page.locator(`.ketnoi-cluster[data-lon="${nearest[0]}"][data-lat="${nearest[1]}"]`).dispatchEvent('click'));
    await mapIdle(page);
  }
  const opened = await openPopupWithDetails(page);
  await assertPopup(page, opened, 'en');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-drilled.png') });

  // Back out below zoom 12: clusters again, no services, no popup.
  await jumpTo(page, { center: [cx, cy], zoom: 7 });
  assert.ok((await serverClusters(page)).length > 0, 'zoomed out again, no clusters');
  assert.equal(await page.locator('.ketnoi-marker').count(), 0, 'zoomed out again, service markers stay');
  assert.equal(await page.locator('.maplibregl-popup').count(), 0, 'zoomed out again, the popup stays');
  await page.context().close();
});

test('embed.js on another site makes an iframe that shows the markers', async () => {
  const page = await newPage('embed');
  const host = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Partner page</title></head>
<body><h1>Partner page</h1><p id="before">Support near you:</p>
<script src="${BASE}/widget/embed.js" data-lang="en" data-bbox="${BBOX}" data-height="480" async></script>
<p id="after">Call 111 for help.</p></body></html>`;
  await page.route(`${EMBED_ORIGIN}/**`, (route) => {
    const { pathname } = new URL(route.request().url());
    return pathname === '/'
      ? route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: host })
      : route.fulfill({ status: 204 });
  });
  await page.goto(`${EMBED_ORIGIN}/`);
  const iframe = page.locator('iframe');
  await iframe.waitFor({ timeout: WAIT_MS });
  const attrs = await iframe.evaluate((e) => ({
    src: e.src,
    title: e.title,
    loading: e.getAttribute('loading'),
    height: e.getBoundingClientRect().height,
    width: e.getBoundingClientRect().width,
    bodyWidth: document.body.getBoundingClientRect().width,
    border: getComputedStyle(e).borderTopWidth,
    placed: e.previousElementSibling && e.previousElementSibling.id,
  }));
  const src = new URL(attrs.src);
  assert.equal(src.origin + src.pathname, `${BASE}/widget`, 'the iframe does not show the script\'s own /widget');
  assert.equal(src.searchParams.get('lang'), 'en', 'data-lang was not passed on');
  assert.equal(src.searchParams.get('bbox'), BBOX, 'data-bbox was not passed on');
  assert.ok(attrs.title.length > 0, 'the iframe has no title');
  assert.equal(attrs.loading, 'lazy');
  assert.equal(attrs.height, 480, 'data-height was not applied');
  assert.equal(attrs.width, attrs.bodyWidth, 'the iframe is not full width');
  assert.equal(attrs.border, '0px', 'the iframe has a border');
  assert.equal(attrs.placed, 'before', 'the iframe is not where the script tag is');

  const frame = await (await iframe.elementHandle()).contentFrame();
  await waitFirstLoad(frame);
  assert.equal(await frame.evaluate(() => document.documentElement.lang), 'en');
  await assertMarkerServices(frame, CASE.services, 'embedded');
  await page.screenshot({ path: path.join(ARTIFACTS, 'embed.png') });
  await page.context().close();
});

test('zoomed in, the wards are the base layer: outlines, and names in vi and en', async () => {
  // The names as the reference data has them (a different path from the tiles).
  const ward = await (await fetch(`${BASE}/v1/wards/${LAO_CAI_WARD.code}`)).json();
  assert.equal(ward.full_name, LAO_CAI_WARD.vi, `ward ${LAO_CAI_WARD.code} is not ${LAO_CAI_WARD.vi}`);
  assert.equal(ward.full_name_en, LAO_CAI_WARD.en, `ward ${LAO_CAI_WARD.code} is not ${LAO_CAI_WARD.en} in English`);

  const page = await newPage('wards');
  await page.goto(`${BASE}/widget`);
  await waitFirstLoad(page);

  // Zoom 9: outlines, but no names yet.
  await jumpTo(page, { center: LAO_CAI.center, zoom: 9 });
  const far = await renderedWardBands(page, 'wards-outline');
  assert.ok(Object.keys(far).length > 10, `zoom 9: only ${Object.keys(far).length} ward outlines are drawn`);
  assert.deepEqual(await wardLabels(page), [], 'zoom 9: ward names are shown (they start at zoom 10)');

  await jumpTo(page, LAO_CAI);
  const outlines = await renderedWardBands(page, 'wards-outline');
  assert.ok(LAO_CAI_WARD.code in outlines, `the outline of ward ${LAO_CAI_WARD.code} is not drawn at Lào Cai, zoom 11`);
  await waitForWardLabel(page, LAO_CAI_WARD.vi);
  const shown = await wardLabels(page);
  assert.ok(shown.length >= 5, `only ${shown.length} ward names are shown at zoom 11: ${shown}`);
  assert.equal(new Set(shown).size, shown.length, `a ward name is shown twice: ${shown}`);

  // Decoration only: hidden from screen readers, never in the way of a
  // click, under the markers, and not on top of each other.
  const layout = await page.evaluate(() => {
    const overlay = document.querySelector('.ketnoi-ward-labels');
    const labels = [...overlay.querySelectorAll('.ketnoi-ward-label:not([hidden])')];
    const marker = document.querySelector('.maplibregl-marker');
    return {
      ariaHidden: overlay.getAttribute('aria-hidden'),
      pointerEvents: getComputedStyle(overlay).pointerEvents,
      // DOCUMENT_POSITION_FOLLOWING: the marker comes after, so it is drawn above.
      markerAbove: !marker || Boolean(overlay.compareDocumentPosition(marker) & Node.DOCUMENT_POSITION_FOLLOWING),
      boxes: labels.map((e) => {
        const r = e.getBoundingClientRect();
        return { text: e.textContent, left: r.left, right: r.right, top: r.top, bottom: r.bottom };
      }),
    };
  });
  assert.equal(layout.ariaHidden, 'true', 'the ward names are not aria-hidden');
  assert.equal(layout.pointerEvents, 'none', 'the ward names take pointer events');
  assert.ok(layout.markerAbove, 'the service markers are not above the ward names');
  for (const [i, a] of layout.boxes.entries()) {
    for (const b of layout.boxes.slice(i + 1)) {
      const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
      assert.ok(!overlap, `the ward names "${a.text}" and "${b.text}" overlap`);
    }
  }
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-wards.png') });

  // The tiles come again in English, and so do the names.
  await afterFetch(page, () => page.locator('#ketnoi-lang').click());
  await waitForWardLabel(page, LAO_CAI_WARD.en);
  await mapIdle(page);
  const english = await wardLabels(page);
  const vietnamese = english.filter((name) => /^(Phường|Xã|Đặc khu) /.test(name));
  assert.deepEqual(vietnamese, [], 'after the switch to English, names are still in Vietnamese');

  // Closer in, the view lies inside the ward, away from its label's point:
  // the ward is named in the corner.
  const close = { center: LAO_CAI.center, zoom: 15 };
  await jumpTo(page, close);
  const bounds = await page.evaluate(() => window.ketnoiWidget.map.getBounds().toArray());
  const [lon, lat] = close.center;
  const here = (await (await fetch(`${BASE}/v1/wards?at=${lat},${lon}`)).json()).contents[0];
  const reference = (await (await fetch(`${BASE}/v1/wards/${here.code}`)).json()).reference_point;
  const [[west, south], [east, north]] = bounds;
  assert.ok(reference.lon < west || reference.lon > east || reference.lat < south || reference.lat > north,
    `the reference point of ward ${here.code} is in the zoom 15 view: pick another view for this check`);
  const caption = page.locator('.ketnoi-ward-caption');
  assert.ok(await caption.isVisible(), 'zoomed in inside a ward, no ward is named');
  assert.equal(await caption.textContent(), here.full_name_en, 'the corner names another ward than the one in view');
  await page.context().close();
});

test('the coverage view colours the wards by distance band, with a legend, in vi and en', async () => {
  const categories = await (await fetch(`${BASE}/v1/categories`)).json();
  const category = categories.find((c) => c.code === COVERAGE.category);
  assert.ok(category, `no category ${COVERAGE.category}`);
  // What the public API says, to compare the map with.
  const expectedUrl = `${BASE}/v1/coverage?${new URLSearchParams(COVERAGE.query)}`;
  const response = await fetch(expectedUrl);
  assert.equal(response.status, 200, `${expectedUrl}: HTTP ${response.status}`);
  const expected = {};
  for (const ward of (await response.json()).wards) {
    expected[ward.code] = ward.categories.find((c) => c.category === COVERAGE.category).nearest_in_person_band;
  }
  assert.ok(LAO_CAI_WARD.code in expected, `${expectedUrl} has no ward ${LAO_CAI_WARD.code}`);

  const page = await newPage('coverage');
  const coverageRequests = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/v1/coverage') coverageRequests.push(url);
  });
  await page.goto(`${BASE}/widget`);
  await waitFirstLoad(page);
  await jumpTo(page, LAO_CAI);
  assert.ok(await page.locator('#ketnoi-group-field').isHidden(), 'the group choice is shown with the coverage view off');
  assert.equal(await page.locator('#ketnoi-coverage').textContent(), 'Độ bao phủ');

  await afterFetch(page, () => page.selectOption('#ketnoi-category', COVERAGE.category));
  await page.locator('#ketnoi-coverage').click();
  assert.equal(await page.locator('#ketnoi-coverage').getAttribute('aria-pressed'), 'true');
  assert.ok(await page.locator('#ketnoi-group-field').isVisible(), 'the group choice is not shown with the coverage view on');
  assert.ok(await page.locator('#ketnoi-category option[value=""]').isDisabled(),
    '"all categories" can be chosen while the coverage view, which is of one category, is on');
  await page.selectOption('#ketnoi-group', COVERAGE.group);
  const waitCoverage = () => page.waitForFunction(
    (group) => window.ketnoiWidget.coverage().group === group
      && document.getElementById('ketnoi').dataset.coverage === 'ready',
    COVERAGE.group,
    { timeout: WAIT_MS },
  );
  await waitCoverage();
  await mapIdle(page);

  // The request is the public one, for the group's profile band.
  const girls = coverageRequests.filter((u) => u.searchParams.get('max_age') === '17');
  assert.equal(girls.length, 1, `not one coverage request for ${COVERAGE.group}: ${girls.map((u) => u.href)}`);
  assert.deepEqual(Object.fromEntries(girls[0].searchParams), COVERAGE.query,
    `the coverage request ${girls[0].href} is not for ${JSON.stringify(COVERAGE.query)}`);

  // Every ward's feature state is the API's band.
  const states = await page.evaluate((codes) => {
    const { map } = window.ketnoiWidget;
    return Object.fromEntries(codes.map((code) => [code,
      map.getFeatureState({ source: 'ketnoi', sourceLayer: 'wards', id: Number(code) }).band]));
  }, Object.keys(expected));
  assert.equal(states[LAO_CAI_WARD.code], expected[LAO_CAI_WARD.code],
    `ward ${LAO_CAI_WARD.code}: the map's band is not the API's`);
  const differ = Object.keys(expected).filter((code) => states[code] !== expected[code]);
  assert.deepEqual(differ.slice(0, 10), [], `${differ.length} wards have another band on the map than in the API`);

  // And so are the colours drawn: several bands among the wards in view.
  const assertRendered = async (what) => {
    const rendered = await renderedWardBands(page, 'wards-fill');
    assert.ok(LAO_CAI_WARD.code in rendered, `${what}: ward ${LAO_CAI_WARD.code} is not drawn in the coverage layer`);
    for (const [code, band] of Object.entries(rendered)) {
      assert.equal(band, expected[code], `${what}: ward ${code} is drawn with band ${band}, not ${expected[code]}`);
    }
    const bands = new Set(Object.values(rendered));
    assert.ok(bands.size >= 2, `${what}: the wards in view are all drawn with one band: ${[...bands]}`);
  };
  await assertRendered('vi');

  const assertLegend = async (lang, titleParts) => {
    const legend = page.locator('#ketnoi-legend');
    assert.ok(await legend.isVisible(), `${lang}: the legend is not shown`);
    const labels = await legend.locator('.ketnoi-legend-band').allTextContents();
    assert.deepEqual(labels.map((t) => t.trim()), BAND_LABELS[lang], `${lang}: the legend's bands`);
    const title = await legend.locator('.ketnoi-legend-title').textContent();
    for (const part of titleParts) assert.ok(title.includes(part), `${lang}: the legend's title "${title}" does not name "${part}"`);
    return legend.textContent();
  };
  const vi = await assertLegend('vi', [category.label_vi, 'Trẻ em gái (dưới 18 tuổi)']);
  assert.match(vi, /trực tiếp gần nhất/, 'vi: the legend does not say it is the nearest in-person service');
  assert.match(vi, /theo dải.*điểm công khai/, 'vi: the legend does not say distances are banded, to public points');
  assert.match(page.url(), new RegExp(`coverage=${COVERAGE.group}`), 'the address does not keep the coverage view');
  assert.match(page.url(), new RegExp(`category=${COVERAGE.category}`), 'the address does not keep the category');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-coverage.png') });

  // In English: the tiles come again; the colours stay (MapLibre keeps
  // feature state by id), with no new request; the legend is in English.
  await afterFetch(page, () => page.locator('#ketnoi-lang').click());
  await waitForWardLabel(page, LAO_CAI_WARD.en);
  await mapIdle(page);
  await assertRendered('en');
  const en = await assertLegend('en', [category.label_en, 'Girls (under 18)']);
  assert.match(en, /nearest in-person service/, 'en: the legend does not say it is the nearest in-person service');
  assert.match(en, /banded and measured to the services' public points/, 'en: the legend does not say distances are banded, to public points');
  await page.screenshot({ path: path.join(ARTIFACTS, 'widget-coverage-en.png') });

  // Another group and back: the first answer is reused.
  await page.selectOption('#ketnoi-group', 'everyone');
  await page.waitForFunction(() => window.ketnoiWidget.coverage().group === 'everyone'
    && document.getElementById('ketnoi').dataset.coverage === 'ready', null, { timeout: WAIT_MS });
  await page.selectOption('#ketnoi-group', COVERAGE.group);
  await waitCoverage();
  assert.equal(coverageRequests.filter((u) => u.searchParams.get('max_age') === '17').length, 1,
    'the coverage of a group was asked for twice');

  // The address opens the same view; zoomed out, the legend asks to zoom in.
  const shared = await newPage('coverage, shared');
  await shared.goto(page.url());
  await waitFirstLoad(shared);
  await shared.waitForFunction(() => document.getElementById('ketnoi').dataset.coverage === 'ready', null, { timeout: WAIT_MS });
  assert.deepEqual(await shared.evaluate(() => window.ketnoiWidget.coverage()),
    { group: COVERAGE.group, category: COVERAGE.category, state: 'ready' });
  assert.equal(await shared.locator('#ketnoi-group').inputValue(), COVERAGE.group);
  assert.equal((await shared.locator('.ketnoi-legend-status').textContent()).trim(), 'Zoom in to see each commune and ward',
    'zoomed out to the whole country, the legend does not ask to zoom in');
  await shared.context().close();

  // Off again: no colours, no legend, "all" can be chosen.
  await page.locator('#ketnoi-coverage').click();
  assert.equal(await page.locator('#ketnoi-coverage').getAttribute('aria-pressed'), 'false');
  assert.ok(await page.locator('#ketnoi-legend').isHidden(), 'the legend stays with the coverage view off');
  assert.equal(await page.evaluate(() => window.ketnoiWidget.map.getPaintProperty('wards-fill', 'fill-opacity')), 0,
    'the wards stay coloured with the coverage view off');
  assert.ok(!(await page.locator('#ketnoi-category option[value=""]').isDisabled()), '"all categories" stays disabled');
  assert.doesNotMatch(page.url(), /coverage=/, 'the address keeps the coverage view after it is turned off');
  await page.context().close();
});

test('the vector tiles asked for are the base map, and the services\' clusters below zoom 12 only', async () => {
  const tiles = tileRequests(requestedUrls);
  assert.ok(tiles.some((t) => t.layers === 'provinces,wards'), 'no base map tile was requested');
  assert.ok(tiles.some((t) => t.layers === 'services'), 'no clusters\' tile was requested');
  for (const tile of tiles) {
    assert.ok(['vi', 'en'].includes(tile.lang), `${tile.href} has no lang`);
    if (tile.layers === 'services') {
      // From zoom 12 the tiles' services layer is a point per service: the
      // widget takes those from the GeoJSON, with their popups.
      assert.ok(tile.z < POINTS_MIN_ZOOM, `${tile.href} asks for services at zoom ${tile.z}`);
    } else {
      assert.equal(tile.layers, 'provinces,wards', `${tile.href} asks for layers=${tile.layers}`);
      assert.equal(tile.category, null, `${tile.href}: the base map has no category`);
    }
  }
});

test('more services than the widget loads: the "zoom in" note is shown', async () => {
  // Every page of services says there is a next one, so the widget stops at
  // MAX_PAGES with features left over.
  const page = await newPage('more');
  let pages = 0;
  await page.route((url) => url.origin === BASE && url.pathname === '/v1/public/services.geojson', async (route) => {
    const url = new URL(route.request().url());
    url.searchParams.delete('after');
    const response = await route.fetch({ url: url.href });
    const body = await response.json();
    pages += 1;
    url.searchParams.set('after', `page-${pages}`);
    body.next = url.pathname + url.search;
    await route.fulfill({ response, json: body });
  });
  await page.goto(`${BASE}/widget?lang=en&bbox=${BBOX}`);
  await waitFirstLoad(page);
  const note = page.locator('#ketnoi-more');
  assert.ok(await note.isVisible(), 'the "zoom in" note is not shown when the widget stopped before the last page');
  assert.equal((await note.textContent()).trim(), 'Zoom in to see all services');
  assert.ok(pages > 1, 'the widget did not follow next');
  await page.context().close();
});

test('no console errors, page errors, failed requests or CSP violations', async () => {
  await main?.context().close();
  await Promise.all(bodyChecks);
  assert.deepEqual(problems, [], `problems:\n${problems.join('\n')}`);
});
