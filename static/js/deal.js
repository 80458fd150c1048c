/* Deal page chart: the deal's candles, its fills as markers and price lines for the average
 * entry, take profit, stop loss and resting safety orders (lightweight-charts, vendored).
 *
 * [data-deal-chart]  data-source = id of the json_script with
 *                    {symbol, candles: [{time (epoch s), open, high, low, close, volume}],
 *                     markers: [...], lines: [{price, title, color, kind}], precision}
 * After drawing, the element carries data-points (candles), data-markers (fills) and
 * data-lines ("kind:price,...") so tests and users' tools can read what is shown.
 */
(function () {
  "use strict";

  function draw(el) {
    if (el._m7deal || !window.LightweightCharts || !window.Market7) return;
    var src = document.getElementById(el.dataset.source);
    if (!src) return;
    var data = JSON.parse(src.textContent);
    var legend = el.dataset.legend ? document.querySelector(el.dataset.legend) : null;
    var c = window.Market7.candleChart(el, { precision: data.precision != null ? data.precision : 2, legend: legend });
    el._m7deal = c;
    c.setData(data.candles || []);
    c.setMarkers((data.markers || []).map(function (m) {
      return { time: m.time, position: m.position, color: m.color, shape: m.shape, text: m.text };
    }));
    var shown = [];
    (data.lines || []).forEach(function (ln) {
      c.candles.createPriceLine({
        price: ln.price, color: ln.color, lineWidth: ln.kind === "safety" ? 1 : 2,
        lineStyle: ln.kind === "entry" ? 0 : 2, axisLabelVisible: true, title: ln.title,
      });
      shown.push(ln.kind + ":" + ln.price);
    });
    el.dataset.markers = String((data.markers || []).length);
    el.dataset.lines = shown.join(",");
    el.dataset.loaded = "true";
  }

  function init() {
    document.querySelectorAll("[data-deal-chart]").forEach(draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
