"""Static parts of the planner report: CSS, JavaScript and server-side SVG charts.

Everything is inlined so the page works offline (no CDN, no network): summary
charts are SVG drawn here in Python; the per-item chart is SVG drawn by the
page's own vanilla JavaScript from a JSON block, so one page holds every item
without one SVG per item.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

__all__ = ["CSS", "ERROR_TRAP_JS", "PAGE_JS", "svg_bars", "svg_frontier", "fmt_number"]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header{background:#1d3557;color:#fff;padding:14px 24px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;font-size:13px;opacity:.85}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:12px 16px;margin-bottom:16px}
h2{font-size:16px;margin:0 0 10px}h3{font-size:14px;margin:12px 0 6px}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #dde2e8;border-radius:6px;padding:8px 12px;min-width:150px}
.card .v{font-size:20px;font-weight:600}.card .l{font-size:12px;color:#5b6775}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{border-bottom:1px solid #e6e9ee;padding:3px 6px;text-align:right;white-space:nowrap}
th{background:#eef1f5;position:sticky;top:0}
td.t,th.t{text-align:left}td.reasons{white-space:normal;text-align:left;min-width:260px}
#items-table th{cursor:pointer;user-select:none}#items-table th[data-dir=asc]::after{content:" \\25B2"}
#items-table th[data-dir=desc]::after{content:" \\25BC"}
#items-table tbody tr{cursor:pointer}#items-table tbody tr:hover{background:#f0f6ff}
#items-table tbody tr.sel{background:#dcebff}
.scroll{max-height:480px;overflow:auto}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.controls{display:flex;gap:10px;align-items:center;margin-bottom:8px;font-size:13px}
.controls input{padding:3px 6px;width:220px}
.muted{color:#5b6775;font-size:12px}
svg text{font-size:11px;fill:#33404d}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.sw{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:4px}
#js-status[data-errors]:not([data-errors="0"]){color:#b00020}
"""

# Installed first, before any other script, so that errors anywhere in the page
# are counted: the test reads the count back from the dumped DOM.
ERROR_TRAP_JS = """
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push(String(e.message || e));
  var el = document.getElementById('js-status');
  if (el) { el.setAttribute('data-errors', String(window.__errors.length)); el.textContent = 'script errors: ' + window.__errors.join('; '); }
});
"""

