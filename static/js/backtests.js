/* Market7 backtest pages: the run's charts (lightweight-charts 5, via Market7 in market7.js).
 *
 *   [data-bt-line]     one line/area from a json_script id (data-source: [{time, value}]),
 *                      data-kind="area"|"baseline" (filled down from 0), data-color,
 *                      data-precision (decimals, computed server-side by strategies.charts.axis_precision),
 *                      data-unit ("%" or a currency shown after the value)
 *   [data-bt-compare]  several lines from a json_script id (data-source: [{label, color, points}])
 *   [data-bt-price]    candles + trade markers from data-url (chart.json); a <select data-bt-symbol>
 *                      switches the symbol of a multi-pair run
 *
 * Every chart opens on the whole run: fitContent with a minimum bar spacing small enough that
 * thousands of bars fit the width (lightweight-charts' default 0.5 px would keep the last weeks).
 * Each element gets el._m7chart = {chart, series, points} (tests read the visible range from it).
 */
(function () {
  "use strict";

  var LWC = function () { return window.LightweightCharts; };
  var MIN_BAR_SPACING = 0.001;

  function fitAll(chart) {
    chart.applyOptions({ timeScale: { minBarSpacing: MIN_BAR_SPACING } });
    chart.timeScale().fitContent();
  }

  function baseChart(el) {
    return window.Market7.chart(el, { timeScale: { minBarSpacing: MIN_BAR_SPACING } });
  }

  /* A price format with `precision` decimals and an optional unit; "-0.0" prints as "0.0". */
  function priceFormat(precision, unit) {
    var p = isNaN(precision) ? 2 : precision;
    var suffix = unit ? (unit === "%" ? "%" : " " + unit) : "";
    return {
      type: "custom", minMove: Math.pow(10, -p),
      formatter: function (v) {
        if (Math.abs(v) < 0.5 * Math.pow(10, -p)) v = 0;
        return v.toLocaleString("en-US", { minimumFractionDigits: p, maximumFractionDigits: p }) + suffix;
      },
    };
  }

  function readJson(id) {
    var src = document.getElementById(id);
    return src ? JSON.parse(src.textContent || "[]") : null;
  }

  function initLine(el) {
    if (el._m7chart || !LWC()) return;
    var rows = readJson(el.dataset.source);
    if (!rows) return;
    var chart = baseChart(el);
    var color = el.dataset.color || "#4c8dff";
    var fmt = priceFormat(parseInt(el.dataset.precision, 10), el.dataset.unit || "");
    var series;
    if (el.dataset.kind === "baseline") {
      series = chart.addSeries(LWC().BaselineSeries, {
        baseValue: { type: "price", price: 0 }, priceFormat: fmt, lineWidth: 2,
        topLineColor: "rgba(0,0,0,0)", topFillColor1: "rgba(0,0,0,0)", topFillColor2: "rgba(0,0,0,0)",
        bottomLineColor: color, bottomFillColor1: color + "10", bottomFillColor2: color + "66" });
    } else {
      series = chart.addSeries(LWC().AreaSeries, { lineColor: color, lineWidth: 2, priceFormat: fmt,
        topColor: color + "55", bottomColor: color + "05" });
    }
    series.setData(rows);
    fitAll(chart);
    el._m7chart = { chart: chart, series: series, points: rows.length };
    el.dataset.points = String(rows.length);
  }

  function initCompare(el) {
    if (el._m7chart || !LWC()) return;
    var runs = readJson(el.dataset.source);
    if (!runs) return;
    var chart = baseChart(el);
    var fmt = priceFormat(parseInt(el.dataset.precision, 10), el.dataset.unit || "");
    var all = [], points = 0;
    runs.forEach(function (r) {
      var s = chart.addSeries(LWC().LineSeries, { color: r.color, lineWidth: 2, priceFormat: fmt, title: r.label });
      s.setData(r.points);
      all.push(s);
      points = Math.max(points, r.points.length);
    });
    fitAll(chart);
    el._m7chart = { chart: chart, series: all[0], all: all, points: points };
    el.dataset.series = String(all.length);
  }

  function initPrice(el) {
    if (el._m7chart || !LWC()) return;
    var legend = el.dataset.legend ? document.querySelector(el.dataset.legend) : null;
    var c = window.Market7.candleChart(el, { precision: parseInt(el.dataset.precision || "2", 10), legend: legend });
    c.chart.applyOptions({ timeScale: { minBarSpacing: MIN_BAR_SPACING } });
    var select = document.querySelector("[data-bt-symbol]");
    var api = { chart: c.chart, series: c.candles, points: 0 };
    function load() {
      var sym = select ? select.value : "";
      el.dataset.loaded = "false";
      return fetch(el.dataset.url + (sym ? "?symbol=" + encodeURIComponent(sym) : ""),
        { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
        .then(function (body) {
          c.candles.applyOptions({ priceFormat: { type: "price", precision: body.precision, minMove: Math.pow(10, -body.precision) } });
          c.setData(body.candles || []);
          c.setMarkers(body.markers || []);
          fitAll(c.chart);
          api.points = (body.candles || []).length;
          el.dataset.symbol = body.symbol;
          el.dataset.markers = String((body.markers || []).length);
          el.dataset.loaded = "true";
        })
        .catch(function (err) { el.dataset.error = String(err); });
    }
    el._m7chart = api;
    if (select) select.addEventListener("change", load);
    load();
  }

  function init(root) {
    root.querySelectorAll("[data-bt-line]").forEach(initLine);
    root.querySelectorAll("[data-bt-compare]").forEach(initCompare);
    root.querySelectorAll("[data-bt-price]").forEach(initPrice);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });

  window.Market7Backtests = { init: init };
})();
