"""The demo's HTML report: one self-contained file (inline SVG, no script, no tile server, no
CDN) with the city map, a close-up of one customer's visit, charts and the summary figures."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h3
import numpy as np
import shapely

from adapters.demo.city import AREAS, BRANDS, PERIPHERIQUE, SEINE, City, to_xy
from adapters.demo.simulate import Fleet

if TYPE_CHECKING:
    from adapters.demo.summary import DemoSummary, Event, Sent

EVENT_COLORS = {"enter": "#2e9e44", "dwell": "#e08a00", "exit": "#c0392b"}
OUTCOMES = {
    "used": "#3b6ea5",
    "rejected": "#555555",
    "duplicate": "#9b59b6",
    "late": "#e67e22",
    "impossible_speed": "#c0392b",
    "mock": "#e84393",
    "low_accuracy": "#95a5a6",
    "no_location_consent": "#2c3e50",
    "location_consent_refused": "#7f8c8d",
}
DECISION_COLORS = {
    "send push": "#2e9e44", "send sms": "#1f6fb4", "held push": "#a3d9a5", "held sms": "#9cc3e6",
    "call task": "#8e44ad", "holdout": "#e08a00", "control": "#f3c77a", "stopped": "#d5d0c5",
}  # fmt: skip
HEAT_RES = 9
HEAT_SAMPLE = 250_000


def _el(tag: str, inner: str = "", **attrs: Any) -> str:
    """One SVG element: fill_opacity= becomes fill-opacity=, class_= class=; floats rounded."""

    def value(v: Any) -> str:
        return f"{v:.2f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)

    kv = " ".join(f'{k.rstrip("_").replace("_", "-")}="{value(v)}"' for k, v in attrs.items())
    return f"<{tag} {kv}>{inner}</{tag}>"


def _tip(text: str) -> str:
    return f"<title>{escape(text)}</title>"


class _View:
    """Planar metres -> SVG pixels (y down) for a box, at a given width."""

    def __init__(self, box: tuple[float, float, float, float], width: int) -> None:
        self.x0, self.y0, x1, self.y1 = box
        self.k = width / (x1 - self.x0)
        self.w, self.h = width, int((self.y1 - self.y0) * self.k)

    def xy(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.x0) * self.k, (self.y1 - y) * self.k

    def pts(self, x: Any, y: Any) -> str:
        px = ((np.asarray(x) - self.x0) * self.k).tolist()
        py = ((self.y1 - np.asarray(y)) * self.k).tolist()
        return " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px, py, strict=True))

    def shape(self, g: shapely.Geometry, title: str, **style: Any) -> str:
        xy = shapely.get_coordinates(shapely.get_exterior_ring(g))
        return _el("polygon", _tip(title), points=self.pts(xy[:, 0], xy[:, 1]), **style)

    def svg(self, id_: str, parts: list[str]) -> str:
        bg = _el("rect", width="100%", height="100%", fill="#f3f0e8")
        box = f"0 0 {self.w} {self.h}"
        return _el("svg", bg + "".join(parts), id=id_, viewBox=box, width=self.w, height=self.h)


def _hhmm(t: float) -> str:
    return f"{int(t // 3600) % 24:02d}:{int(t % 3600 // 60):02d}"


def _used(fleet: Fleet, sent: Sent) -> Any:
    """Rows the engine used: accepted and not ignored."""
    return np.array([not r for r in sent.ignored], bool) & ~fleet.bad


def _heat(v: _View, lat: list[float], lon: list[float]) -> str:
    """Used fixes per H3 cell (res 9): yellow to dark red, faint where few."""
    cells = Counter(h3.latlng_to_cell(a, b, HEAT_RES) for a, b in zip(lat, lon, strict=True))
    top = math.log1p(max(cells.values(), default=1))
    out = []
    for cell, n in cells.items():
        ring = np.array(h3.cell_to_boundary(cell))
        f = math.log1p(n) / top
        color = f"hsl({52 - 52 * f:.0f},90%,{58 - 20 * f:.0f}%)"
        points = v.pts(*to_xy(ring[:, 0], ring[:, 1]))
        out.append(_el("polygon", _tip(f"{n:,} fixes"), points=points, fill=color,
                       fill_opacity=0.08 + 0.6 * f * f))  # fmt: skip
    return "".join(out)


def _track(fleet: Fleet, sent: Sent, c: int) -> tuple[Any, Any, Any, Any]:
    """Customer c's used fixes in time order: ts, x, y, accuracy."""
    rows = np.nonzero((fleet.customer == c) & _used(fleet, sent))[0]
    rows = rows[np.argsort(fleet.ts[rows], kind="stable")]
    x, y = to_xy(fleet.lat[rows], fleet.lon[rows])
    return fleet.ts[rows], x, y, fleet.acc[rows]


