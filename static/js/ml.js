/* ML Monitor (templates/mlops/version.html): the live accuracy / MAE line per week.
 *
 *   [data-ml-line]  a line with point markers from a json_script id (data-source:
 *                   [{time: epoch seconds (Monday 00:00 UTC), value}]), data-unit shown in the
 *                   price axis ("accuracy" 0..1 or "MAE" in the target's unit).
 *
 * No inline script (CSP script-src 'self'); data arrives through json_script. Each element gets
 * el._m7chart = {chart, series, points}.
 */
(function () {
  "use strict";

  function readJson(id) {
    var node = document.getElementById(id);
    if (!node) return [];
    try { return JSON.parse(node.textContent) || []; } catch (e) { return []; }
  }

  function initLine(el) {
    if (el._m7chart || !window.LightweightCharts || !window.Market7) return;
    var LWC = window.LightweightCharts;
    var points = readJson(el.dataset.source);
    var chart = window.Market7.chart(el, { timeScale: { timeVisible: false } });
    var series = chart.addSeries(LWC.LineSeries, {
      color: "#4c8dff",
      lineWidth: 2,
      pointMarkersVisible: true,
      priceFormat: { type: "price", precision: 3, minMove: 0.001 },
      title: el.dataset.unit || "",
    });
    series.setData(points);
    chart.timeScale().fitContent();
    el._m7chart = { chart: chart, series: series, points: points.length };
  }

  function init(root) {
    root.querySelectorAll("[data-ml-line]").forEach(initLine);
  }
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  window.Market7ML = { init: init };
})();
