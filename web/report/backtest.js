// The backtest report's charts, drawn with uPlot from the page's data
// (#report-data). The tables and each chart's caption say the same in
// words, so the drawn charts are hidden from assistive technology.
(function () {
  "use strict";
  var d = JSON.parse(document.getElementById("report-data").textContent);
  var U = window.uPlot;
  // Colours with at least 4.5:1 contrast on white.
  var palette = ["#0b5cad", "#b4410c", "#13743a", "#7e22ce", "#8a5a00", "#be185d", "#0f6e6e", "#4b5563"];
  var ink = "#4f5660";
  var grid = { stroke: "#e4e7eb", width: 1 };
  var colors = { detected: "#13743a", missed: "#b42318", alert: "#0b5cad", false: "#8a5a00", other: "#7e22ce", window: "rgba(19,116,58,0.12)" };
  var dpr = function () { return U.pxRatio || window.devicePixelRatio || 1; };
  var utc = function (ts) { return U.tzDate(new Date(ts * 1e3), "Etc/UTC"); };
  var charts = [];

  function axis(label, extra) {
    var a = { stroke: ink, grid: grid, ticks: grid, label: label, labelSize: label ? 20 : 0, font: "12px system-ui, sans-serif", labelFont: "12px system-ui, sans-serif" };
    for (var k in extra) { a[k] = extra[k]; }
    return a;
  }

  function draw(box, opts, data) {
    opts.width = Math.max(240, box.clientWidth);
    var u = new U(opts, data, box);
    charts.push({ u: u, box: box });
    box.dataset.drawn = "true";
    return u;
  }

  // key adds a line of symbols and names above a chart.
  function key(box, items) {
    var p = document.createElement("p");
    p.className = "key";
    items.forEach(function (it) {
      var s = document.createElement("span");
      s.style.marginRight = "14px";
      var m = document.createElement("span");
      m.textContent = it.symbol + " ";
      m.style.color = it.color;
      s.appendChild(m);
      s.appendChild(document.createTextNode(it.label));
      p.appendChild(s);
    });
    box.appendChild(p);
  }

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // timeValues labels a time axis in UTC, 24-hour: the date at whole days,
  // the time of day otherwise.
  function timeValues(u, splits, ax, space, incr) {
    return splits.map(function (v) {
      var t = new Date(v * 1e3);
      var date = pad(t.getUTCMonth() + 1) + "-" + pad(t.getUTCDate());
      if (incr % 86400 === 0) { return date; }
      var hm = pad(t.getUTCHours()) + ":" + pad(t.getUTCMinutes());
      return t.getUTCHours() === 0 && t.getUTCMinutes() === 0 ? date : hm;
    });
  }
  var day = 86400;
  var dayIncrs = [day, 2 * day, 7 * day, 14 * day, 28 * day, 91 * day, 182 * day, 364 * day];
  var timeIncrs = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600].concat(dayIncrs);

  function fmtHours(h) {
    if (h >= 48) { return (Math.round(h / 24 * 10) / 10) + "d"; }
    return (Math.round(h * 10) / 10) + "h";
  }

  function vline(u, t, color, dash) {
    if (t < u.scales.x.min || t > u.scales.x.max) { return; }
    var ctx = u.ctx, r = dpr();
    var x = Math.round(u.valToPos(t, "x", true));
    ctx.save();
    ctx.strokeStyle = color;
    ctx.lineWidth = 2 * r;
    ctx.setLineDash(dash.map(function (v) { return v * r; }));
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  }

  function lead(box, l) {
    var edges = d.bins_h, n = edges.length - 1;
    var xs = [];
    for (var i = 0; i < n; i++) { xs.push((edges[i] + edges[i + 1]) / 2); }
    var sets = l.counts.length;
    var series = [{ label: "lead", value: function (u, v) { return v == null ? "-" : fmtHours(v); } }];
    var data = [xs];
    var top = 1;
    l.counts.forEach(function (c, si) {
      var counts = c || xs.map(function () { return 0; });
      counts.forEach(function (v) { top = Math.max(top, v); });
      series.push({
        label: sets > 1 ? "failures, " + (si === 0 ? "A" : "B") : "failures",
        stroke: palette[si], fill: palette[si], width: 1,
        paths: U.paths.bars({ size: [sets > 1 ? 0.45 : 0.9, Infinity], align: sets > 1 ? (si === 0 ? -1 : 1) : 0 }),
        points: { show: false }
      });
      data.push(counts);
    });
    var days = edges[n] > 48;
    draw(box, {
      height: 200, legend: { show: sets > 1 },
      scales: { x: { time: false, range: [0, edges[n]] }, y: { range: [0, top + Math.ceil(top / 5)] } },
      series: series,
      axes: [
        axis(days ? "lead (days before the failure)" : "lead (hours before the failure)", {
          incrs: [0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 672, 1344],
          values: function (u, vs) { return vs.map(function (v) { return days ? Math.round(v / 24 * 10) / 10 : v; }); }
        }),
        axis("failures", { size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] })
      ]
    }, data);
  }

  function perDay(box, p) {
    var series = [{ label: "day" }];
    var data = [p.days];
    p.series.forEach(function (s, i) {
      series.push({ label: s.name, stroke: palette[i % palette.length], width: 2, points: { show: true, size: 6, fill: palette[i % palette.length] } });
      data.push(s.counts);
    });
    if (p.series.length === 0) {
      series.push({ label: "alerts" });
      data.push(p.days.map(function () { return 0; }));
    }
    draw(box, {
      height: 220, tzDate: utc,
      scales: { x: { time: true }, y: { range: function (u, lo, hi) { return [0, Math.max(1, hi) * 1.1]; } } },
      series: series,
      axes: [axis("day (UTC)", { incrs: dayIncrs, values: timeValues }), axis("alerts", { size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] })]
    }, data);
  }

  function marker(ctx, shape, x, y, s, color) {
    ctx.beginPath();
    if (shape === "circle") {
      ctx.arc(x, y, s, 0, 2 * Math.PI);
      ctx.fillStyle = color;
      ctx.fill();
    } else if (shape === "ring") {
      ctx.arc(x, y, s, 0, 2 * Math.PI);
      ctx.strokeStyle = color;
      ctx.lineWidth = s / 2;
      ctx.stroke();
    } else if (shape === "triangle") {
      ctx.moveTo(x, y - s);
      ctx.lineTo(x + s, y + s * 0.8);
      ctx.lineTo(x - s, y + s * 0.8);
      ctx.closePath();
      ctx.fillStyle = color;
      ctx.fill();
    } else { // cross
      ctx.moveTo(x - s, y - s); ctx.lineTo(x + s, y + s);
      ctx.moveTo(x + s, y - s); ctx.lineTo(x - s, y + s);
      ctx.strokeStyle = color;
      ctx.lineWidth = s / 2;
      ctx.stroke();
    }
  }

  function timeline(box, t) {
    var n = t.devices.length;
    if (n === 0) {
      box.textContent = "No device had an alert" + (d.scored ? " or a failure." : ".");
      box.dataset.drawn = "true";
      return;
    }
    var items = [];
    if (d.scored) {
      items.push({ symbol: "●", color: colors.detected, label: "failure detected" });
      items.push({ symbol: "○", color: colors.missed, label: "failure missed" });
      items.push({ symbol: "▬", color: "rgba(19,116,58,0.4)", label: "where an alert would detect it" });
    }
    items.push({ symbol: "▲", color: colors.alert, label: d.scored ? "alert followed by a failure" : "alert" });
    if (d.scored) { items.push({ symbol: "✕", color: colors.false, label: "false alert" }); }
    if (d.labels && d.labels.length > 1) { items.push({ symbol: "▲", color: colors.other, label: "alert of rule set B" }); }
    key(box, items);
    var lane = function (i) { return n - 1 - i; };
    var longest = 0;
    t.devices.forEach(function (s) { longest = Math.max(longest, s.length); });
    var splits = [];
    for (var i = 0; i < n; i++) { splits.push(i); }
    draw(box, {
      height: n * 30 + 80, tzDate: utc, legend: { show: false },
      cursor: { y: false },
      scales: { x: { time: true, range: [d.from, d.to] }, y: { range: [-0.6, n - 0.4] } },
      series: [{}, { stroke: "transparent", points: { show: false } }],
      axes: [axis("time (UTC)", { incrs: timeIncrs, values: timeValues }), axis("", {
        size: Math.min(200, 16 + longest * 7), grid: { show: false }, ticks: { show: false },
        splits: function () { return splits; },
        values: function (u, vs) { return vs.map(function (v) { return t.devices[n - 1 - v] || ""; }); }
      })],
      hooks: {
        draw: [function (u) {
          var ctx = u.ctx, r = dpr();
          ctx.save();
          ctx.beginPath();
          ctx.rect(u.bbox.left, u.bbox.top, u.bbox.width, u.bbox.height);
          ctx.clip();
          var X = function (v) { return u.valToPos(v, "x", true); };
          var Y = function (v) { return u.valToPos(v, "y", true); };
          t.failures.forEach(function (f) {
            var y = Y(lane(f.lane));
            var x0 = X(f.t - d.horizon_s), x1 = X(f.t - d.min_lead_s);
            ctx.fillStyle = colors.window;
            ctx.fillRect(x0, y - 4 * r, x1 - x0, 8 * r);
          });
          t.alerts.forEach(function (a) {
            var y = Y(lane(a.lane)) + (a.set > 0 ? -7 * r : 0);
            var color = a.set > 0 ? colors.other : (a.false ? colors.false : colors.alert);
            marker(ctx, a.false && a.set === 0 ? "cross" : "triangle", X(a.t), y, 5 * r, color);
          });
          t.failures.forEach(function (f) {
            marker(ctx, f.detected ? "circle" : "ring", X(f.t), Y(lane(f.lane)), 6 * r, f.detected ? colors.detected : colors.missed);
          });
          ctx.restore();
        }]
      }
    }, [[d.from, d.to], [null, null]]);
  }

  function missed(box, m, s) {
    draw(box, {
      height: 160, tzDate: utc,
      scales: { x: { time: true, range: [m.from, m.to] } },
      series: [{}, { label: s.metric, stroke: palette[0], width: 2, points: { show: false } }],
      axes: [axis("time (UTC)", { incrs: timeIncrs, values: timeValues }), axis(s.metric, { size: 56 })],
      hooks: {
        draw: [function (u) {
          m.alerts.forEach(function (t) { vline(u, t, colors.alert, [6, 4]); });
          vline(u, m.t, colors.missed, []);
        }]
      }
    }, [s.t, s.v]);
  }

  document.querySelectorAll(".chart[data-chart]").forEach(function (box) {
    var i = Number(box.dataset.index || 0);
    switch (box.dataset.chart) {
      case "lead": lead(box, d.leads[i]); break;
      case "per-day": perDay(box, d.per_day[i]); break;
      case "timeline": timeline(box, d.timeline); break;
      case "missed": missed(box, d.missed[i], d.missed[i].series[Number(box.dataset.metric)]); break;
    }
  });

  var pending = 0;
  window.addEventListener("resize", function () {
    cancelAnimationFrame(pending);
    pending = requestAnimationFrame(function () {
      charts.forEach(function (c) {
        var w = Math.max(240, c.box.clientWidth);
        if (w !== c.u.width) { c.u.setSize({ width: w, height: c.u.height }); }
      });
    });
  });
})();