PAGE_JS = r"""
(function () {
  var DATA = JSON.parse(document.getElementById('report-data').textContent);
  var table = document.getElementById('items-table');
  var tbody = table.tBodies[0];
  var rows = Array.prototype.slice.call(tbody.rows);
  var filterBox = document.getElementById('filter');
  var policySel = document.getElementById('policy-filter');
  var countEl = document.getElementById('row-count');
  var NS = 'http://www.w3.org/2000/svg';

  function cellValue(row, idx) {
    var c = row.cells[idx];
    var v = c.getAttribute('data-v');
    if (v !== null && v !== '') { var n = Number(v); if (!isNaN(n)) return n; }
    return c.textContent.toLowerCase();
  }
  function sortBy(col, dir) {
    var ths = table.tHead.rows[0].cells, idx = -1;
    for (var i = 0; i < ths.length; i++) { if (ths[i].getAttribute('data-col') === col) idx = i; ths[i].removeAttribute('data-dir'); }
    if (idx < 0) return;
    ths[idx].setAttribute('data-dir', dir);
    var sign = dir === 'desc' ? -1 : 1;
    rows.sort(function (a, b) {
      var x = cellValue(a, idx), y = cellValue(b, idx);
      if (typeof x !== typeof y) return (typeof x === 'number' ? -1 : 1);
      return x < y ? -sign : x > y ? sign : 0;
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
  }
  function applyFilter() {
    var q = filterBox.value.trim().toLowerCase(), p = policySel.value, shown = 0;
    rows.forEach(function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) && (!p || r.getAttribute('data-policy') === p);
      r.hidden = !ok; if (ok) shown++;
    });
    countEl.textContent = shown + ' of ' + rows.length + ' items shown';
    countEl.setAttribute('data-shown', String(shown));
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    th.addEventListener('click', function () {
      sortBy(th.getAttribute('data-col'), th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc');
    });
  });
  filterBox.addEventListener('input', applyFilter);
  policySel.addEventListener('change', applyFilter);
  rows.forEach(function (r) { r.addEventListener('click', function () { drawItem(r.getAttribute('data-uid')); }); });

  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function pathOf(xs, ys, sx, sy, step) {
    var d = '', pen = false;
    for (var i = 0; i < xs.length; i++) {
      if (ys[i] === null || isNaN(ys[i])) { pen = false; continue; }
      var X = sx(xs[i]).toFixed(1), Y = sy(ys[i]).toFixed(1);
      if (!pen) { d += 'M' + X + ' ' + Y; pen = true; }
      else if (step) { d += 'H' + X + 'V' + Y; }
      else { d += 'L' + X + ' ' + Y; }
    }
    return d;
  }
  function drawItem(uid) {
    var s = DATA.series[uid], box = document.getElementById('item-chart');
    rows.forEach(function (r) { r.classList.toggle('sel', r.getAttribute('data-uid') === uid); });
    document.getElementById('item-title').textContent = uid || '';
    box.innerHTML = '';
    if (!s) { box.textContent = 'no series data for ' + uid; return; }
    var W = 900, H = 300, L = 50, R = 10, T = 10, B = 28;
    var all = [].concat(s.h.t, s.f.t, s.s.t).map(Date.parse);
    var ymax = Math.max.apply(null, [1].concat(s.h.y, s.f.hi, s.f.y, s.s.y, [s.S || 0, s.s_ || 0]).filter(function (v) { return v !== null && !isNaN(v); }));
    var ymin = Math.min.apply(null, [0].concat(s.s.y).filter(function (v) { return v !== null && !isNaN(v); }));
    var x0 = Math.min.apply(null, all), x1 = Math.max.apply(null, all);
    if (!(x1 > x0)) { x1 = x0 + 1; }
    var sx = function (t) { return L + (Date.parse(t) - x0) / (x1 - x0) * (W - L - R); };
    var sy = function (v) { return T + (1 - (v - ymin) / (ymax - ymin || 1)) * (H - T - B); };
    var svg = el('svg', {width: W, height: H, viewBox: '0 0 ' + W + ' ' + H, 'class': 'item-svg', 'data-uid': uid}, box);
    for (var k = 0; k <= 4; k++) {
      var v = ymin + (ymax - ymin) * k / 4;
      el('line', {x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: '#e6e9ee'}, svg);
      el('text', {x: L - 4, y: sy(v) + 4, 'text-anchor': 'end'}, svg).textContent = v.toFixed(v < 10 ? 1 : 0);
    }
    [x0, (x0 + x1) / 2, x1].forEach(function (t, j) {
      var d = new Date(t).toISOString().slice(0, 10);
      el('text', {x: L + (t - x0) / (x1 - x0) * (W - L - R), y: H - 8, 'text-anchor': ['start', 'middle', 'end'][j]}, svg).textContent = d;
    });
    if (s.f.t.length && s.f.lo.length) {
      var up = pathOf(s.f.t, s.f.hi, sx, sy, false);
      var lo = s.f.t.slice().reverse(), lov = s.f.lo.slice().reverse();
      el('path', {d: up + pathOf(lo, lov, sx, sy, false).replace(/^M/, 'L') + 'Z', fill: '#f4a26155', stroke: 'none', 'class': 'series-band'}, svg);
    }
    el('path', {d: pathOf(s.h.t, s.h.y, sx, sy, false), fill: 'none', stroke: '#1d3557', 'stroke-width': 1.2, 'class': 'series-history'}, svg);
    if (s.f.t.length) el('path', {d: pathOf(s.f.t, s.f.y, sx, sy, false), fill: 'none', stroke: '#e76f51', 'stroke-width': 1.6, 'class': 'series-forecast'}, svg);
    if (s.s.t.length) el('path', {d: pathOf(s.s.t, s.s.y, sx, sy, true), fill: 'none', stroke: '#2a9d8f', 'stroke-width': 1.2, 'class': 'series-onhand'}, svg);
    [['s_', '#9b2226', 'reorder point s'], ['S', '#6a4c93', 'order-up-to S']].forEach(function (p) {
      var v = s[p[0]];
      if (v !== null && v !== undefined && !isNaN(v)) {
        el('line', {x1: L, x2: W - R, y1: sy(v), y2: sy(v), stroke: p[1], 'stroke-dasharray': '5 4', 'class': 'level-' + p[0]}, svg);
        el('text', {x: W - R - 2, y: sy(v) - 3, 'text-anchor': 'end'}, svg).textContent = p[2] + ' = ' + v;
      }
    });
  }
  window.stockwiseReport = {sortBy: sortBy, applyFilter: applyFilter, drawItem: drawItem};

  // State from the URL hash, e.g. #sort=expected_total_cost&dir=desc&filter=SKU001&item=SKU001@S01
  var hash = {};
  location.hash.replace(/^#/, '').split('&').forEach(function (kv) {
    var p = kv.split('='); if (p[0]) hash[decodeURIComponent(p[0])] = decodeURIComponent(p[1] || '');
  });
  if (hash.sort) sortBy(hash.sort, hash.dir === 'desc' ? 'desc' : 'asc');
  if (hash.filter) filterBox.value = hash.filter;
  if (hash.policy) policySel.value = hash.policy;
  applyFilter();
  var first = rows.filter(function (r) { return !r.hidden; })[0];
  drawItem(hash.item || (first ? first.getAttribute('data-uid') : DATA.first));
  var st = document.getElementById('js-status');
  if (!st.hasAttribute('data-errors')) st.setAttribute('data-errors', '0');
  st.setAttribute('data-ready', '1');
})();
"""