def _markers(v: _View, events: list[Event], t: Any, x: Any, y: Any, r: float) -> str:
    """Each event at the fix nearest in time."""
    out = []
    for e in events if len(t) else []:
        i = int(np.argmin(np.abs(t - e.ts)))
        cx, cy = v.xy(float(x[i]), float(y[i]))
        tip = _tip(f"{e.type} {e.fence_id} {_hhmm(e.ts)}")
        out.append(_el("circle", tip, cx=cx, cy=cy, r=r, fill=EVENT_COLORS[e.type],
                       stroke="#fff", stroke_width=1.5))  # fmt: skip
    return "".join(out)


def _legend(x: float, y: float, items: list[tuple[str, str]]) -> str:
    h = 20 * len(items) + 10
    out = [_el("rect", x=x - 8, y=y - 8, width=230, height=h, fill="#fff", fill_opacity=0.85)]
    for i, (color, text) in enumerate(items):
        out.append(_el("rect", x=x, y=y + 20 * i, width=12, height=12, fill=color))
        out.append(_el("text", escape(text), x=x + 18, y=y + 10 + 20 * i, class_="leg"))
    return "".join(out)


def _city_map(city: City, fleet: Fleet, sent: Sent, events: list[Event], c: int) -> str:
    px, py = to_xy([p[0] for p in PERIPHERIQUE], [p[1] for p in PERIPHERIQUE])
    xs, ys = [s.x for s in city.stores], [s.y for s in city.stores]
    box = (min(*xs, *px) - 600, min(*ys, *py) - 900, max(*xs, *px) + 600, max(*ys, *py) + 500)
    v = _View(box, 1100)
    idx = np.nonzero(_used(fleet, sent))[0]
    if len(idx) > HEAT_SAMPLE:
        idx = np.sort(np.random.default_rng(0).choice(idx, HEAT_SAMPLE, replace=False))
    seine = v.pts(*to_xy([p[0] for p in SEINE], [p[1] for p in SEINE]))
    parts = [
        _el("polygon", _tip("Boulevard Périphérique"), points=v.pts(px, py), fill="#fbf9f3",
            stroke="#a9a293", stroke_dasharray="6 4"),
        _heat(v, fleet.lat[idx].tolist(), fleet.lon[idx].tolist()),
        _el("polyline", _tip("La Seine"), points=seine, fill="none", stroke="#8fbde3",
            stroke_width=7, stroke_opacity=0.8, stroke_linejoin="round"),
    ]  # fmt: skip
    for name, lat, lon, *_ in AREAS:
        ax, ay = v.xy(*(float(a) for a in to_xy(lat, lon)))
        parts.append(_el("text", escape(name), x=ax, y=ay - 16, class_="area"))
    for s in city.stores:
        cx, cy = v.xy(s.x, s.y)
        tip, col = _tip(f"{s.name} ({s.id})"), s.brand.color
        parts.append(v.shape(s.shape, s.name, fill=col))
        if s.brand.kind == "store":
            parts.append(_el("rect", tip, x=cx - 4, y=cy - 4, width=8, height=8, fill=col,
                             stroke="#fff"))  # fmt: skip
        else:
            parts.append(_el("circle", tip, cx=cx, cy=cy, r=4.5, fill="none", stroke=col,
                             stroke_width=2.5))  # fmt: skip
    t, x, y, _ = _track(fleet, sent, c)
    parts.append(_el("polyline", points=v.pts(x, y), fill="none", stroke="#222",
                     stroke_width=1.6, stroke_opacity=0.8))  # fmt: skip
    parts.append(_markers(v, [e for e in events if e.customer_id == f"c{c:06d}"], t, x, y, 5))
    legend = [(b.color, b.name + (" (competitor)" if b.kind != "store" else "")) for b in BRANDS]
    legend += [(EVENT_COLORS[k], f"{k} (customer c{c:06d})") for k in EVENT_COLORS]
    parts.append(_legend(18, v.h - 20 * len(legend) - 14, legend))
    return v.svg("map", parts)


