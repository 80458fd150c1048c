/* Market7 shared browser helpers (no build step, no CDN).
 *
 *   Market7.candleChart(el, opts)  candlestick + volume chart (lightweight-charts 5), returns
 *                                  {chart, candles, volume, load(url), setData(rows), setMarkers(list)}
 *   Market7.chart(el, extra)       a lightweight-charts chart in the site's theme (extra options merged)
 *   Market7.theme                  chart colours read from the CSS variables in market7.css
 *
 * Auto-wiring on page load and after every HTMX swap (htmx:load):
 *   [data-candle-chart]    a chart fed from data-url?timeframe=…&limit=…; tabs [data-timeframe-tab]
 *                          switch timeframe without a reload (URL kept in sync with replaceState)
 *   [data-copy="#sel"]     button copying the text of #sel
 *   #nav-toggle            the phone menu button: toggles aria-expanded and .topbar.nav-open
 *   "/" focuses [data-search]; Esc in it clears the search.
 *   HTMX GET requests drop empty parameters (short pushed URLs).
 */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  var theme = {
    get bg() { return cssVar("--panel", "#121821"); },
    get text() { return cssVar("--muted", "#8b97a6"); },
    get grid() { return cssVar("--grid", "#1c2430"); },
    get border() { return cssVar("--border", "#253041"); },
    get up() { return cssVar("--up", "#16c784"); },
    get down() { return cssVar("--down", "#ea3943"); },
  };

  /**
   * A lightweight-charts chart in the site's theme (colours from market7.css, autosize, time
   * axis in hours:minutes). extra: chart options merged over the base, one level deep
   * (e.g. {timeScale: {minBarSpacing: 0.01}}). Returns the chart.
   */
  function baseChart(el, extra) {
    var options = {
      autoSize: true,
      layout: {
        background: { type: "solid", color: theme.bg },
        textColor: theme.text,
        fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
        fontSize: 12,
      },
      grid: { vertLines: { color: theme.grid }, horzLines: { color: theme.grid } },
      rightPriceScale: { borderColor: theme.border },
      timeScale: { borderColor: theme.border, timeVisible: true, secondsVisible: false },
    };
    Object.keys(extra || {}).forEach(function (key) {
      var value = extra[key];
      options[key] = value && typeof value === "object" && !Array.isArray(value) && options[key]
        ? Object.assign({}, options[key], value) : value;
    });
    return window.LightweightCharts.createChart(el, options);
  }

  function decimalsFromFormat(fmt) {
    var n = parseInt(fmt, 10);
    return isNaN(n) ? 2 : n;
  }

  /**
   * Candlestick chart with a volume histogram on its own price scale (bottom 20 %).
   * opts: {precision: decimals of prices, legend: element showing OHLCV under the crosshair}
   * Rows for setData: [{time: epoch seconds, open, high, low, close, volume}], oldest first.
   * Markers for setMarkers: lightweight-charts series markers
   *   [{time, position: "aboveBar"|"belowBar", color, shape: "arrowUp"|"arrowDown"|"circle", text}]
   */
  function candleChart(el, opts) {
    opts = opts || {};
    var LWC = window.LightweightCharts;
    var precision = opts.precision != null ? opts.precision : 2;
    var chart = baseChart(el, {
      timeScale: { rightOffset: 4 },
      crosshair: { mode: LWC.CrosshairMode.Normal },
    });
    var candles = chart.addSeries(LWC.CandlestickSeries, {
      upColor: theme.up, downColor: theme.down, borderVisible: false,
      wickUpColor: theme.up, wickDownColor: theme.down,
      priceFormat: { type: "price", precision: precision, minMove: Math.pow(10, -precision) },
    });
    candles.priceScale().applyOptions({ scaleMargins: { top: 0.06, bottom: 0.26 } });
    var volume = chart.addSeries(LWC.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "volume", lastValueVisible: false, priceLineVisible: false,
    });
    chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });

    var markers = null;
    var rowsByTime = {};
    var legend = opts.legend || null;
    var fmt = function (x) {
      return x == null ? "—" : x.toLocaleString("en-US", { minimumFractionDigits: precision, maximumFractionDigits: precision });
    };
    function showLegend(row) {
      if (!legend) return;
      if (!row) { legend.textContent = ""; return; }
      var up = row.close >= row.open;
      var d = new Date(row.time * 1000).toISOString().slice(0, 16).replace("T", " ");
      legend.innerHTML = "<span class='muted'>" + d + "</span> O <b>" + fmt(row.open) + "</b> H <b>" + fmt(row.high) +
        "</b> L <b>" + fmt(row.low) + "</b> C <b class='" + (up ? "up" : "down") + "'>" + fmt(row.close) +
        "</b> V <b>" + row.volume.toLocaleString("en-US", { maximumFractionDigits: 2 }) + "</b>";
    }
    var last = null;
    chart.subscribeCrosshairMove(function (param) {
      showLegend(param && param.time != null ? rowsByTime[param.time] : last);
    });

    var api = {
      chart: chart, candles: candles, volume: volume,
      setData: function (rows) {
        rowsByTime = {};
        rows.forEach(function (r) { rowsByTime[r.time] = r; });
        candles.setData(rows.map(function (r) { return { time: r.time, open: r.open, high: r.high, low: r.low, close: r.close }; }));
        volume.setData(rows.map(function (r) {
          return { time: r.time, value: r.volume, color: r.close >= r.open ? theme.up + "66" : theme.down + "66" };
        }));
        last = rows.length ? rows[rows.length - 1] : null;
        showLegend(last);
        chart.timeScale().fitContent();
        el.dataset.points = String(rows.length);
      },
      load: function (url) {
        el.classList.add("loading");
        return fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
          .then(function (rows) { api.setData(rows); el.dataset.loaded = "true"; return rows; })
          .catch(function (err) { el.dataset.error = String(err); if (legend) legend.textContent = "Could not load candles: " + err.message; })
          .finally(function () { el.classList.remove("loading"); });
      },
      setMarkers: function (list) {
        if (!markers) markers = LWC.createSeriesMarkers(candles, list);
        else markers.setMarkers(list);
      },
    };
    return api;
  }

  function initCharts(root) {
    root.querySelectorAll("[data-candle-chart]").forEach(function (el) {
      if (el._m7chart || !window.LightweightCharts) return;
      var legend = el.dataset.legend ? document.querySelector(el.dataset.legend) : null;
      var c = candleChart(el, { precision: decimalsFromFormat(el.dataset.priceFormat), legend: legend });
      el._m7chart = c;
      var load = function (tf) {
        el.dataset.timeframe = tf;
        return c.load(el.dataset.url + "?timeframe=" + encodeURIComponent(tf) + "&limit=" + (el.dataset.limit || 1000));
      };
      load(el.dataset.timeframe);
      var tabs = document.querySelectorAll("[data-timeframe-tab]");
      tabs.forEach(function (tab) {
        tab.addEventListener("click", function (ev) {
          ev.preventDefault();
          tabs.forEach(function (t) { t.setAttribute("aria-selected", t === tab ? "true" : "false"); });
          var tf = tab.dataset.timeframeTab;
          var url = new URL(window.location.href);
          url.searchParams.set("timeframe", tf);
          history.replaceState(history.state, "", url);
          load(tf);
        });
        tab.addEventListener("keydown", function (ev) {
          if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
          var list = Array.prototype.slice.call(tabs);
          var i = list.indexOf(tab) + (ev.key === "ArrowRight" ? 1 : -1);
          var next = list[(i + list.length) % list.length];
          next.focus();
          next.click();
        });
      });
    });
  }

  function initCopy(root) {
    root.querySelectorAll("[data-copy]").forEach(function (btn) {
      if (btn._m7copy) return;
      btn._m7copy = true;
      btn.addEventListener("click", function () {
        var src = document.querySelector(btn.dataset.copy);
        if (!src) return;
        var done = function () { btn.textContent = "Copied"; setTimeout(function () { btn.textContent = "Copy"; }, 1500); };
        if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(src.textContent.trim()).then(done);
        else { var r = document.createRange(); r.selectNodeContents(src); var s = getSelection(); s.removeAllRanges(); s.addRange(r); document.execCommand("copy"); done(); }
      });
    });
  }

  document.addEventListener("keydown", function (ev) {
    var t = ev.target;
    var typing = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
    if (ev.key === "/" && !typing && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
      var s = document.querySelector("[data-search]");
      if (s) { ev.preventDefault(); s.focus(); s.select(); }
    } else if (ev.key === "Escape" && t && t.hasAttribute && t.hasAttribute("data-search") && t.value) {
      t.value = "";
      t.dispatchEvent(new Event("input", { bubbles: true }));
    }
  });

  // GET requests from filter forms: drop empty parameters so pushed URLs stay short
  // (/markets/?q=btc rather than /markets/?q=btc&quote=&type=).
  document.addEventListener("htmx:configRequest", function (ev) {
    if (ev.detail.verb !== "get") return;
    var params = ev.detail.parameters;
    Object.keys(params).forEach(function (k) { if (params[k] === "") delete params[k]; });
  });

  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details.usermenu[open]").forEach(function (d) { if (!d.contains(ev.target)) d.removeAttribute("open"); });
  });

  // Phone nav (#nav-toggle, shown below 760 px by market7.css): the button opens and closes the
  // links it controls; Esc or a click outside the top bar closes them (Esc gives focus back).
  function setNav(open) {
    var btn = document.getElementById("nav-toggle");
    if (!btn) return;
    btn.setAttribute("aria-expanded", open ? "true" : "false");
    btn.closest(".topbar").classList.toggle("nav-open", open);
  }
  document.addEventListener("click", function (ev) {
    var btn = document.getElementById("nav-toggle");
    if (!btn) return;
    if (btn.contains(ev.target)) setNav(btn.getAttribute("aria-expanded") !== "true");
    else if (!btn.closest(".topbar").contains(ev.target)) setNav(false);
  });
  document.addEventListener("keydown", function (ev) {
    var btn = document.getElementById("nav-toggle");
    if (ev.key !== "Escape" || !btn || btn.getAttribute("aria-expanded") !== "true") return;
    setNav(false);
    btn.focus();
  });

  function init(root) { initCharts(root); initCopy(root); }
  document.addEventListener("DOMContentLoaded", function () {
    init(document);
    if (window.htmx) document.body.addEventListener("htmx:load", function (ev) { init(ev.target); });
  });

  window.Market7 = { candleChart: candleChart, chart: baseChart, theme: theme, init: init };
})();