def fmt_number(value: float, digits: int = 0) -> str:
    """Thousands-separated number; an en dash for missing values."""
    if value is None or not np.isfinite(value):
        return "\u2013"
    return f"{value:,.{digits}f}"


def svg_bars(
    labels: Sequence[str], values: Sequence[float], colors: Sequence[str], width: int = 420, title: str = ""
) -> str:
    """Horizontal bar chart as an inline SVG string (values >= 0)."""
    vals = np.nan_to_num(np.asarray(values, dtype=float), nan=0.0)
    top = max(float(vals.max()) if vals.size else 0.0, 1e-9)
    bar_h, left, height = 22, 110, 26 * len(labels) + 10
    parts = [f'<svg class="chart bars" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    for i, (label, v, c) in enumerate(zip(labels, vals, colors, strict=True)):
        y = 5 + 26 * i
        w = (width - left - 80) * v / top
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{c}">'
            f"<title>{html.escape(label)}: {fmt_number(v)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 15}">{fmt_number(v)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def svg_frontier(
    service: np.ndarray, value: np.ndarray, cost: np.ndarray, chosen: np.ndarray, width: int = 560, height: int = 300
) -> str:
    """Efficient frontier: inventory value (x) against service (y); cost in tooltips."""
    left, right, top, bottom = 70, 14, 12, 36
    x0, x1 = float(np.nanmin(value)), float(np.nanmax(value))
    y0, y1 = float(np.nanmin(service)), float(np.nanmax(service))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 0.01)

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * (width - left - right)

    def sy(v: float) -> float:
        return top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom)

    order = np.argsort(value, kind="stable")
    line = " ".join(f"{sx(value[i]):.1f},{sy(service[i]):.1f}" for i in order)
    parts = [
        f'<svg class="chart frontier" width="{width}" height="{height}" role="img" aria-label="efficient frontier">',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#999"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#999"/>',
        f'<polyline points="{line}" fill="none" stroke="#1d3557" stroke-width="1.5"/>',
    ]
    for i in order:
        fill = "#e76f51" if chosen[i] else "#1d3557"
        r = 6 if chosen[i] else 3.5
        parts.append(
            f'<circle class="frontier-point" cx="{sx(value[i]):.1f}" cy="{sy(service[i]):.1f}" r="{r}" '
            f'fill="{fill}"><title>service {service[i]:.3f}, inventory value '
            f"{fmt_number(value[i])}, cost {fmt_number(cost[i])}</title></circle>"
        )
    for frac in (0.0, 0.5, 1.0):
        xv, yv = x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)
        parts.append(
            f'<text x="{sx(xv):.1f}" y="{height - bottom + 14}" text-anchor="middle">{fmt_number(xv)}</text>'
            f'<text x="{left - 5}" y="{sy(yv) + 4:.1f}" text-anchor="end">{yv:.3f}</text>'
        )
    parts.append(
        f'<text x="{(left + width) / 2:.0f}" y="{height - 4}" text-anchor="middle">inventory value</text>'
        f'<text x="12" y="{top + 8}" text-anchor="start">service</text></svg>'
    )
    return "".join(parts)