def _zoom(city: City, fleet: Fleet, sent: Sent, events: list[Event], c: int) -> str:
    """300 m around customer c's first store visit: fences, fixes with their accuracy circles,
    the path, the events; and the list of those events."""
    visit = next((v for v in fleet.visits if v.customer == c), None)
    if visit is None:
        return "<p>No store visit to show.</p>"
    s, half = city.stores[visit.store], 150.0
    v = _View((s.x - half, s.y - half, s.x + half, s.y + half), 560)
    t, x, y, acc = _track(fleet, sent, c)
    span = (t > visit.t_in - 1800) & (t < visit.t_out + 1800)
    keep = span & (np.abs(x - s.x) < 2 * half) & (np.abs(y - s.y) < 2 * half)
    parts = []
    box = shapely.box(s.x - half, s.y - half, s.x + half, s.y + half)
    for f in city.fences:
        if f.shape.intersects(box):
            col, zone = city.stores[f.store].brand.color, f.kind == "zone"
            dash = {"stroke_dasharray": "4 3"} if zone else {}
            parts.append(v.shape(f.shape, f"{f.id}: {f.name}", fill=col, stroke=col,
                                 fill_opacity=0.1 if zone else 0.3, **dash))  # fmt: skip
    for ti, xi, yi, ai in zip(t[keep], x[keep], y[keep], acc[keep], strict=True):
        cx, cy = v.xy(float(xi), float(yi))
        parts.append(_el("circle", cx=cx, cy=cy, r=ai * v.k, fill="#3b6ea5", fill_opacity=0.06,
                         stroke="#3b6ea5", stroke_opacity=0.3))  # fmt: skip
        tip = _tip(f"{_hhmm(ti)} ± {ai:.0f} m")
        parts.append(_el("circle", tip, cx=cx, cy=cy, r=2.5, fill="#1d3c61"))
    parts.append(_el("polyline", points=v.pts(x[keep], y[keep]), fill="none", stroke="#1d3c61",
                     stroke_width=1.2, stroke_opacity=0.6))  # fmt: skip
    ours = {f.id for f in city.fences if f.store == visit.store}
    mine = [e for e in events if e.customer_id == f"c{c:06d}" and e.fence_id in ours]
    parts.append(_markers(v, mine, t[keep], x[keep], y[keep], 7))
    bar = _el(
        "line", x1=20, y1=v.h - 20, x2=20 + 50 * v.k, y2=v.h - 20, stroke="#333", stroke_width=3
    )
    parts.append(bar + _el("text", "50 m", x=20, y=v.h - 28, class_="leg"))
    names = {f.id: f.name for f in city.fences}
    rows = [[_hhmm(e.ts), e.type, e.fence_id, names[e.fence_id]] for e in mine]
    head = f"{s.name} ({s.id}): in {_hhmm(visit.t_in)}, out {_hhmm(visit.t_out)} (truth)"
    return v.svg("zoom", parts) + _table(head, ["time", "event", "fence", "name"], rows)


