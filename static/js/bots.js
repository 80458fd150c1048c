/* Market7 bot pages: live refresh over the ONE websocket, and the pages' charts.
 *
 * Live (DESIGN.md §4): {% block live %} holds <div id="live" hx-ext="ws" ws-connect="/ws/live/"
 * data-live-url="/live/?view=…">. The htmx ws extension owns the socket (and reconnects with
 * backoff). The consumer sends JSON events ({event, data}, docs/bots.md); for those we cancel
 * the extension's HTML swap (htmx:wsBeforeMessage) and instead GET data-live-url, whose
 * response is server-rendered fragments with hx-swap-oob ids — so every value on the page is
 * rendered by Django. Refreshes are coalesced (at most one in flight, one queued). After a
 * reconnect we refresh once (events may have been missed while the socket was down).
 * A message that is not JSON is left to the extension (server-rendered fragments also work).
 * Each handled event is also dispatched as a DOM event "m7:live" (detail = {event, data}).
 *
 * Charts (lightweight-charts 5, via Market7 in market7.js):
 *   [data-equity-chart]  area chart of {series: [{time, equity, pnl}]} from data-url;
 *                        data-field="equity"|"pnl"; re-fed on every live refresh
 *   [data-bot-chart]     candles + fill markers from data-url (?symbol= via [data-symbol-tab])
 *   (backtest charts live in backtests.js)
 */
