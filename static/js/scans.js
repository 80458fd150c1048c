/* Scan Review signal chart and BTC Risk Panel chart (no inline scripts: data from json_script).
 *
 *   [data-signal-chart="#json"]  candlesticks around the signal (chart.candles, from the page)
 *                                with entry / SL / TP price lines and a marker on the signal candle
 *   [data-regime-chart="#json"]  BTC close as a line coloured by regime ([{time, value, regime}])
 */
(function () {
  "use strict";

  var REGIME_COLORS = { panic: "#ea3943", caution: "#f0b90b", normal: "#4c8dff", euphoria: "#16c784" };

  function data(el, attr) {
    var node = document.querySelector(el.getAttribute(attr));
    return node ? JSON.parse(node.textContent) : null;
  }

  function signalChart(el) {
    var d = data(el, "data-signal-chart");
    if (!d) return;
    var c = window.Market7.candleChart(el, { legend: document.getElementById("signal-chart-legend") });
    var line = function (price, color, title) {
      if (price == null) return;
      c.candles.createPriceLine({ price: price, color: color, lineWidth: 2, lineStyle: 2, axisLabelVisible: true, title: title });
    };
    line(d.entry, "#4c8dff", "entry");
    line(d.stop_loss, window.Market7.theme.down, "SL");
    line(d.take_profit, window.Market7.theme.up, "TP");
    // keep every level on screen: widen the candles' autoscale range to entry / SL / TP
    var levels = [d.entry, d.stop_loss, d.take_profit].filter(function (x) { return x != null; });
    c.candles.applyOptions({
      autoscaleInfoProvider: function (original) {
        var res = original();
        if (res && res.priceRange) {
          res.priceRange.minValue = Math.min.apply(null, [res.priceRange.minValue].concat(levels));
          res.priceRange.maxValue = Math.max.apply(null, [res.priceRange.maxValue].concat(levels));
        }
        return res;
      },
    });
    var long = d.side === "long";
    // the candles around the signal come with the page (200 before, the signal candle, up to 50 after)
    c.setData(d.candles || []);
    el.dataset.loaded = "true";
    c.setMarkers([{ time: d.signal_time, position: long ? "belowBar" : "aboveBar", color: "#4c8dff",
      shape: long ? "arrowUp" : "arrowDown", text: d.side }]);
  }

  function regimeChart(el) {
    var rows = data(el, "data-regime-chart");
    if (!rows) return;
    var chart = window.Market7.chart(el);
    var series = chart.addSeries(window.LightweightCharts.LineSeries, { lineWidth: 2, priceLineVisible: false });
    series.setData(rows.map(function (r) { return { time: r.time, value: r.value, color: REGIME_COLORS[r.regime] }; }));
    chart.timeScale().fitContent();
    el.dataset.points = String(rows.length);
  }

  function init() {
    if (!window.Market7 || !window.LightweightCharts) return;
    document.querySelectorAll("[data-signal-chart]").forEach(signalChart);
    document.querySelectorAll("[data-regime-chart]").forEach(regimeChart);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
