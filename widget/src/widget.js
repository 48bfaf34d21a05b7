/*
 * Kết Nối public map widget.
 *
 * Shows the public listings of the directory on a MapLibre map, a category
 * filter, a Vietnamese/English switch, "near me", and a popup per service.
 * Below zoom 12 the services are the server's clusters, from the
 * `clusters` layer of the vector tiles: counted over the whole directory,
 * so a count on the map is true whatever is in view. From zoom 12 they
 * are the services of GET /v1/public/services.geojson for the area in
 * view, each with its popup.
 * Its base layer is Kết Nối's own vector tiles: province and ward
 * boundaries, with ward names when zoomed in, so that every view has its
 * context with no other server. The coverage view colours the wards by
 * the distance band to the nearest eligible in-person service, from
 * GET /v1/coverage, for one category and one group of people.
 *
 * Plain browser JavaScript, no build step. It runs under a strict
 * Content-Security-Policy (see index.html), which is why:
 *   - MapLibre is the CSP build, with its worker loaded from our origin;
 *   - nothing is inserted as HTML: every text from the API goes in through
 *     textContent or attributes, so a listing cannot inject markup;
 *   - there are no symbol (text) layers: MapLibre would need glyph files
 *     from a font server. Clusters and points are HTML markers instead
 *     (MapLibre's "HTML clusters" pattern), and ward names are HTML labels
 *     on an overlay (see the ward labels section).
 *
 * For tests and embedding pages' scripts in the same origin, the widget
 * exposes window.ketnoiWidget (see the end of this file) and sets
 * data-state="loading|ready|error" on #ketnoi around every update of the
 * services (a fetch, or the clusters' tiles loading),
 * and data-coverage="off|loading|ready|error" for the coverage view.
 */
