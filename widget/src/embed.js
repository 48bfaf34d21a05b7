/*
 * Kết Nối map widget, embedded with one script tag:
 *
 *   <script src="https://HOST/widget/embed.js"
 *           data-lang="en" data-category="shelter"
 *           data-bbox="103.8,22.3,104.1,22.6" data-height="480" async></script>
 *
 * It puts an <iframe> of https://HOST/widget right where the tag is. Every
 * data- attribute is optional: data-lang (vi, the default, or en),
 * data-category (a category code, see GET /v1/categories), data-bbox
 * (minLon,minLat,maxLon,maxLat: the first view; default all of Vietnam),
 * data-height (pixels, default 480) and data-title (the iframe's title
 * for screen readers).
 *
 * Without JavaScript on the host page, the plain iframe does the same:
 *
 *   <iframe src="https://HOST/widget?lang=en&category=shelter&bbox=103.8,22.3,104.1,22.6"
 *           title="Map of support services" width="100%" height="480"
 *           style="border:0" loading="lazy" allow="geolocation"></iframe>
 *
 * allow="geolocation" lets the widget's "Near me" button ask for the
 * visitor's position; without it the button says location is unavailable.
 */
(function () {
  'use strict';

  // Set while this script runs for the first time, async or not; null in
  // modules or when called later, where there is no place to insert at.
  const script = document.currentScript;
  if (!script || !script.src) return;

  const DEFAULT_HEIGHT = 480;
  const MIN_HEIGHT = 240;
  const MAX_HEIGHT = 2000;
  const TITLES = { vi: 'Bản đồ dịch vụ hỗ trợ — Kết Nối', en: 'Map of support services — Kết Nối' };

  const data = script.dataset;
  const origin = new URL(script.src, document.baseURI).origin;

  const params = new URLSearchParams();
  for (const name of ['lang', 'category', 'bbox']) {
    if (data[name]) params.set(name, data[name].trim());
  }

  let height = Number.parseInt(data.height, 10);
  if (!Number.isFinite(height)) height = DEFAULT_HEIGHT;
  height = Math.min(MAX_HEIGHT, Math.max(MIN_HEIGHT, height));

  const query = params.toString();
  const iframe = document.createElement('iframe');
  iframe.src = `${origin}/widget${query ? `?${query}` : ''}`;
  iframe.title = data.title || TITLES[data.lang === 'en' ? 'en' : 'vi'];
  iframe.loading = 'lazy';
  iframe.allow = 'geolocation';
  iframe.width = '100%';
  iframe.height = String(height);
  iframe.className = 'ketnoi-widget-frame';
  iframe.style.display = 'block';
  iframe.style.width = '100%';
  iframe.style.height = `${height}px`;
  iframe.style.border = '0';

  script.parentNode.insertBefore(iframe, script);
}());
