// Two small SVG charts, hand-written: grouped bars (counts per channel, per day) and point +
// 95 % interval (uplift). A charting library would be larger than all the console's own code
// for these two shapes; SVG scales on a tablet and prints as drawn.
const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 2.5, 5, 10].map((m) => m * p).find((m) => m >= v);
}

// groups: [{label, values: {seriesKey: number}}]; series: [{key, label, color}]
export function barChart(groups, series, { title = "", width = 640, height = 260 } = {}) {
  const pad = { l: 48, r: 12, t: title ? 28 : 10, b: 54 };
  const w = width - pad.l - pad.r;
  const hgt = height - pad.t - pad.b;
  const max = niceMax(Math.max(0, ...groups.flatMap((g) => series.map((x) => g.values[x.key] || 0))));
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart bar-chart",
    role: "img",
    "aria-label": title,
  });
  if (title) svg.append(s("text", { x: pad.l, y: 18, class: "chart-title" }, title));
  for (let i = 0; i <= 4; i++) {
    const y = pad.t + hgt - (hgt * i) / 4;
    svg.append(s("line", { x1: pad.l, x2: pad.l + w, y1: y, y2: y, class: "gridline" }));
    svg.append(
      s("text", { x: pad.l - 6, y: y + 4, class: "tick", "text-anchor": "end" }, formatTick((max * i) / 4)),
    );
  }
  const gw = w / Math.max(groups.length, 1);
  const bw = Math.max(2, Math.min(28, (gw * 0.8) / series.length));
  groups.forEach((g, gi) => {
    const x0 = pad.l + gi * gw + (gw - bw * series.length) / 2;
    series.forEach((x, si) => {
      const v = g.values[x.key] || 0;
      const bh = (hgt * v) / max;
      const bar = s("rect", {
        x: x0 + si * bw,
        y: pad.t + hgt - bh,
        width: bw - 1,
        height: bh,
        fill: x.color,
        class: `bar ${x.key}`,
      });
      bar.append(s("title", {}, `${g.label} · ${x.label}: ${v}`));
      svg.append(bar);
    });
    svg.append(
      s(
        "text",
        { x: pad.l + gi * gw + gw / 2, y: pad.t + hgt + 16, class: "tick", "text-anchor": "middle" },
        g.label,
      ),
    );
  });
  // legend under the axis
  let lx = pad.l;
  for (const x of series) {
    svg.append(s("rect", { x: lx, y: height - 20, width: 10, height: 10, fill: x.color }));
    svg.append(s("text", { x: lx + 14, y: height - 11, class: "tick" }, x.label));
    lx += 14 + 8 * x.label.length + 18;
  }
  return svg;
}

// rows: [{label, value, low, high}] in percentage points; null values are drawn as "n/a"
export function intervalChart(rows, { title = "", width = 640, unit = " pt" } = {}) {
  const rowH = 44;
  const pad = { l: 150, r: 24, t: title ? 30 : 10, b: 30 };
  const height = pad.t + pad.b + rowH * rows.length;
  const w = width - pad.l - pad.r;
  const ext = Math.max(
    1,
    ...rows.flatMap((r) => [r.low, r.high, r.value].filter((v) => v !== null).map(Math.abs)),
  );
  const lim = niceMax(ext);
  const x = (v) => pad.l + ((v + lim) / (2 * lim)) * w;
  const svg = s("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart interval-chart",
    role: "img",
    "aria-label": title,
  });
  if (title) svg.append(s("text", { x: 8, y: 18, class: "chart-title" }, title));
  const y1 = pad.t + rowH * rows.length;
  for (const v of [-lim, -lim / 2, 0, lim / 2, lim]) {
    svg.append(s("line", { x1: x(v), x2: x(v), y1: pad.t, y2: y1, class: v === 0 ? "zero" : "gridline" }));
    svg.append(
      s("text", { x: x(v), y: y1 + 18, class: "tick", "text-anchor": "middle" }, `${formatTick(v)}${unit}`),
    );
  }
  rows.forEach((r, i) => {
    const y = pad.t + rowH * i + rowH / 2;
    svg.append(s("text", { x: pad.l - 10, y: y + 4, class: "row-label", "text-anchor": "end" }, r.label));
    if (r.value === null || r.value === undefined) {
      svg.append(s("text", { x: x(0) + 6, y: y + 4, class: "tick" }, "n/a"));
      return;
    }
    if (r.low !== null && r.high !== null) {
      svg.append(s("line", { x1: x(r.low), x2: x(r.high), y1: y, y2: y, class: "ci" }));
      for (const v of [r.low, r.high])
        svg.append(s("line", { x1: x(v), x2: x(v), y1: y - 8, y2: y + 8, class: "ci" }));
    }
    const dot = s("circle", {
      cx: x(r.value),
      cy: y,
      r: 7,
      class: `estimate ${r.value >= 0 ? "up" : "down"}`,
    });
    dot.append(s("title", {}, `${r.label}: ${r.value.toFixed(2)}${unit} [${fmt(r.low)}, ${fmt(r.high)}]`));
    svg.append(dot);
  });
  return svg;
}

const fmt = (v) => (v === null || v === undefined ? "n/a" : v.toFixed(2));

function formatTick(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (a >= 1e3) return `${(v / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(a < 1 ? 2 : 1);
}