(function () {
  'use strict';

  // --- Constants -----------------------------------------------------------

  const SERVICES_PATH = '/v1/public/services.geojson';
  const CATEGORIES_PATH = '/v1/categories';
  const COVERAGE_PATH = '/v1/coverage';
  const WORKER_URL = '/widget/vendor/maplibre-gl-csp-worker.js';
  const DEFAULT_TILES = '/v1/public/tiles/{z}/{x}/{y}.mvt';

  /** Vietnam, as minLon, minLat, maxLon, maxLat. */
  const VIETNAM_BBOX = [102.1, 8.4, 109.5, 23.4];

  /** Features per page (the API's default; its maximum is 1000). */
  const PAGE_LIMIT = 500;
  /** Pages followed per view; past that the user is asked to zoom in. */
  const MAX_PAGES = 5;

  /**
   * From this zoom the services are loaded one by one (GeoJSON, with
   * popups); below it they are the server's clusters. The server's
   * SERVICES_MIN_ZOOM: its tiles carry the `clusters` layer below it.
   */
  const POINTS_MIN_ZOOM = 12;
  /**
   * From POINTS_MIN_ZOOM up to this zoom the services loaded are still
   * clustered in the browser (a zoom-12 view of a city can hold thousands);
   * above it every service is its own marker.
   */
  const CLUSTER_MAX_ZOOM = 12;
  const CLUSTER_RADIUS = 50;
  /** Pixels kept between two cluster buttons; see mergeOverlapping(). */
  const CLUSTER_GAP = 4;
  /** Zoom that "near me" flies to. */
  const NEAR_ME_ZOOM = 12;
  /**
   * "Near me" centres the map on the position snapped to this grid (in
   * degrees; 0.05° is about 5 km), not on the position itself: the view,
   * and so every request that follows, must not pin the visitor down.
   */
  const NEAR_ME_GRID_DEG = 0.05;
  /** Quiet time after the map stops moving before services are fetched. */
  const MOVE_DEBOUNCE_MS = 300;
  /** Bounds for the server's Retry-After (seconds). */
  const RETRY_MIN_S = 1;
  const RETRY_MAX_S = 300;

  /** HSDS day codes, Monday first. */
  const DAY_CODES = ['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'];
  /** Asia/Ho_Chi_Minh is UTC+7 all year (no daylight saving time). */
  const VIETNAM_UTC_OFFSET_MS = 7 * 60 * 60 * 1000;

  const LANGUAGES = ['vi', 'en'];

  /** The tiles carry wards from this zoom (the server's WARDS_MIN_ZOOM). */
  const WARDS_MIN_ZOOM = 7;
  /** Ward names from this zoom: further out they would cover the map. */
  const WARD_LABELS_MIN_ZOOM = 10;
  /** At most this many ward names at once (a very large window). */
  const MAX_WARD_LABELS = 250;
  /** Pixels kept free around a ward name. */
  const WARD_LABEL_PADDING = 4;
  /**
   * From this zoom the view can lie inside one ward, away from the point
   * its name is drawn at; the ward in the middle of the view is then named
   * in the map's corner.
   */
  const WARD_CAPTION_MIN_ZOOM = 12;

  /**
   * The coverage view's radius. The public may only ask for a band's edge
   * (5, 15, 30 or 60 km); the colours are the bands themselves, which do
   * not depend on it, so the default of the review is kept.
   */
  const COVERAGE_RADIUS_KM = 30;
  /** The distance bands of GET /v1/coverage, nearest first. */
  const BANDS = ['le_5km', 'le_15km', 'le_30km', 'le_60km', 'gt_60km'];
  /**
   * One colour per band: ColorBrewer's YlOrRd, five classes, which
   * ColorBrewer marks safe for colour-blind readers. Pale is near, dark red
   * is far: the eye goes to where help is out of reach. No band is blue,
   * so none looks like the background beyond the borders.
   */
  const BAND_COLOURS = {
    le_5km: '#ffffb2',
    le_15km: '#fecc5c',
    le_30km: '#fd8d3c',
    le_60km: '#f03b20',
    gt_60km: '#bd0026',
  };
  /** The coverage colours' opacity: the boundaries and a base map show through. */
  const COVERAGE_OPACITY = 0.75;
  /**
   * The groups of people the coverage view asks about, as GET /v1/coverage
   * profile bands. A band leaves out what it does not say, and a service
   * must admit every age of it: "women" is 18 and over (otherwise a
   * service for girls only would count as covering women), "children" and
   * "girls" are 0 to 17.
   */
  const GROUPS = {
    everyone: {},
    women: { gender: 'female', min_age: '18' },
    children: { max_age: '17' },
    girls: { gender: 'female', max_age: '17' },
  };
  const GROUP_CODES = Object.keys(GROUPS);

  // --- UI strings ----------------------------------------------------------

  /** Every string the widget shows, in both languages. */
  const STRINGS = {
    vi: {
      title: 'Kết Nối — Bản đồ dịch vụ hỗ trợ',
      mapLabel: 'Bản đồ dịch vụ hỗ trợ',
      category: 'Loại dịch vụ',
      allCategories: 'Tất cả',
      nearMe: 'Gần tôi',
      switchLanguage: 'English',
      switchLanguageLabel: 'Switch to English',
      zoomIn: 'Phóng to để xem tất cả dịch vụ',
      loadError: 'Không tải được danh sách dịch vụ. Vui lòng thử lại sau.',
      categoriesError: 'Không tải được danh sách loại dịch vụ.',
      rateLimited: (s) => `Có quá nhiều yêu cầu. Sẽ thử lại sau ${s} giây.`,
      geoUnavailable: 'Trình duyệt này không cho biết vị trí của bạn.',
      geoDenied: 'Bạn chưa cho phép truy cập vị trí. Hãy di chuyển bản đồ đến khu vực của bạn.',
      geoFailed: 'Không xác định được vị trí của bạn.',
      yourPosition: 'Vị trí của bạn',
      cluster: (n) => `${n} dịch vụ — bấm để phóng to`,
      approximateTitle: 'khu vực gần đúng',
      approximate: 'Khu vực gần đúng; địa chỉ được cung cấp qua điện thoại',
      inPerson: 'Gặp trực tiếp',
      remote: 'Qua điện thoại hoặc trực tuyến',
      phones: 'Điện thoại',
      email: 'Email',
      website: 'Trang web',
      openingHours: 'Giờ làm việc',
      openNow: 'Đang mở cửa',
      closedNow: 'Đã đóng cửa',
      allDay: 'Cả ngày',
      everyDay: 'Hằng ngày',
      validFrom: (d) => `từ ${d}`,
      validTo: (d) => `đến ${d}`,
      free: 'Miễn phí',
      notFree: 'Có thu phí',
      close: 'Đóng',
      zoomInButton: 'Phóng to',
      zoomOutButton: 'Thu nhỏ',
      cooperativeDesktop: 'Giữ Ctrl và cuộn để phóng to bản đồ',
      cooperativeMobile: 'Dùng hai ngón tay để di chuyển bản đồ',
      coverage: 'Độ bao phủ',
      coverageLabel: 'Xem độ bao phủ theo xã, phường',
      group: 'Nhóm',
      groups: {
        everyone: 'Mọi người',
        women: 'Phụ nữ (từ 18 tuổi)',
        children: 'Trẻ em (dưới 18 tuổi)',
        girls: 'Trẻ em gái (dưới 18 tuổi)',
      },
      legendTitle: (category, group) => `Độ bao phủ: ${category} — ${group}`,
      legendExplain: 'Khoảng cách từ mỗi xã, phường đến dịch vụ gặp trực tiếp gần nhất phù hợp với nhóm này. '
        + 'Khoảng cách được chia theo dải và đo đến điểm công khai của dịch vụ.',
      bands: ['≤ 5 km', '≤ 15 km', '≤ 30 km', '≤ 60 km', 'Trên 60 km'],
      coverageLoading: 'Đang tải…',
      coverageZoomIn: 'Phóng to để xem từng xã, phường',
      coverageChooseCategory: 'Chọn một loại dịch vụ',
      coverageError: 'Không tải được dữ liệu độ bao phủ. Vui lòng thử lại sau.',
      days: {
        MO: 'Thứ Hai', TU: 'Thứ Ba', WE: 'Thứ Tư', TH: 'Thứ Năm',
        FR: 'Thứ Sáu', SA: 'Thứ Bảy', SU: 'Chủ nhật',
      },
    },
    en: {
      title: 'Kết Nối — Map of support services',
      mapLabel: 'Map of support services',
      category: 'Service type',
      allCategories: 'All categories',
      nearMe: 'Near me',
      switchLanguage: 'Tiếng Việt',
      switchLanguageLabel: 'Chuyển sang tiếng Việt',
      zoomIn: 'Zoom in to see all services',
      loadError: 'The services could not be loaded. Please try again later.',
      categoriesError: 'The service types could not be loaded.',
      rateLimited: (s) => `Too many requests. Trying again in ${s} seconds.`,
      geoUnavailable: 'This browser cannot tell your location.',
      geoDenied: 'Location access was not allowed. Move the map to your area instead.',
      geoFailed: 'Your location could not be found.',
      yourPosition: 'Your position',
      cluster: (n) => `${n} services — click to zoom in`,
      approximateTitle: 'approximate area',
      approximate: 'Approximate area; the address is given by phone',
      inPerson: 'In person',
      remote: 'By phone or online',
      phones: 'Phone',
      email: 'Email',
      website: 'Website',
      openingHours: 'Opening hours',
      openNow: 'Open now',
      closedNow: 'Closed now',
      allDay: 'All day',
      everyDay: 'Every day',
      validFrom: (d) => `from ${d}`,
      validTo: (d) => `until ${d}`,
      free: 'Free of charge',
      notFree: 'Fees apply',
      close: 'Close',
      zoomInButton: 'Zoom in',
      zoomOutButton: 'Zoom out',
      cooperativeDesktop: 'Use Ctrl + scroll to zoom the map',
      cooperativeMobile: 'Use two fingers to move the map',
      coverage: 'Coverage',
      coverageLabel: 'Show coverage by commune and ward',
      group: 'Group',
      groups: {
        everyone: 'Everyone',
        women: 'Women (18 and over)',
        children: 'Children (under 18)',
        girls: 'Girls (under 18)',
      },
      legendTitle: (category, group) => `Coverage: ${category} — ${group}`,
      legendExplain: 'Distance from each commune or ward to the nearest in-person service that admits this group. '
        + 'Distances are banded and measured to the services\' public points.',
      bands: ['≤ 5 km', '≤ 15 km', '≤ 30 km', '≤ 60 km', '> 60 km'],
      coverageLoading: 'Loading…',
      coverageZoomIn: 'Zoom in to see each commune and ward',
      coverageChooseCategory: 'Choose a service type',
      coverageError: 'The coverage could not be loaded. Please try again later.',
      days: {
        MO: 'Mon', TU: 'Tue', WE: 'Wed', TH: 'Thu',
        FR: 'Fri', SA: 'Sat', SU: 'Sun',
      },
    },
  };

  // --- Configuration and URL parameters --------------------------------------

  /**
   * The server's configuration, from the JSON block in index.html:
   * {tiles: "/v1/public/tiles/{z}/{x}/{y}.mvt", basemap: null | {url, attribution}}.
   * Opened without the server (the placeholder is still there), it falls
   * back to the defaults rather than showing nothing.
   */
  function readConfig() {
    const element = document.getElementById('ketnoi-config');
    let config = {};
    try {
      config = JSON.parse(element ? element.textContent : '{}') || {};
    } catch (error) {
      console.warn('ketnoi widget: no valid configuration; using the defaults', error);
    }
    const basemap = config.basemap && typeof config.basemap.url === 'string'
      ? { url: config.basemap.url, attribution: String(config.basemap.attribution || '') }
      : null;
    return {
      tiles: typeof config.tiles === 'string' ? config.tiles : DEFAULT_TILES,
      basemap,
    };
  }

  /** A bbox parameter, or null when it is missing or not a valid box. */
  function parseBbox(text) {
    if (!text) return null;
    const parts = text.split(',').map(Number);
    if (parts.length !== 4 || !parts.every(Number.isFinite)) return null;
    const [minLon, minLat, maxLon, maxLat] = parts;
    const valid = minLon >= -180 && maxLon <= 180 && minLat >= -85 && maxLat <= 85
      && minLon < maxLon && minLat < maxLat;
    return valid ? parts : null;
  }

  /**
   * lang, category, coverage (a group, or null when the coverage view is
   * off) and bbox from the page's URL. The base map is the server's choice only.
   */
  function readParams() {
    const params = new URLSearchParams(location.search);
    const lang = LANGUAGES.includes(params.get('lang')) ? params.get('lang') : 'vi';
    const category = /^[a-z_]{1,64}$/.test(params.get('category') || '') ? params.get('category') : '';
    const coverage = GROUP_CODES.includes(params.get('coverage')) ? params.get('coverage') : null;
    return { lang, category, coverage, bbox: parseBbox(params.get('bbox')) || VIETNAM_BBOX };
  }

  /**
   * A URL template (with {z}/{x}/{y}) made absolute against this page's
   * origin. String concatenation on purpose: new URL() would percent-encode
   * the braces, and MapLibre would no longer find them.
   */
  function absoluteTemplate(template) {
    return /^https?:\/\//.test(template) ? template : location.origin + template;
  }

  function withQuery(url, params) {
    const query = new URLSearchParams(params).toString();
    if (!query) return url;
    return url + (url.includes('?') ? '&' : '?') + query;
  }

  // --- Small helpers -----------------------------------------------------------

  /** A new element with a class and, optionally, text (never HTML). */
  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /** A link only for http(s) URLs: a listing must not be able to plant javascript: links. */
  function safeWebUrl(value) {
    try {
      const url = new URL(String(value));
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
    } catch {
      return null;
    }
  }

  /** The tel: form of a phone number as written for people ("0214 555 0100"). */
  function telHref(number) {
    const digits = String(number).replace(/[^\d+]/g, '');
    return digits ? `tel:${digits}` : null;
  }

  /** A plausible e-mail address for a mailto: link (one @, no spaces or URL syntax). */
  function mailtoHref(address) {
    const text = String(address).trim();
    return /^[^\s@/?#:]+@[^\s@/?#:]+$/.test(text) ? `mailto:${text}` : null;
  }

  /** Text of a MapLibre attribution, which MapLibre inserts as HTML. */
  function escapeHtml(text) {
    return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  }

  // --- Opening hours -------------------------------------------------------------

  /** Minutes since midnight of "HH:MM", or NaN. */
  function minutesOf(time) {
    const match = /^(\d{1,2}):(\d{2})$/.exec(String(time));
    if (!match) return NaN;
    const minutes = Number(match[1]) * 60 + Number(match[2]);
    return minutes <= 24 * 60 ? minutes : NaN;
  }

  /** The wall clock in Vietnam at `date`: day code, ISO date and minutes, for today and yesterday. */
  function vietnamClock(date) {
    const local = new Date(date.getTime() + VIETNAM_UTC_OFFSET_MS);
    const yesterday = new Date(local.getTime() - 24 * 60 * 60 * 1000);
    // getUTCDay() counts from Sunday; DAY_CODES from Monday.
    const dayCode = (d) => DAY_CODES[(d.getUTCDay() + 6) % 7];
    return {
      day: dayCode(local),
      date: local.toISOString().slice(0, 10),
      minutes: local.getUTCHours() * 60 + local.getUTCMinutes(),
      previousDay: dayCode(yesterday),
      previousDate: yesterday.toISOString().slice(0, 10),
    };
  }

  /** Whether an entry applies on an ISO date (valid_from and valid_to are inclusive). */
  function validOn(entry, isoDate) {
    return (!entry.valid_from || entry.valid_from <= isoDate)
      && (!entry.valid_to || isoDate <= entry.valid_to);
  }

  /** The days of an entry; an entry that lists none applies every day. */
  function entryDays(entry) {
    return Array.isArray(entry.days) && entry.days.length ? entry.days : DAY_CODES;
  }

  /**
   * Whether one opening_hours entry is open at `clock`. A null opens/closes
   * is the start/end of the day; the closing minute itself is closed. Hours
   * that close before they open (22:00–06:00) run past midnight into the
   * next day.
   */
  function entryOpenAt(entry, clock) {
    const opens = entry.opens == null ? 0 : minutesOf(entry.opens);
    const closes = entry.closes == null ? 24 * 60 : minutesOf(entry.closes);
    if (Number.isNaN(opens) || Number.isNaN(closes)) return false;
    const days = entryDays(entry);
    const today = days.includes(clock.day) && validOn(entry, clock.date);
    if (opens < closes) {
      return today && opens <= clock.minutes && clock.minutes < closes;
    }
    const sinceYesterday = days.includes(clock.previousDay) && validOn(entry, clock.previousDate);
    return (today && clock.minutes >= opens) || (sinceYesterday && clock.minutes < closes);
  }

  /** true/false, or null when no hours are listed (then nothing is said). */
  function openNow(hours, date) {
    if (!Array.isArray(hours) || hours.length === 0) return null;
    const clock = vietnamClock(date || new Date());
    return hours.some((entry) => entryOpenAt(entry, clock));
  }

  /** "Mon–Fri", "Tue, Thu", "Every day": runs of consecutive days are joined. */
  function formatDays(days, strings) {
    const set = new Set(days);
    if (DAY_CODES.every((d) => set.has(d))) return strings.everyDay;
    const runs = [];
    let run = [];
    for (const day of DAY_CODES) {
      if (set.has(day)) {
        run.push(day);
      } else if (run.length) {
        runs.push(run);
        run = [];
      }
    }
    if (run.length) runs.push(run);
    return runs.map((r) => {
      const first = strings.days[r[0]];
      const last = strings.days[r[r.length - 1]];
      if (r.length === 1) return first;
      return r.length === 2 ? `${first}, ${last}` : `${first}–${last}`;
    }).join(', ');
  }

  function formatHours(entry, strings) {
    const parts = [formatDays(entryDays(entry), strings)];
    parts.push(entry.opens == null && entry.closes == null
      ? strings.allDay
      : `${entry.opens || '00:00'}–${entry.closes || '24:00'}`);
    const validity = [];
    if (entry.valid_from) validity.push(strings.validFrom(entry.valid_from));
    if (entry.valid_to) validity.push(strings.validTo(entry.valid_to));
    let text = parts.join(' ');
    if (validity.length) text += ` (${validity.join(' ')})`;
    return text;
  }

  // --- Errors from the API -------------------------------------------------------

  class RateLimited extends Error {
    constructor(seconds) {
      super(`rate limited; retry after ${seconds} s`);
      this.name = 'RateLimited';
      this.seconds = seconds;
    }
  }

  class HttpError extends Error {
    constructor(status, problem) {
      super(`HTTP ${status}${problem && problem.detail ? `: ${problem.detail}` : ''}`);
      this.name = 'HttpError';
      this.status = status;
      this.problem = problem;
    }
  }

  /** Retry-After in seconds (it may be a number of seconds or an HTTP date). */
  function retryAfterSeconds(header) {
    let seconds = Number(header);
    if (!Number.isFinite(seconds)) {
      const when = Date.parse(header || '');
      seconds = Number.isFinite(when) ? (when - Date.now()) / 1000 : 10;
    }
    return Math.min(RETRY_MAX_S, Math.max(RETRY_MIN_S, Math.ceil(seconds)));
  }

  async function getJson(url, accept, signal) {
    // No cookies or credentials: everything the widget reads is public.
    const response = await fetch(url, { headers: { accept }, credentials: 'omit', signal });
    if (response.status === 429) {
      throw new RateLimited(retryAfterSeconds(response.headers.get('retry-after')));
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => null);
      throw new HttpError(response.status, problem);
    }
    return response.json();
  }

  // --- The widget -----------------------------------------------------------------

  const config = readConfig();
  const params = readParams();

  const root = document.getElementById('ketnoi');
  const categorySelect = document.getElementById('ketnoi-category');
  const nearMeButton = document.getElementById('ketnoi-near-me');
  const langButton = document.getElementById('ketnoi-lang');
  const coverageButton = document.getElementById('ketnoi-coverage');
  const groupField = document.getElementById('ketnoi-group-field');
  const groupSelect = document.getElementById('ketnoi-group');
  const moreNote = document.getElementById('ketnoi-more');
  const messageNote = document.getElementById('ketnoi-message');
  const mapContainer = document.getElementById('ketnoi-map');

  const state = {
    lang: params.lang,
    category: params.category,
    /** From GET /v1/categories: [{code, label_vi, label_en, ...}]. */
    categories: [],
    /** The features of the last completed fetch, as received. */
    features: [],
    /**
     * Feature key ("service_id/location_id") → feature as received.
     * MapLibre's source only gets the key: it would stringify nested
     * properties and quantise coordinates, so popups and markers read the
     * original from here.
     */
    byKey: new Map(),
    /** byKey of the fetch before, to tell which markers can stay. */
    previousByKey: new Map(),
    /** Key of the feature whose popup is open, if any. */
    popupKey: null,
    /** Marker key → {marker, kind}; see syncMarkers(). */
    markers: new Map(),
    markersDirty: false,
    /** The clusters' tile URL last given to their source; see updateClusterTiles(). */
    clusterTiles: null,
    /** Incremented per fetch; a response for an older one is dropped. */
    fetchSeq: 0,
    /** Fetches that have settled (shown or failed), for tests to wait on. */
    settledCount: 0,
    controller: null,
    moveTimer: null,
    retryTimer: null,
    positionMarker: null,
    /** The coverage view's group (a key of GROUPS), or null when it is off. */
    coverage: params.coverage,
    /** The group last chosen, for when the view is turned on again. */
    lastGroup: params.coverage || 'everyone',
    /** "category|group" → promise of Map(ward code → band); see loadCoverage(). */
    coverageCache: new Map(),
    /** Incremented per showCoverage(); an older one's result is dropped. */
    coverageSeq: 0,
    coverageRetryTimer: null,
    /** Why the last coverage request failed, for the legend. */
    coverageError: null,
    /** Set once the style and categories are there: from then on changes show at once. */
    started: false,
    /** Ward code → {name, lngLat, element, width, height, shown}; see refreshWardLabels(). */
    wardLabels: new Map(),
    wardLabelsDirty: true,
  };

  function strings() {
    return STRINGS[state.lang];
  }

  function setState(value) {
    if (value !== 'loading') state.settledCount += 1;
    root.dataset.state = value;
  }

  function showMessage(text) {
    messageNote.textContent = text || '';
    messageNote.hidden = !text;
  }

  // --- Map and style ---------------------------------------------------------------

  /**
   * The base map's vector tiles' URL template: `provinces` and `wards`;
   * the latter brings the `wards` and `ward_labels` layers, from zoom 7,
   * with names in the tile's `lang`. The query is appended to the
   * template as it is: {z}/{x}/{y} stay unescaped for MapLibre.
   */
  function tileUrl() {
    return withQuery(absoluteTemplate(config.tiles), { layers: 'provinces,wards', lang: state.lang });
  }

  /**
   * The clusters' tiles: `layers=services`, which below POINTS_MIN_ZOOM
   * is the `clusters` layer, for the filter's category. A tile of its own
   * rather than a layer of the base map's, so that changing the category
   * reloads only these (they are small: at most 256 points each).
   */
  function clusterTileUrl() {
    const query = { layers: 'services', lang: state.lang };
    if (state.category) query.category = state.category;
    return withQuery(absoluteTemplate(config.tiles), query);
  }

  /** The coverage colour of a ward, from its feature state; transparent without one. */
  function bandColourExpression() {
    const expression = ['match', ['coalesce', ['feature-state', 'band'], '']];
    for (const band of BANDS) expression.push(band, BAND_COLOURS[band]);
    expression.push('rgba(0, 0, 0, 0)');
    return expression;
  }

  /**
   * The style, built here rather than fetched: a background, the base map
   * (raster tiles, only when the server configures one), and province and
   * ward boundaries from our own vector tiles, which are the offline base
   * map. The wards' fill sits under the boundaries: transparent until the
   * coverage view colours it, and always there to find the ward at a point
   * (see wardCaption). Ward names are HTML (see refreshWardLabels).
   */
  function buildStyle() {
    const sources = {
      ketnoi: {
        type: 'vector',
        tiles: [tileUrl()],
        // Boundaries are simplified per zoom level up to here and over-zoomed
        // past it: closer tiles would add requests, not detail.
        maxzoom: 12,
        // The ward code as a number is each ward's id, for its feature
        // state (the coverage band).
        promoteId: { wards: 'ward_id' },
        attribution: 'Ranh giới hành chính / boundaries: vietnamese-provinces-database (MIT)',
      },
    };
    const layers = [
      { id: 'background', type: 'background', paint: { 'background-color': '#dbe7ee' } },
    ];
    if (config.basemap) {
      sources.basemap = {
        type: 'raster',
        tiles: [absoluteTemplate(config.basemap.url)],
        tileSize: 256,
        attribution: escapeHtml(config.basemap.attribution),
      };
      layers.push({ id: 'basemap', type: 'raster', source: 'basemap' });
    } else {
      layers.push({
        id: 'provinces-fill',
        type: 'fill',
        source: 'ketnoi',
        'source-layer': 'provinces',
        paint: { 'fill-color': '#f7f4ec' },
      });
    }
    layers.push({
      id: 'wards-fill',
      type: 'fill',
      source: 'ketnoi',
      'source-layer': 'wards',
      minzoom: WARDS_MIN_ZOOM,
      paint: { 'fill-color': bandColourExpression(), 'fill-opacity': 0 },
    });
    layers.push({
      id: 'wards-outline',
      type: 'line',
      source: 'ketnoi',
      'source-layer': 'wards',
      minzoom: WARDS_MIN_ZOOM,
      paint: {
        'line-color': config.basemap ? '#5d6b7a' : '#8f8776',
        // Faint when the wards are small on screen, clearer closer in.
        'line-opacity': ['interpolate', ['linear'], ['zoom'], WARDS_MIN_ZOOM, 0.25, 11, 0.7],
        'line-width': ['interpolate', ['linear'], ['zoom'], WARDS_MIN_ZOOM, 0.3, 12, 1],
      },
    });
    layers.push({
      id: 'provinces-outline',
      type: 'line',
      source: 'ketnoi',
      'source-layer': 'provinces',
      paint: {
        'line-color': config.basemap ? '#5d6b7a' : '#a59d8c',
        'line-width': ['interpolate', ['linear'], ['zoom'], 4, 0.6, 10, 1.6],
      },
    });
    return { version: 8, sources, layers };
  }

  function mapLocale(lang) {
    const s = STRINGS[lang];
    return {
      'Map.Title': s.mapLabel,
      'NavigationControl.ZoomIn': s.zoomInButton,
      'NavigationControl.ZoomOut': s.zoomOutButton,
      'Popup.Close': s.close,
      'CooperativeGesturesHandler.WindowsHelpText': s.cooperativeDesktop,
      'CooperativeGesturesHandler.MacHelpText': s.cooperativeDesktop.replace('Ctrl', '⌘'),
      'CooperativeGesturesHandler.MobileHelpText': s.cooperativeMobile,
    };
  }

  maplibregl.setWorkerUrl(WORKER_URL);

  const map = new maplibregl.Map({
    container: mapContainer,
    style: buildStyle(),
    bounds: params.bbox,
    fitBoundsOptions: { padding: 16 },
    maxZoom: 18,
    dragRotate: false,
    pitchWithRotate: false,
    touchPitch: false,
    attributionControl: { compact: true },
    locale: mapLocale(state.lang),
    // Embedded in someone's page, the map must not swallow page scrolling.
    cooperativeGestures: window.self !== window.top,
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), 'top-right');

  const popup = new maplibregl.Popup({ maxWidth: '320px', className: 'ketnoi-popup-container' });
  popup.on('close', () => { state.popupKey = null; });

  /** Whether the view is close enough for the services themselves (else the server's clusters). */
  function pointsMode() {
    return map.getZoom() >= POINTS_MIN_ZOOM;
  }

  function addServicesSource() {
    // The server's clusters, below POINTS_MIN_ZOOM only: the layer's
    // maxzoom keeps MapLibre from asking for its tiles closer in (the
    // same test as pointsMode()), and the source's from over-asking.
    state.clusterTiles = clusterTileUrl();
    map.addSource('clusters', {
      type: 'vector',
      tiles: [state.clusterTiles],
      maxzoom: POINTS_MIN_ZOOM - 1,
    });
    map.addLayer({
      id: 'clusters-anchor',
      type: 'circle',
      source: 'clusters',
      'source-layer': 'clusters',
      maxzoom: POINTS_MIN_ZOOM,
      paint: { 'circle-radius': 0, 'circle-opacity': 0, 'circle-stroke-width': 0 },
    });
    map.addSource('services', {
      type: 'geojson',
      data: { type: 'FeatureCollection', features: [] },
      cluster: true,
      clusterMaxZoom: CLUSTER_MAX_ZOOM,
      clusterRadius: CLUSTER_RADIUS,
    });
    // MapLibre only loads a source that some layer uses. These layers draw
    // nothing; the markers are HTML (see syncMarkers).
    map.addLayer({
      id: 'services-anchor',
      type: 'circle',
      source: 'services',
      minzoom: POINTS_MIN_ZOOM,
      paint: { 'circle-radius': 0, 'circle-opacity': 0, 'circle-stroke-width': 0 },
    });
  }

  // --- Markers: the HTML clusters pattern ----------------------------------------------

  /**
   * A cluster's round button, bigger for more services (within reason),
   * labelled with its count; `zoomIn` moves the map when it is clicked.
   */
  function clusterButton(className, count, center, zoomIn) {
    const button = element('button', className, count);
    button.type = 'button';
    const size = clusterSize(count);
    button.style.width = `${size}px`;
    button.style.height = `${size}px`;
    button.setAttribute('aria-label', strings().cluster(count));
    button.dataset.count = String(count);
    button.dataset.lon = String(center[0]);
    button.dataset.lat = String(center[1]);
    button.addEventListener('click', (event) => {
      event.stopPropagation();
      zoomIn();
    });
    return button;
  }

  /** A cluster button's diameter in pixels: 28 for one service, at most 52. */
  function clusterSize(count) {
    return Math.round(28 + Math.min(24, Math.log2(count) * 4));
  }

  /** A cluster of the services fetched (from POINTS_MIN_ZOOM). */
  function clusterElement(feature) {
    const clusterId = feature.properties.cluster_id;
    const center = feature.geometry.coordinates;
    return clusterButton('ketnoi-cluster', feature.properties.point_count, center, async () => {
      try {
        const zoom = await map.getSource('services').getClusterExpansionZoom(clusterId);
        map.easeTo({ center, zoom });
      } catch {
        // The data changed under the cluster; the new markers are on their way.
      }
    });
  }

  /**
   * The marker of one of the server's clusters: its count is the
   * server's, over the whole directory. A click zooms in two levels
   * (a cell of the tile becomes 16 of the next view's), at most to where
   * the services themselves are shown.
   */
  function serverClusterElement(count, categories, center) {
    const button = clusterButton('ketnoi-cluster ketnoi-server-cluster', count, center, () => {
      const zoom = Math.min(POINTS_MIN_ZOOM, Math.floor(map.getZoom()) + 2);
      map.easeTo({ center, zoom });
    });
    // What is in it, per category, for a pointer's hover.
    const parts = state.categories.filter((c) => categories[c.code] > 0)
      .map((c) => `${categoryLabel(c)}: ${categories[c.code]}`);
    if (parts.length) button.title = parts.join('\n');
    return button;
  }

  /**
   * The server's clusters in the loaded tiles, as [key, {count,
   * categories, center}], those that would cover each other merged. Each
   * cluster is in exactly one tile (the tiles have no buffer for them), so
   * none is counted twice; MapLibre gives each tile once, whatever the
   * copies of the world in view.
   */
  function serverClusters() {
    const wanted = new Map();
    for (const feature of map.querySourceFeatures('clusters', { sourceLayer: 'clusters' })) {
      const p = feature.properties || {};
      const geometry = feature.geometry;
      const count = Number(p.count);
      if (!Number.isInteger(count) || count < 1 || !geometry || geometry.type !== 'Point') continue;
      const center = geometry.coordinates;
      const categories = {};
      for (const [code, n] of Object.entries(p)) {
        if (code !== 'count' && Number.isInteger(n)) categories[code] = n;
      }
      wanted.set(`${center[0]},${center[1]}:${JSON.stringify(p)}`, { count, categories, center });
    }
    const merged = new Map();
    for (const cluster of mergeOverlapping([...wanted.values()])) {
      // Its place and what it counts: a marker is kept only while both stay.
      const { count, categories, center } = cluster;
      merged.set(`server:${center[0]},${center[1]}:${count}:${JSON.stringify(categories)}`, cluster);
    }
    return merged;
  }

  /**
   * The server counts per cell of a tile (16 to a tile's side, 32 pixels),
   * and the buttons of neighbouring cells (28 to 52 pixels) would cover
   * each other. Clusters whose buttons would come closer than CLUSTER_GAP
   * are merged, biggest first: their counts and categories add up and the
   * merged one stands at their count-weighted centre, so the markers still
   * add up to the server's counts. Only the zoom changes which ones merge
   * (a pan moves them all alike). A screen grid of cells as wide as the
   * widest reach keeps each pass linear; passes repeat while merging
   * grows a button onto another.
   */
  function mergeOverlapping(clusters) {
    let groups = clusters.map((c) => ({ ...c, categories: { ...c.categories }, at: map.project(c.center) }));
    const reach = (a, b) => (clusterSize(a.count) + clusterSize(b.count)) / 2 + CLUSTER_GAP;
    const cell = clusterSize(Number.MAX_SAFE_INTEGER) + CLUSTER_GAP;
    for (let merging = true; merging;) {
      merging = false;
      groups.sort((a, b) => b.count - a.count || a.center[0] - b.center[0] || a.center[1] - b.center[1]);
      const grid = new Map();
      const kept = [];
      for (const group of groups) {
        const gx = Math.floor(group.at.x / cell);
        const gy = Math.floor(group.at.y / cell);
        let host = null;
        for (let dx = -1; dx <= 1 && !host; dx += 1) {
          for (let dy = -1; dy <= 1 && !host; dy += 1) {
            host = (grid.get(`${gx + dx},${gy + dy}`) || [])
              .find((h) => Math.hypot(h.at.x - group.at.x, h.at.y - group.at.y) < reach(h, group)) || null;
          }
        }
        if (host) {
          const count = host.count + group.count;
          host.center = [0, 1].map((i) => (host.center[i] * host.count + group.center[i] * group.count) / count);
          host.count = count;
          for (const [code, n] of Object.entries(group.categories)) {
            host.categories[code] = (host.categories[code] || 0) + n;
          }
          host.at = map.project(host.center);
          merging = true;
        } else {
          const key = `${gx},${gy}`;
          if (!grid.has(key)) grid.set(key, []);
          grid.get(key).push(group);
          kept.push(group);
        }
      }
      groups = kept;
    }
    return groups;
  }

  function pointElement(key, feature) {
    const p = feature.properties;
    const [lon, lat] = feature.geometry.coordinates;
    const button = element('button', p.approximate ? 'ketnoi-marker ketnoi-approximate' : 'ketnoi-marker');
    button.type = 'button';
    button.dataset.serviceId = p.service_id;
    button.dataset.locationId = p.location_id;
    // As received, so that tests can compare them with the source.
    button.dataset.lon = String(lon);
    button.dataset.lat = String(lat);
    button.setAttribute('aria-label', p.name);
    button.title = p.approximate ? `${p.name} (${strings().approximateTitle})` : p.name;
    button.addEventListener('click', (event) => {
      event.stopPropagation();
      openPopup(key);
    });
    return button;
  }

  /**
   * Pixel offsets for markers at the same point (several services at one
   * location), spread on a small circle so that each one can be clicked.
   * Only the drawing moves: the marker's coordinates stay exact.
   */
  function spreadOffsets(pointKeys) {
    const groups = new Map();
    for (const key of pointKeys) {
      const [lon, lat] = state.byKey.get(key).geometry.coordinates;
      const at = `${lon},${lat}`;
      if (!groups.has(at)) groups.set(at, []);
      groups.get(at).push(key);
    }
    const offsets = new Map();
    for (const keys of groups.values()) {
      keys.sort();
      const radius = keys.length > 1 ? 12 + 3 * keys.length : 0;
      keys.forEach((key, i) => {
        const angle = (2 * Math.PI * i) / keys.length - Math.PI / 2;
        offsets.set(key, [Math.round(radius * Math.cos(angle)), Math.round(radius * Math.sin(angle))]);
      });
    }
    return offsets;
  }

  /**
   * Makes the HTML markers match what the sources show now, each made once
   * and kept while it stays: below POINTS_MIN_ZOOM one per server cluster;
   * from it one per cluster of the services loaded and one per unclustered
   * service-at-location.
   */
  function syncMarkers() {
    if (!pointsMode()) {
      syncServerClusters();
      return;
    }
    const wanted = new Map();
    for (const feature of map.querySourceFeatures('services')) {
      const p = feature.properties;
      if (p.cluster) {
        // Cluster ids are only unique within one set of data; the count
        // keeps a stale marker from standing in for a new cluster.
        wanted.set(`cluster:${p.cluster_id}:${p.point_count}`, feature);
      } else if (state.byKey.has(p.key)) {
        wanted.set(`point:${p.key}`, feature);
      }
    }
    for (const [key, entry] of state.markers) {
      if (!wanted.has(key)) {
        entry.marker.remove();
        state.markers.delete(key);
      }
    }
    const pointKeys = [...wanted.keys()].filter((k) => k.startsWith('point:')).map((k) => k.slice(6));
    const offsets = spreadOffsets(pointKeys);
    for (const [key, feature] of wanted) {
      let entry = state.markers.get(key);
      if (!entry) {
        if (feature.properties.cluster) {
          const marker = new maplibregl.Marker({ element: clusterElement(feature) })
            .setLngLat(feature.geometry.coordinates)
            .addTo(map);
          entry = { marker, kind: 'cluster' };
        } else {
          const original = state.byKey.get(feature.properties.key);
          const marker = new maplibregl.Marker({ element: pointElement(feature.properties.key, original) })
            .setLngLat(original.geometry.coordinates)
            .addTo(map);
          entry = { marker, kind: 'point' };
        }
        state.markers.set(key, entry);
      }
      if (entry.kind === 'point') {
        entry.marker.setOffset(offsets.get(key.slice(6)));
      }
    }
  }

  function syncServerClusters() {
    const wanted = serverClusters();
    for (const [key, entry] of state.markers) {
      if (!wanted.has(key)) {
        entry.marker.remove();
        state.markers.delete(key);
      }
    }
    for (const [key, cluster] of wanted) {
      if (state.markers.has(key)) continue;
      const marker = new maplibregl.Marker({
        element: serverClusterElement(cluster.count, cluster.categories, cluster.center),
      }).setLngLat(cluster.center).addTo(map);
      state.markers.set(key, { marker, kind: 'server' });
    }
  }

  /** The source the markers are made from at this zoom. */
  function markerSource() {
    return pointsMode() ? 'services' : 'clusters';
  }

  // Markers follow the source on the next frame after anything changed it
  // (data, tiles, or the view), once its tiles are loaded.
  map.on('move', () => { state.markersDirty = true; });
  map.on('sourcedata', (event) => {
    if (event.sourceId === 'services' || event.sourceId === 'clusters') state.markersDirty = true;
  });
  map.on('render', () => {
    if (state.markersDirty && map.getSource('services') && map.isSourceLoaded(markerSource())) {
      state.markersDirty = false;
      syncMarkers();
    }
  });

  // --- Ward names: HTML labels ----------------------------------------------------------

  /**
   * Ward names are HTML, like the markers: a symbol layer would need glyph
   * files from a font server. They sit on one overlay right above the map's
   * canvas and so under the markers and popups, which MapLibre appends to
   * the same container later; the overlay lets every pointer event through
   * to the map. They are aria-hidden: what a screen reader needs is in the
   * markers' labels and the popups.
   */
  const wardLabelLayer = element('div', 'ketnoi-ward-labels');
  wardLabelLayer.setAttribute('aria-hidden', 'true');
  map.getCanvasContainer().insertBefore(wardLabelLayer, map.getCanvas().nextSibling);
  /** The name of the ward in the middle of a close view, in its corner (see wardCaption). */
  const wardCaptionElement = element('span', 'ketnoi-ward-caption');
  wardCaptionElement.hidden = true;
  wardLabelLayer.append(wardCaptionElement);

  /**
   * The ward_labels features of the loaded tiles, one per ward (a label
   * near a tile's edge is in both tiles), as [code, {name, lngLat}] in code
   * order. The name is in the tiles' language.
   */
  function wardLabelFeatures() {
    const byCode = new Map();
    for (const feature of map.querySourceFeatures('ketnoi', { sourceLayer: 'ward_labels' })) {
      const p = feature.properties || {};
      const geometry = feature.geometry;
      if (typeof p.code !== 'string' || !p.name || byCode.has(p.code)
        || !geometry || geometry.type !== 'Point') continue;
      byCode.set(p.code, { name: String(p.name), lngLat: geometry.coordinates });
    }
    return [...byCode.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }

  /**
   * The name of the ward in the middle of the view when its own label is
   * not shown (its point is out of view, or its name did not fit), from
   * WARD_CAPTION_MIN_ZOOM on: close in, a view can lie wholly inside one
   * ward and would otherwise name no place at all. Empty otherwise.
   */
  function wardCaption(width, height) {
    if (map.getZoom() < WARD_CAPTION_MIN_ZOOM) return '';
    const [ward] = map.queryRenderedFeatures([width / 2, height / 2], { layers: ['wards-fill'] });
    if (!ward || !ward.properties || !ward.properties.name) return '';
    const entry = state.wardLabels.get(ward.properties.code);
    return entry && entry.shown ? '' : String(ward.properties.name);
  }

  /** Centres a label on its point (in pixels of the map). */
  function placeWardLabel(entry, point) {
    const x = Math.round(point.x - entry.width / 2);
    const y = Math.round(point.y - entry.height / 2);
    entry.element.style.transform = `translate(${x}px, ${y}px)`;
  }

  function hideWardLabels() {
    for (const entry of state.wardLabels.values()) {
      entry.shown = false;
      entry.element.hidden = true;
    }
    wardCaptionElement.hidden = true;
  }

  /**
   * Shows the names of the wards in view that fit, from zoom
   * WARD_LABELS_MIN_ZOOM: in code order (a province's city wards usually
   * have its lowest codes), each only where it overlaps no name already
   * placed.
   * Run when the map is idle after a move or new tiles; while the map
   * moves, the names shown just follow it (moveWardLabels).
   */
  function refreshWardLabels() {
    state.wardLabelsDirty = false;
    if (map.getZoom() < WARD_LABELS_MIN_ZOOM) {
      hideWardLabels();
      return;
    }
    const canvas = map.getCanvas();
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    const features = wardLabelFeatures();
    // Wards whose tiles are gone are forgotten; the others keep their element.
    const loaded = new Set(features.map(([code]) => code));
    for (const [code, entry] of state.wardLabels) {
      if (!loaded.has(code)) {
        entry.element.remove();
        state.wardLabels.delete(code);
      }
    }
    const candidates = [];
    for (const [code, feature] of features) {
      const point = map.project(feature.lngLat);
      if (point.x < 0 || point.y < 0 || point.x > width || point.y > height) continue;
      let entry = state.wardLabels.get(code);
      if (!entry) {
        entry = { element: element('span', 'ketnoi-ward-label'), width: 0, height: 0, shown: false };
        entry.element.hidden = true;
        entry.element.dataset.code = code;
        wardLabelLayer.append(entry.element);
        state.wardLabels.set(code, entry);
      }
      entry.lngLat = feature.lngLat;
      if (entry.element.textContent !== feature.name) {
        // New, or the language changed.
        entry.element.textContent = feature.name;
        entry.width = 0;
      }
      candidates.push({ entry, point });
    }
    // New names are measured together: one layout for all of them.
    const unmeasured = candidates.filter((c) => !c.entry.width).map((c) => c.entry);
    for (const entry of unmeasured) {
      entry.element.classList.add('ketnoi-measuring');
      entry.element.hidden = false;
    }
    for (const entry of unmeasured) {
      entry.width = entry.element.offsetWidth;
      entry.height = entry.element.offsetHeight;
    }
    for (const entry of unmeasured) entry.element.classList.remove('ketnoi-measuring');

    const boxes = [];
    const placed = new Map();
    for (const { entry, point } of candidates) {
      if (placed.size >= MAX_WARD_LABELS) break;
      const box = {
        left: point.x - entry.width / 2 - WARD_LABEL_PADDING,
        right: point.x + entry.width / 2 + WARD_LABEL_PADDING,
        top: point.y - entry.height / 2 - WARD_LABEL_PADDING,
        bottom: point.y + entry.height / 2 + WARD_LABEL_PADDING,
      };
      const overlaps = boxes.some((b) => b.left < box.right && box.left < b.right
        && b.top < box.bottom && box.top < b.bottom);
      if (overlaps) continue;
      boxes.push(box);
      placed.set(entry, point);
    }
    for (const entry of state.wardLabels.values()) {
      entry.shown = placed.has(entry);
      entry.element.hidden = !entry.shown;
      if (entry.shown) placeWardLabel(entry, placed.get(entry));
    }
    wardCaptionElement.textContent = wardCaption(width, height);
    wardCaptionElement.hidden = !wardCaptionElement.textContent;
  }

  /**
   * While the map moves, the names shown follow it (none below their
   * zoom); the corner's name waits for the map to stop.
   */
  function moveWardLabels() {
    wardCaptionElement.hidden = true;
    if (map.getZoom() < WARD_LABELS_MIN_ZOOM) {
      hideWardLabels();
      return;
    }
    for (const entry of state.wardLabels.values()) {
      if (entry.shown) placeWardLabel(entry, map.project(entry.lngLat));
    }
  }

  map.on('move', moveWardLabels);
  map.on('moveend', () => { state.wardLabelsDirty = true; });
  map.on('resize', () => { state.wardLabelsDirty = true; });
  // New tiles, or the same tiles in the other language (setTiles).
  map.on('sourcedata', (event) => {
    if (event.sourceId === 'ketnoi') state.wardLabelsDirty = true;
  });
  map.on('idle', () => {
    if (state.wardLabelsDirty) refreshWardLabels();
  });

  // --- Popup ---------------------------------------------------------------------------

  function section(parent, className, label) {
    const block = element('div', `ketnoi-popup-section ${className}`);
    if (label) block.append(element('h3', 'ketnoi-popup-label', label));
    parent.append(block);
    return block;
  }

  function link(href, text, external) {
    const a = element('a', null, text);
    a.href = href;
    if (external) {
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
    }
    return a;
  }

  /** The popup of one service at one location, built from DOM nodes and text only. */
  function popupContent(feature) {
    const p = feature.properties;
    const s = strings();
    const content = element('div', 'ketnoi-popup');
    content.lang = state.lang;
    content.dataset.serviceId = p.service_id;

    content.append(element('h2', 'ketnoi-popup-title', p.name));
    if (p.organization) content.append(element('p', 'ketnoi-popup-organization', p.organization));

    if (Array.isArray(p.categories) && p.categories.length) {
      const list = element('ul', 'ketnoi-popup-categories');
      for (const category of p.categories) {
        list.append(element('li', 'ketnoi-chip', category.label || category.code));
      }
      content.append(list);
    }

    if (p.description) content.append(element('p', 'ketnoi-popup-description', p.description));

    const place = section(content, 'ketnoi-popup-place');
    if (p.location_name) place.append(element('p', 'ketnoi-popup-location', p.location_name));
    if (p.approximate) {
      // A confidential location: never an address here, whatever arrives.
      place.append(element('p', 'ketnoi-popup-approximate', s.approximate));
    } else if (p.address) {
      place.append(element('p', 'ketnoi-popup-address', p.address));
    }
    if (p.province && p.province.name) place.append(element('p', 'ketnoi-popup-province', p.province.name));

    const delivery = [];
    if (p.in_person) delivery.push(s.inPerson);
    if (p.remote) delivery.push(s.remote);
    if (delivery.length) content.append(element('p', 'ketnoi-popup-delivery', delivery.join(' · ')));

    const phones = Array.isArray(p.phones) ? p.phones.filter((phone) => telHref(phone.number)) : [];
    if (phones.length) {
      const list = element('ul', 'ketnoi-popup-phones');
      for (const phone of phones) {
        const item = element('li');
        item.append(link(telHref(phone.number), phone.number, false));
        if (phone.description) item.append(element('span', 'ketnoi-popup-muted', ` — ${phone.description}`));
        list.append(item);
      }
      section(content, 'ketnoi-popup-contact', s.phones).append(list);
    }
    const mail = p.email ? mailtoHref(p.email) : null;
    if (mail) section(content, 'ketnoi-popup-email', s.email).append(link(mail, p.email, false));
    const web = p.url ? safeWebUrl(p.url) : null;
    if (web) section(content, 'ketnoi-popup-website', s.website).append(link(web, p.url, true));

    const hours = Array.isArray(p.opening_hours) ? p.opening_hours : [];
    if (hours.length) {
      const block = section(content, 'ketnoi-popup-hours', s.openingHours);
      const open = openNow(hours);
      const status = element('p', 'ketnoi-open-state', open ? s.openNow : s.closedNow);
      status.dataset.open = String(open);
      block.append(status);
      const list = element('ul', 'ketnoi-hours');
      for (const entry of hours) {
        const item = element('li', null, formatHours(entry, s));
        if (entry.description) item.append(element('span', 'ketnoi-popup-muted', ` — ${entry.description}`));
        list.append(item);
      }
      block.append(list);
    }

    if (p.is_free === true || p.is_free === false) {
      content.append(element('p', 'ketnoi-popup-cost', p.is_free ? s.free : s.notFree));
    }
    return content;
  }

  function openPopup(key) {
    const feature = state.byKey.get(key);
    if (!feature) return;
    state.popupKey = key;
    popup
      .setLngLat(feature.geometry.coordinates)
      .setDOMContent(popupContent(feature))
      .addTo(map);
    const close = popup.getElement() && popup.getElement().querySelector('.maplibregl-popup-close-button');
    if (close) close.setAttribute('aria-label', strings().close);
  }

  // --- Fetching services -----------------------------------------------------------------

  /**
   * The grid step, in degrees, of the bbox sent at `zoom`: 360 / 2^k with
   * k = max(0, floor(zoom) - 1), the width of a Web Mercator tile one zoom
   * level out (at zoom 12, 0.17578125°: about 18 km of longitude and 19.5 km
   * of latitude in Vietnam). The grid starts at 0°, so ±180° is on it too.
   */
  function bboxGridStep(zoom) {
    const level = Math.max(0, Math.floor(zoom + 1e-9) - 1);
    return 360 / 2 ** level;
  }

  /**
   * The view as a bbox parameter: rounded outward to the zoom's grid (see
   * bboxGridStep) and clamped to the world. Privacy first: the box says
   * which grid cells the view touches, never where in them the view, or a
   * "near me" position, is. And nearby views send the very same URL, which
   * a cache in front of the API can answer. The features of the wider box
   * are all shown; those outside the view just have their markers off screen.
   * The step is a power-of-two fraction of 360, so its multiples are exact
   * binary numbers and print exactly (103.88671875, never 103.8867187500001).
   */
  function viewBbox() {
    const bounds = map.getBounds();
    const step = bboxGridStep(map.getZoom());
    const clamp = (v, limit) => Math.max(-limit, Math.min(limit, v));
    const down = (v, limit) => clamp(Math.floor(clamp(v, limit) / step) * step, limit);
    const up = (v, limit) => clamp(Math.ceil(clamp(v, limit) / step) * step, limit);
    let west = down(bounds.getWest(), 180);
    let south = down(bounds.getSouth(), 90);
    let east = up(bounds.getEast(), 180);
    let north = up(bounds.getNorth(), 90);
    // A view exactly on grid lines (or squeezed by the clamp) is at least one cell.
    if (east <= west) east = Math.min(180, west + step);
    if (east <= west) west = Math.max(-180, east - step);
    if (north <= south) north = Math.min(90, south + step);
    if (north <= south) south = Math.max(-90, north - step);
    return [west, south, east, north].join(',');
  }

  function servicesUrl() {
    const query = { bbox: viewBbox(), lang: state.lang, limit: String(PAGE_LIMIT) };
    if (state.category) query.category = state.category;
    return withQuery(location.origin + SERVICES_PATH, query);
  }

  /** The `next` link, only if it stays on our origin. */
  function nextUrl(next) {
    if (!next) return null;
    const url = new URL(next, location.origin);
    return url.origin === location.origin ? url.href : null;
  }

  function isPointFeature(feature) {
    const geometry = feature && feature.geometry;
    return geometry && geometry.type === 'Point' && Array.isArray(geometry.coordinates)
      && geometry.coordinates.length >= 2 && geometry.coordinates.every(Number.isFinite)
      && feature.properties && feature.properties.service_id && feature.properties.location_id;
  }

  /** Up to MAX_PAGES pages; `more` when the API had still more. */
  async function fetchPages(url, signal) {
    const features = [];
    let page = 0;
    let next = url;
    while (next && page < MAX_PAGES) {
      const body = await getJson(next, 'application/geo+json', signal);
      features.push(...(Array.isArray(body.features) ? body.features : []));
      next = nextUrl(body.next);
      page += 1;
    }
    return { features, more: Boolean(next) };
  }

  function setServices(features) {
    state.features = features;
    state.byKey = new Map();
    const slim = [];
    for (const feature of features) {
      if (!isPointFeature(feature)) continue;
      const p = feature.properties;
      const key = `${p.service_id}/${p.location_id}`;
      if (state.byKey.has(key)) continue;
      state.byKey.set(key, feature);
      slim.push({ type: 'Feature', geometry: feature.geometry, properties: { key } });
    }
    // Cluster ids of the old data mean nothing in the new; a service's
    // marker and open popup stay (no flicker on every pan) unless what the
    // API says about it changed.
    const previous = state.previousByKey;
    for (const [key, entry] of state.markers) {
      const pointKey = entry.kind === 'point' ? key.slice('point:'.length) : null;
      if (!pointKey || !sameFeature(previous.get(pointKey), state.byKey.get(pointKey))) {
        entry.marker.remove();
        state.markers.delete(key);
      }
    }
    if (state.popupKey && !sameFeature(previous.get(state.popupKey), state.byKey.get(state.popupKey))) {
      popup.remove();
    }
    state.previousByKey = state.byKey;
    map.getSource('services').setData({ type: 'FeatureCollection', features: slim });
  }

  function sameFeature(a, b) {
    return Boolean(a && b) && JSON.stringify(a) === JSON.stringify(b);
  }

  /**
   * Resolves once the map has processed new data and drawn it. The
   * repaint makes sure there is a frame to wait for, even when nothing
   * changed.
   */
  function mapSettled() {
    return new Promise((resolve) => {
      map.once('idle', resolve);
      map.triggerRepaint();
    });
  }

  /**
   * Resolves once the clusters' tiles for the view are loaded. Checked
   * from the frame after the call on (MapLibre decides in a frame which
   * sources the view uses, and an unused one counts as loaded), on every
   * new tile and on a timer, rather than waiting for the whole map's
   * 'idle', which the base map's tiles and their redrawing may hold back.
   */
  function clustersSettled() {
    return new Promise((resolve) => {
      let timer = null;
      const check = () => {
        if (!map.isSourceLoaded('clusters')) return;
        clearInterval(timer);
        map.off('sourcedata', check);
        resolve();
      };
      map.once('render', () => {
        timer = setInterval(check, 200);
        map.on('sourcedata', check);
        check();
      });
      map.triggerRepaint();
    });
  }

  /** The clusters' tiles for the current category and language (reloaded only if they changed). */
  function updateClusterTiles() {
    const source = map.getSource('clusters');
    const url = clusterTileUrl();
    if (source && state.clusterTiles !== url) {
      state.clusterTiles = url;
      source.setTiles([url]);
    }
  }

  /**
   * Below POINTS_MIN_ZOOM: no services are fetched, and those of a closer
   * view are let go (their markers, their popup), so that what the map
   * holds is only what it shows.
   */
  function clearServices() {
    if (state.controller) state.controller.abort();
    state.controller = null;
    if (!state.features.length && !state.byKey.size) return;
    state.features = [];
    state.byKey = new Map();
    state.previousByKey = state.byKey;
    for (const [key, entry] of state.markers) {
      if (entry.kind !== 'server') {
        entry.marker.remove();
        state.markers.delete(key);
      }
    }
    popup.remove();
    map.getSource('services').setData({ type: 'FeatureCollection', features: [] });
  }

  /**
   * Shows the services for the view, the current filter and language: the
   * server's clusters below POINTS_MIN_ZOOM (MapLibre loads their tiles;
   * this waits for them and makes the markers), and the services in view,
   * fetched, from it. A newer call supersedes an older one still running.
   */
  async function loadServices() {
    const seq = ++state.fetchSeq;
    clearTimeout(state.retryTimer);
    clearTimeout(state.moveTimer);
    if (state.controller) state.controller.abort();
    setState('loading');
    updateClusterTiles();
    if (!pointsMode()) {
      clearServices();
      await clustersSettled();
      if (seq !== state.fetchSeq) return;
      syncMarkers();
      // The counts are the server's, over the whole directory: nothing
      // was left out, there is no need to zoom in to see all.
      moreNote.hidden = true;
      showMessage(null);
      setState('ready');
      return;
    }
    const controller = new AbortController();
    state.controller = controller;
    try {
      const { features, more } = await fetchPages(servicesUrl(), controller.signal);
      if (seq !== state.fetchSeq) return;
      setServices(features);
      await mapSettled();
      if (seq !== state.fetchSeq) return;
      syncMarkers();
      // Past MAX_PAGES only some of the services in view are loaded (a
      // city view with more than MAX_PAGES × PAGE_LIMIT of them), and the
      // markers, clusters included, are of those: the note asks to zoom in.
      moreNote.hidden = !more;
      showMessage(null);
      setState('ready');
    } catch (error) {
      if (seq !== state.fetchSeq || error.name === 'AbortError') return;
      if (error instanceof RateLimited) {
        showMessage(strings().rateLimited(error.seconds));
        state.retryTimer = setTimeout(loadServices, error.seconds * 1000);
      } else {
        console.warn('ketnoi widget: services could not be loaded', error);
        showMessage(strings().loadError);
      }
      setState('error');
    }
  }

  /** After the map stops moving, and only then, fetch for the new view. */
  function scheduleLoad() {
    setState('loading');
    clearTimeout(state.moveTimer);
    state.moveTimer = setTimeout(loadServices, MOVE_DEBOUNCE_MS);
  }

  // --- Categories and language ---------------------------------------------------------------

  function categoryLabel(category) {
    return (state.lang === 'en' ? category.label_en : category.label_vi) || category.code;
  }

  function renderCategories() {
    const options = [element('option', null, strings().allCategories)];
    options[0].value = '';
    // The coverage view is of one category (see ensureCoverageCategory).
    options[0].disabled = Boolean(state.coverage);
    for (const category of state.categories) {
      const option = element('option', null, categoryLabel(category));
      option.value = category.code;
      options.push(option);
    }
    categorySelect.replaceChildren(...options);
    categorySelect.value = state.category;
  }

  async function loadCategories() {
    try {
      const categories = await getJson(location.origin + CATEGORIES_PATH, 'application/json');
      state.categories = Array.isArray(categories) ? categories.filter((c) => c && c.code) : [];
    } catch (error) {
      console.warn('ketnoi widget: categories could not be loaded', error);
      showMessage(strings().categoriesError);
    }
    // A category in the URL that does not exist would only fail the fetch.
    if (state.categories.length && !state.categories.some((c) => c.code === state.category)) {
      state.category = '';
    }
    renderCategories();
  }

  /**
   * Keeps lang, category and the coverage view's group in the address, so
   * a reload or a shared link shows the same.
   */
  function updateAddress() {
    const url = new URL(location.href);
    url.searchParams.set('lang', state.lang);
    if (state.category) url.searchParams.set('category', state.category);
    else url.searchParams.delete('category');
    if (state.coverage) url.searchParams.set('coverage', state.coverage);
    else url.searchParams.delete('coverage');
    history.replaceState(null, '', url);
  }

  function applyLanguage() {
    const s = strings();
    document.documentElement.lang = state.lang;
    document.title = s.title;
    for (const node of root.querySelectorAll('[data-i18n]')) {
      node.textContent = s[node.dataset.i18n];
    }
    langButton.textContent = s.switchLanguage;
    langButton.lang = state.lang === 'vi' ? 'en' : 'vi';
    langButton.setAttribute('aria-label', s.switchLanguageLabel);
    mapContainer.setAttribute('aria-label', s.mapLabel);
    // MapLibre's own controls take their strings once, when created.
    const titled = [['.maplibregl-ctrl-zoom-in', s.zoomInButton], ['.maplibregl-ctrl-zoom-out', s.zoomOutButton]];
    for (const [selector, text] of titled) {
      const button = mapContainer.querySelector(selector);
      if (button) {
        button.title = text;
        button.setAttribute('aria-label', text);
      }
    }
    const desktop = mapContainer.querySelector('.maplibregl-desktop-message');
    if (desktop) desktop.textContent = s.cooperativeDesktop;
    const mobile = mapContainer.querySelector('.maplibregl-mobile-message');
    if (mobile) mobile.textContent = s.cooperativeMobile;
    if (state.positionMarker) state.positionMarker.getElement().setAttribute('aria-label', s.yourPosition);
    renderCategories();
    renderCoverageControls();
    renderLegend();
    const source = map.getSource('ketnoi');
    if (source) source.setTiles([tileUrl()]);
  }

  categorySelect.addEventListener('change', () => {
    state.category = categorySelect.value;
    updateAddress();
    loadServices();
    if (state.coverage) showCoverage();
  });

  langButton.addEventListener('click', () => {
    state.lang = state.lang === 'vi' ? 'en' : 'vi';
    popup.remove();
    // Markers carry labels in the old language.
    for (const entry of state.markers.values()) entry.marker.remove();
    state.markers.clear();
    showMessage(null);
    applyLanguage();
    updateAddress();
    loadServices();
  });

  // --- Coverage view ---------------------------------------------------------------------

  /**
   * The legend, a MapLibre control in the bottom left corner, made once
   * and filled again for each language and choice (renderLegend).
   */
  const legend = element('div', 'ketnoi-legend maplibregl-ctrl');
  legend.id = 'ketnoi-legend';
  legend.setAttribute('role', 'group');
  legend.setAttribute('aria-labelledby', 'ketnoi-legend-title');
  legend.hidden = true;
  map.addControl({ onAdd: () => legend, onRemove: () => legend.remove() }, 'bottom-left');

  function setCoverageState(value) {
    root.dataset.coverage = value;
  }

  function coverageUrl(category, group) {
    const query = { category, radius_km: String(COVERAGE_RADIUS_KM), ...GROUPS[group] };
    return withQuery(location.origin + COVERAGE_PATH, query);
  }

  /**
   * The band of every ward of the country for one category and group, as
   * Map(ward code → band). Asked once per (category, group) and kept: the
   * whole country is about 1 MB of JSON and a fraction of a second for
   * the server, and switching back and forth then costs nothing. A failed
   * request is forgotten, so that it is asked again.
   */
  function loadCoverage(category, group) {
    const key = `${category}|${group}`;
    if (!state.coverageCache.has(key)) {
      const promise = getJson(coverageUrl(category, group), 'application/json').then((body) => {
        const bands = new Map();
        for (const ward of Array.isArray(body.wards) ? body.wards : []) {
          const reach = ward && Array.isArray(ward.categories)
            ? ward.categories.find((c) => c && c.category === category)
            : null;
          if (reach && /^\d{5}$/.test(ward.code) && BANDS.includes(reach.nearest_in_person_band)) {
            bands.set(ward.code, reach.nearest_in_person_band);
          }
        }
        return bands;
      });
      promise.catch(() => state.coverageCache.delete(key));
      state.coverageCache.set(key, promise);
    }
    return state.coverageCache.get(key);
  }

  /**
   * The coverage view is of one category, and the widget's category filter
   * is that category, so that the markers shown are the services the
   * colours are about. Turned on while the filter says "all", it takes the
   * first category of the list rather than showing nothing until the user
   * finds the filter; "all" cannot be chosen while it is on. Returns
   * whether the filter changed.
   */
  function ensureCoverageCategory() {
    if (!state.coverage || state.category || !state.categories.length) return false;
    state.category = state.categories[0].code;
    return true;
  }

  /** What the legend says under the bands, if anything: loading, an error, or "zoom in". */
  function coverageStatus() {
    const s = strings();
    switch (root.dataset.coverage) {
      case 'loading': return s.coverageLoading;
      case 'error':
        if (!state.category) return s.coverageChooseCategory;
        return state.coverageError instanceof RateLimited
          ? s.rateLimited(state.coverageError.seconds)
          : s.coverageError;
      default:
        return map.getZoom() < WARDS_MIN_ZOOM ? s.coverageZoomIn : '';
    }
  }

  function renderLegendStatus() {
    const status = legend.querySelector('.ketnoi-legend-status');
    if (!status) return;
    status.textContent = coverageStatus();
    status.hidden = !status.textContent;
  }

  /** The legend in the current language: title, the five bands, what they measure. */
  function renderLegend() {
    legend.hidden = !state.coverage;
    if (!state.coverage) {
      legend.replaceChildren();
      return;
    }
    const s = strings();
    legend.lang = state.lang;
    const category = state.categories.find((c) => c.code === state.category);
    const categoryText = category ? categoryLabel(category) : state.category;
    const title = element('p', 'ketnoi-legend-title', s.legendTitle(categoryText, s.groups[state.coverage]));
    title.id = 'ketnoi-legend-title';
    const list = element('ul', 'ketnoi-legend-bands');
    BANDS.forEach((band, i) => {
      const item = element('li', 'ketnoi-legend-band');
      item.dataset.band = band;
      const swatch = element('span', 'ketnoi-legend-swatch');
      swatch.style.backgroundColor = BAND_COLOURS[band];
      swatch.setAttribute('aria-hidden', 'true');
      item.append(swatch, element('span', 'ketnoi-legend-label', s.bands[i]));
      list.append(item);
    });
    const explain = element('p', 'ketnoi-legend-explain', s.legendExplain);
    const status = element('p', 'ketnoi-legend-status');
    status.setAttribute('aria-live', 'polite');
    legend.replaceChildren(title, list, explain, status);
    renderLegendStatus();
  }

  /** The toolbar's coverage button and group choice, in the current language. */
  function renderCoverageControls() {
    const s = strings();
    coverageButton.setAttribute('aria-pressed', String(Boolean(state.coverage)));
    coverageButton.title = s.coverageLabel;
    groupField.hidden = !state.coverage;
    const options = GROUP_CODES.map((code) => {
      const option = element('option', null, s.groups[code]);
      option.value = code;
      return option;
    });
    groupSelect.replaceChildren(...options);
    groupSelect.value = state.coverage || state.lastGroup;
  }

  /**
   * Colours the wards for the current category and group, or hides the
   * colours when the view is off. The bands go into each ward's feature
   * state (by its numeric id, see promoteId), which MapLibre keeps per id
   * and applies to every tile loaded later, in either language. Until the
   * answer is there the colours are hidden: those of the previous choice
   * under the new legend would mislead.
   */
  async function showCoverage() {
    const seq = ++state.coverageSeq;
    clearTimeout(state.coverageRetryTimer);
    state.coverageError = null;
    map.setPaintProperty('wards-fill', 'fill-opacity', 0);
    if (!state.coverage) {
      setCoverageState('off');
      renderLegend();
      return;
    }
    if (!state.category) {
      // Only when the categories could not be loaded.
      setCoverageState('error');
      renderLegend();
      return;
    }
    setCoverageState('loading');
    renderLegend();
    try {
      const bands = await loadCoverage(state.category, state.coverage);
      if (seq !== state.coverageSeq) return;
      const target = { source: 'ketnoi', sourceLayer: 'wards' };
      map.removeFeatureState(target);
      for (const [code, band] of bands) {
        map.setFeatureState({ ...target, id: Number(code) }, { band });
      }
      map.setPaintProperty('wards-fill', 'fill-opacity', COVERAGE_OPACITY);
      setCoverageState('ready');
    } catch (error) {
      if (seq !== state.coverageSeq) return;
      state.coverageError = error;
      if (error instanceof RateLimited) {
        state.coverageRetryTimer = setTimeout(showCoverage, error.seconds * 1000);
      } else {
        console.warn('ketnoi widget: coverage could not be loaded', error);
      }
      setCoverageState('error');
    }
    renderLegendStatus();
  }

  /** After a change of the coverage choice: controls, address, colours, and the services if the filter changed. */
  function coverageChanged() {
    const categoryChanged = ensureCoverageCategory();
    renderCategories();
    renderCoverageControls();
    updateAddress();
    if (!state.started) return; // ready() shows it
    showCoverage();
    if (categoryChanged) loadServices();
  }

  coverageButton.addEventListener('click', () => {
    state.coverage = state.coverage ? null : state.lastGroup;
    coverageChanged();
  });

  groupSelect.addEventListener('change', () => {
    if (!GROUP_CODES.includes(groupSelect.value)) return;
    state.coverage = groupSelect.value;
    state.lastGroup = groupSelect.value;
    coverageChanged();
  });

  map.on('zoomend', renderLegendStatus);

  // --- Near me ---------------------------------------------------------------------------------

  function showPosition(lngLat) {
    if (!state.positionMarker) {
      const dot = element('div', 'ketnoi-position');
      dot.setAttribute('role', 'img');
      dot.setAttribute('aria-label', strings().yourPosition);
      state.positionMarker = new maplibregl.Marker({ element: dot });
    }
    state.positionMarker.setLngLat(lngLat).addTo(map);
  }

  nearMeButton.addEventListener('click', () => {
    if (!('geolocation' in navigator) || !window.isSecureContext) {
      showMessage(strings().geoUnavailable);
      return;
    }
    nearMeButton.setAttribute('aria-busy', 'true');
    // Privacy: the position itself never leaves the browser. It is shown
    // exactly only by the local "you are here" marker, which makes no
    // request. The map flies to the position snapped to a 0.05° grid
    // (about 5 km), and the server then sees only the bbox of that view,
    // as for any pan or zoom, snapped outward to the grid of the zoom (see
    // viewBbox: 360/2^11 = 0.17578125°, about 18-20 km, at zoom 12).
    navigator.geolocation.getCurrentPosition(
      (position) => {
        nearMeButton.removeAttribute('aria-busy');
        showMessage(null);
        const lngLat = [position.coords.longitude, position.coords.latitude];
        showPosition(lngLat);
        const snap = (v) => Math.round(v / NEAR_ME_GRID_DEG) * NEAR_ME_GRID_DEG;
        const center = [snap(lngLat[0]), snap(lngLat[1])];
        map.flyTo({ center, zoom: NEAR_ME_ZOOM });
      },
      (error) => {
        nearMeButton.removeAttribute('aria-busy');
        showMessage(error.code === error.PERMISSION_DENIED ? strings().geoDenied : strings().geoFailed);
      },
      { enableHighAccuracy: false, timeout: 20000, maximumAge: 5 * 60 * 1000 },
    );
  });

  // --- Start ------------------------------------------------------------------------------------

  const styleLoaded = new Promise((resolve) => map.once('load', resolve));

  /** Resolves after the first services fetch has settled (shown, or failed with a message). */
  const ready = (async () => {
    setCoverageState(state.coverage ? 'loading' : 'off');
    applyLanguage();
    await Promise.all([styleLoaded, loadCategories()]);
    addServicesSource();
    // A coverage view from the address needs a category before the
    // services are fetched for it.
    if (ensureCoverageCategory()) updateAddress();
    applyLanguage();
    state.started = true;
    showCoverage();
    await loadServices();
    map.on('moveend', scheduleLoad);
  })();

  /** For tests and for scripts of pages on the same origin. */
  window.ketnoiWidget = {
    map,
    ready,
    /** The features of the last completed fetch, exactly as the API sent them (none below POINTS_MIN_ZOOM). */
    lastFeatures: () => state.features.slice(),
    /** How many services fetches have settled so far (see data-state). */
    settledCount: () => state.settledCount,
    language: () => state.lang,
    category: () => state.category,
    /** The coverage view: its group (null when off), category, and data-coverage. */
    coverage: () => ({ group: state.coverage, category: state.category, state: root.dataset.coverage }),
    /** The ward names shown now, as on the page. */
    wardLabels: () => [...state.wardLabels.values()].filter((e) => e.shown).map((e) => e.element.textContent),
    /** Exposed so that tests can check the rules without waiting for the clock. */
    openNow,
  };
}());