def _bars(title: str, labels: list[str], stacks: Sequence[Mapping[str, float]],
          colors: dict[str, str], horizontal: bool = False,
          texts: Sequence[str] | None = None) -> str:  # fmt: skip
    """A stacked bar chart, legend on top; horizontal bars are labelled first/total (or with
    `texts`)."""
    top = max((sum(s.values()) for s in stacks), default=0) or 1
    n, w, y0 = len(labels), 700 if horizontal else 640, 40 + 18 * math.ceil(len(colors) / 4)
    left, row = (280, 15) if horizontal else (50, 0)
    h = y0 + n * row + 10 if horizontal else y0 + 250
    scale = (w - left - 70) / top if horizontal else (h - y0 - 30) / top
    step = (w - left - 10) / max(n, 1)
    parts = [_el("text", escape(title), x=w / 2, y=16, class_="ttl")]
    for j, (k, col) in enumerate(colors.items()):
        lx, ly = 10 + (j % 4) * 155, 28 + 18 * (j // 4)
        parts.append(_el("rect", x=lx, y=ly, width=10, height=10, fill=col))
        parts.append(_el("text", escape(k), x=lx + 14, y=ly + 9, class_="ax"))
    for i, (label, stack) in enumerate(zip(labels, stacks, strict=True)):
        pos = 0.0
        for key, val in stack.items():
            size, tip = val * scale, _tip(f"{label} {key}: {val:,.0f}")
            if horizontal:
                xy = {"x": left + pos, "y": y0 + i * row, "width": size, "height": row - 3}
            else:
                xy = {"x": left + i * step + 1, "y": h - 30 - pos - size, "width": step - 2,
                      "height": size}  # fmt: skip
            parts.append(_el("rect", tip, fill=colors[key], **xy))
            pos += size
        if horizontal:
            vals = list(stack.values())
            text = f"{vals[0]:,.0f}/{sum(vals):,.0f}" if len(vals) > 1 else f"{vals[0]:,.0f}"
            text = escape(texts[i]) if texts else text
            ty = y0 + i * row + 10
            parts.append(_el("text", escape(label), x=left - 6, y=ty, class_="ax",
                             text_anchor="end") + _el("text", text, x=left + pos + 4, y=ty,
                                                      class_="ax"))  # fmt: skip
        elif i % 2 == 0:
            parts.append(_el("text", escape(label), x=left + (i + 0.5) * step, y=h - 14,
                             class_="ax", text_anchor="middle"))  # fmt: skip
    if not horizontal:
        parts.append(_el("text", f"{top:,.0f}", x=left - 6, y=y0 + 4, class_="ax",
                         text_anchor="end"))  # fmt: skip
        parts.append(_el("line", x1=left, y1=h - 30, x2=w - 10, y2=h - 30, stroke="#888"))
    return _el("svg", "".join(parts), class_="chart", viewBox=f"0 0 {w} {h}", width=w, height=h)


def _decision_chart(s: DemoSummary) -> str:
    """Per campaign: offers sent or held by channel, holdout, control, and how many times a
    rule stopped it (consent, objection, suppression, pressure, hours...)."""
    m = s.marketing
    if m is None:
        return ""
    stacks = [{k: m.by_campaign[(c, k)] for k in DECISION_COLORS} for c in m.audience.campaigns]
    names = list(m.audience.campaigns.values())
    offers = [sum(v for k, v in st.items() if k.startswith(("send", "held"))) for st in stacks]
    texts = [f"{o:,} offers" for o in offers]
    return _bars("Decisions by campaign and outcome", names, stacks, DECISION_COLORS, True, texts)


def _table(title: str, head: list[str], rows: list[list[Any]]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return f"<table><caption>{escape(title)}</caption><tr>{th}</tr>{body}</table>"


CSS = """body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#666}
.row{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}table{border-collapse:collapse}
caption{font-weight:600;text-align:left;padding:4px 0}th,td{border-bottom:1px solid #ddd;
padding:3px 10px;text-align:right}td:first-child,th:first-child{text-align:left}
.area{font-size:10px;fill:#6b6455;text-anchor:middle}.leg{font-size:12px;fill:#222}
.ax{font-size:10px;fill:#444}.ttl{font-size:13px;font-weight:600;text-anchor:middle}"""


def write_report(
    out: Path,
    city: City,
    fleet: Fleet,
    sent: Sent,
    s: DemoSummary,
    tables: list[tuple[str, list[str], list[list[str]]]],
) -> Path:
    """Write the report to `out` (`tables`: the summary, as printed); return its path."""
    events, hours, c = sent.events, list(range(6, 24)), s.showcase
    per_hour = Counter((int(e.ts // 3600), e.type) for e in events)
    hour_labels = [f"{h}h" for h in hours]
    ev_chart = _bars(
        "Presence events per hour (local time)",
        hour_labels,
        [{k: per_hour[(h, k)] for k in EVENT_COLORS} for h in hours],
        EVENT_COLORS,
    )
    outcome = np.array(sent.ignored, dtype=object)
    outcome[outcome == ""] = "used"
    outcome[fleet.bad] = "rejected"
    counts = Counter(zip((fleet.ts // 3600).astype(int).tolist(), outcome.tolist(), strict=True))
    ping_chart = _bars(
        "Pings per hour of fix time, by outcome",
        hour_labels,
        [{k: counts[(h, k)] for k in OUTCOMES} for h in hours],
        OUTCOMES,
    )
    order = sorted({k for k, _ in s.by_store}, key=lambda k: -s.by_store[(k, "planned")])
    by_id = {st.id: st for st in city.stores}
    colors = {b.name: b.color for b in BRANDS} | {"not detected": "#d5d0c5"}
    stacks = [
        {by_id[k].brand.name: s.by_store[(k, "detected")],
         "not detected": s.by_store[(k, "planned")] - s.by_store[(k, "detected")]}
        for k in order
    ]  # fmt: skip
    store_chart = _bars(
        "Store visits: detected / planned, per store",
        [f"{by_id[k].name} ({k})" for k in order],
        stacks,
        colors,
        True,
    )
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>geo-engine demo: Paris, {s.day:%d %B %Y}</title><style>{CSS}</style></head><body>
<h1>geo-engine demo: a day in Paris</h1>
<p class="sub">{s.day:%A %d %B %Y} · {s.customers:,} customers · {s.rows:,} pings through the
HTTP API at {s.pings_per_s:,.0f} pings/s · {len(events):,} presence events · seed {city.seed}</p>
<div class="row">{"".join(_table(*t) for t in tables)}</div>
<h2>The city</h2>
<p class="sub">Footfall: fixes the engine used, per H3 cell (resolution 9), faint yellow to dark
red. Squares: stores; rings: competitors (their fences are drawn to scale underneath). The black
line is customer c{c:06d}'s day; the dots, their presence events. Outlines are approximate and
drawn offline: no tiles.</p>
{_city_map(city, fleet, sent, events, c)}
<h2>One visit, close up</h2>
<p class="sub">Customer c{c:06d} around their first store visit: the fixes the engine used, with
their accuracy circles, and the events it produced. Dashed: department zones.</p>
<div class="row">{_zoom(city, fleet, sent, events, c)}</div>
<h2>Charts</h2>
<div class="row">{ev_chart}{ping_chart}{store_chart}{_decision_chart(s)}</div>
</body></html>"""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out.resolve()
