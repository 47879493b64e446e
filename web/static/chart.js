// Progressive enhancement of the ticket page's telemetry: where uPlot
// loaded, each server-drawn SVG is replaced with an interactive chart of
// the same data (#chart-data), with the alert and the predicted failure
// marked. Without scripts the SVG stays.
(function () {
  "use strict";
  var src = document.getElementById("chart-data");
  if (!src || !window.uPlot) {
    return;
  }
  var d;
  try {
    d = JSON.parse(src.textContent);
  } catch (e) {
    return;
  }
  // The page's time zone, when the server names one the browser knows;
  // otherwise the browser's own.
  var tzOK = false;
  if (d.tz) {
    try {
      new Intl.DateTimeFormat("en", { timeZone: d.tz });
      tzOK = true;
    } catch (e) {
      tzOK = false;
    }
  }
  var dpr = window.devicePixelRatio || 1;
  var marks = [
    { at: d.alert, color: "#a50e0e", dash: [] },
    { at: d.predicted, color: "#7a4b00", dash: [6, 4] }
  ];
  function markers() {
    return {
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx;
          marks.forEach(function (m) {
            if (!m.at || m.at < d.from || m.at > d.to) {
              return;
            }
            var x = Math.round(u.valToPos(m.at, "x", true));
            ctx.save();
            ctx.strokeStyle = m.color;
            ctx.lineWidth = 2 * dpr;
            ctx.setLineDash(m.dash.map(function (v) { return v * dpr; }));
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.restore();
          });
        }]
      }
    };
  }
  var charts = [];
  (d.series || []).forEach(function (s) {
    var fig = document.querySelector('.plot[data-metric="' + s.metric + '"]');
    if (!fig) {
      return;
    }
    var box = document.createElement("div");
    box.className = "uplotbox";
    box.setAttribute("aria-hidden", "true"); // the caption says it in words
    fig.appendChild(box);
    var opts = {
      width: Math.max(200, fig.clientWidth),
      height: 220,
      scales: { x: { time: true, min: d.from, max: d.to } },
      series: [{}, { label: s.metric, stroke: "#0b57d0", width: 2, spanGaps: false }],
      axes: [{ stroke: "#4f5359" }, { stroke: "#4f5359", size: 56 }],
      plugins: [markers()]
    };
    if (tzOK) {
      opts.tzDate = function (ts) { return window.uPlot.tzDate(new Date(ts * 1e3), d.tz); };
    }
    var u = new window.uPlot(opts, [s.t, s.v], box);
    charts.push({ u: u, fig: fig });
    fig.classList.add("drawn");
    fig.setAttribute("data-points", String(s.t.length));
  });
  // Follow the figure's width (a phone turned, a window resized).
  function fit(c) {
    var w = Math.max(200, c.fig.clientWidth);
    if (w !== c.u.width) {
      c.u.setSize({ width: w, height: 220 });
    }
  }
  if (window.ResizeObserver) {
    var ro = new window.ResizeObserver(function () { charts.forEach(fit); });
    charts.forEach(function (c) { ro.observe(c.fig); });
  } else {
    window.addEventListener("resize", function () { charts.forEach(fit); });
  }
})();