(function () {
  "use strict";

  var LWC = function () { return window.LightweightCharts; };
  var equityCharts = [];
  var botCharts = [];

  function baseChart(el) {
    return window.Market7.chart(el);
  }

  // -- equity chart --------------------------------------------------------------------------
  function initEquity(el) {
    if (el._m7eq || !LWC()) return;
    var chart = baseChart(el);
    var t = window.Market7.theme;
    var series = chart.addSeries(LWC().AreaSeries, {
      lineColor: "#4c8dff", topColor: "rgba(76,141,255,0.35)", bottomColor: "rgba(76,141,255,0.02)", lineWidth: 2,
      priceFormat: { type: "price", precision: 2, minMove: 0.01 },
    });
    var api = {
      el: el, chart: chart, series: series,
      load: function () {
        return fetch(el.dataset.url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            var field = el.dataset.field || "equity";
            var rows = (body.series || []).map(function (p) { return { time: p.time, value: p[field] }; });
            series.setData(rows);
            var last = rows.length ? rows[rows.length - 1].value : null;
            var first = rows.length ? rows[0].value : null;
            if (last != null && first != null) {
              var up = field === "pnl" ? last >= 0 : last >= first;
              series.applyOptions(up
                ? { lineColor: t.up, topColor: "rgba(22,199,132,0.32)", bottomColor: "rgba(22,199,132,0.02)" }
                : { lineColor: t.down, topColor: "rgba(234,57,67,0.30)", bottomColor: "rgba(234,57,67,0.02)" });
            }
            if (!el._m7fitted && rows.length) { chart.timeScale().fitContent(); el._m7fitted = true; }
            el.dataset.points = String(rows.length);
            var empty = el.parentNode.querySelector("[data-chart-empty]");
            if (empty) empty.hidden = rows.length > 0;
          })
          .catch(function (err) { el.dataset.error = String(err); });
      },
    };
    el._m7eq = api;
    equityCharts.push(api);
    api.load();
    document.querySelectorAll("[data-equity-field]").forEach(function (tab) {
      tab.addEventListener("click", function (ev) {
        ev.preventDefault();
        document.querySelectorAll("[data-equity-field]").forEach(function (x) { x.setAttribute("aria-selected", x === tab ? "true" : "false"); });
        el.dataset.field = tab.dataset.equityField;
        el._m7fitted = false;
        api.load();
      });
    });
  }

  // -- bot candlestick chart with fills --------------------------------------------------------
  function initBotChart(el) {
    if (el._m7bot || !LWC()) return;
    var legend = el.dataset.legend ? document.querySelector(el.dataset.legend) : null;
    var c = window.Market7.candleChart(el, { precision: parseInt(el.dataset.precision || "2", 10), legend: legend });
    var api = {
      el: el, chart: c,
      load: function () {
        var url = el.dataset.url + (el.dataset.symbol ? "?symbol=" + encodeURIComponent(el.dataset.symbol) : "");
        return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
          .then(function (r) { return r.json(); })
          .then(function (body) {
            c.setData(body.candles || []);
            c.setMarkers((body.markers || []).map(function (m) {
              return { time: m.time, position: m.position, shape: m.shape, color: m.color, text: m.text };
            }));
            el.dataset.markers = String((body.markers || []).length);
            el.dataset.loaded = "true";
          })
          .catch(function (err) { el.dataset.error = String(err); });
      },
    };
    el._m7bot = api;
    botCharts.push(api);
    api.load();
    document.querySelectorAll("[data-symbol-tab]").forEach(function (tab) {
      tab.addEventListener("click", function (ev) {
        ev.preventDefault();
        document.querySelectorAll("[data-symbol-tab]").forEach(function (x) { x.setAttribute("aria-selected", x === tab ? "true" : "false"); });
        el.dataset.symbol = tab.dataset.symbolTab;
        api.load();
      });
    });
  }

  // -- the live socket -----------------------------------------------------------------------------
  var inFlight = false, queued = false, connectedOnce = false;

  function liveEl() { return document.getElementById("live"); }

  function setState(state, text) {
    var pill = document.getElementById("live-pill");
    if (!pill) return;
    pill.dataset.state = state;
    var label = pill.querySelector("[data-live-label]");
    if (label) label.textContent = text;
  }

  function refresh() {
    var el = liveEl();
    if (!el || !el.dataset.liveUrl || !window.htmx) return;
    if (inFlight) { queued = true; return; }
    inFlight = true;
    window.htmx.ajax("GET", el.dataset.liveUrl, { source: el, target: el, swap: "none" }).then(function () {
      equityCharts.forEach(function (c) { c.load(); });
      botCharts.forEach(function (c) { c.load(); });
      document.body.dataset.liveRefreshes = String(parseInt(document.body.dataset.liveRefreshes || "0", 10) + 1);
    }).finally(function () {
      inFlight = false;
      if (queued) { queued = false; setTimeout(refresh, 150); }
    });
  }

  function onMessage(ev) {
    var raw = ev.detail && ev.detail.message;
    if (typeof raw !== "string" || raw.charAt(0) !== "{") return; // HTML: the extension swaps it
    var msg;
    try { msg = JSON.parse(raw); } catch (e) { return; }
    ev.preventDefault(); // JSON is not HTML: do not let the extension swap it
    if (!msg || msg.event === "pong") return;
    var pill = document.getElementById("live-pill");
    if (pill) { pill.classList.add("flash"); setTimeout(function () { pill.classList.remove("flash"); }, 400); }
    document.body.dataset.liveEvents = String(parseInt(document.body.dataset.liveEvents || "0", 10) + 1);
    document.body.dispatchEvent(new CustomEvent("m7:live", { detail: msg }));
    refresh();
  }

  document.addEventListener("htmx:wsBeforeMessage", onMessage);
  document.addEventListener("htmx:wsConnecting", function () { setState(connectedOnce ? "off" : "connecting", connectedOnce ? "reconnecting" : "connecting"); });
  document.addEventListener("htmx:wsOpen", function () {
    setState("on", "live");
    if (connectedOnce) refresh(); // catch up on what the drop missed
    connectedOnce = true;
    document.body.dataset.liveConnected = "true";
  });
  document.addEventListener("htmx:wsClose", function () { setState("off", "reconnecting"); document.body.dataset.liveConnected = "false"; });
  document.addEventListener("htmx:wsError", function () { setState("off", "reconnecting"); });

  function init(root) {
    root.querySelectorAll("[data-equity-chart]").forEach(initEquity);
    root.querySelectorAll("[data-bot-chart]").forEach(initBotChart);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });

  window.Market7Bots = { refresh: refresh, init: init };
})();
