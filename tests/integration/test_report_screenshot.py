"""The demo's report opened as a person would: a small demo day through the real API, then a
headless Chromium screenshot of report.html, decoded here (zlib + struct + numpy: no imaging
dependency), and the picture must show the map (heat cells, fences, stores) and the four charts.
The page must need nothing from the network (no tiles, no CDN, no script)."""

from __future__ import annotations

import asyncio
import io
import os
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from pathlib import Path

import asyncpg
import numpy as np
import pytest
from numpy.typing import NDArray
from rich.console import Console

from adapters.demo.city import BRANDS
from adapters.demo.report import DECISION_COLORS, EVENT_COLORS, OUTCOMES

WINDOW = (1200, 6400)  # wide enough for the 1100 px map, tall enough for the whole page
MAP_BG = (243, 240, 232)  # the map's and the close-up's background (report._View.svg)
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
Image = NDArray[np.uint8]


def read_png(data: bytes) -> Image:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) as (h, w, channels)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks, head = 8, [], None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        pos += 12 + n
    assert head is not None
    w, h, depth, color, _, _, interlace = head
    assert depth == 8 and color in (2, 6) and interlace == 0, head
    bpp = 3 if color == 2 else 4
    raw = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8).reshape(h, w * bpp + 1)
    out = np.empty((h, w * bpp), np.uint8)
    prior = np.zeros(w * bpp, np.uint8)
    for y in range(h):
        filt, line = int(raw[y, 0]), raw[y, 1:]
        if filt == 0:
            cur = line.copy()
        elif filt == 1:  # Sub: a running sum per channel, mod 256
            cur = np.cumsum(line.reshape(w, bpp), axis=0, dtype=np.uint64).astype(np.uint8)
            cur = cur.ravel()
        elif filt == 2:  # Up
            cur = line + prior
        else:  # Average and Paeth depend on the byte just decoded: one at a time
            cur = _unfilter(bytearray(line.tobytes()), prior.tobytes(), bpp, filt)
        out[y] = cur
        prior = cur
    return out.reshape(h, w, bpp)[:, :, :3]


def _unfilter(cur: bytearray, prior: bytes, bpp: int, kind: int) -> Image:
    for i in range(len(cur)):
        a = cur[i - bpp] if i >= bpp else 0
        b = prior[i]
        if kind == 3:
            cur[i] = (cur[i] + ((a + b) >> 1)) & 255
            continue
        c = prior[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    return np.frombuffer(bytes(cur), np.uint8)


def rgb(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def count(img: Image, colors: list[str]) -> int:
    """Pixels of exactly one of `colors` (the inside of a filled shape is drawn exactly)."""
    packed = img[..., 0].astype(np.int32) << 16 | img[..., 1].astype(np.int32) << 8 | img[..., 2]
    wanted = [r << 16 | g << 8 | b for r, g, b in map(rgb, colors)]
    return int(np.isin(packed, wanted).sum())


def bands(rows: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of consecutive True rows, as (first, last + 1)."""
    edges = np.flatnonzero(np.diff(np.r_[0, rows.astype(np.int8), 0]))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def screenshot(browser: str, page: Path, shot: Path) -> Image:
    args = [
        "--headless",
        "--no-sandbox",  # root in CI containers
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--screenshot={shot}",
        page.resolve().as_uri(),
    ]
    subprocess.run([browser, *args], check=True, capture_output=True, timeout=60)
    return read_png(shot.read_bytes())


def drawn_in_svg(page: str) -> None:
    """The shapes the report's SVG fills, by colour: the map, the close-up and the four charts,
    each with what it must show."""
    fills = Counter(c.lower() for c in re.findall(r'fill="(#[0-9a-fA-F]{6})"', page))
    assert page.count("<svg") >= 6, "the map, the close-up and four charts"
    heat = set(re.findall(r'fill="(hsl\(\d+,90%,\d+%\))"', page))
    assert len(heat) >= 20, f"footfall heat per H3 cell in many shades: {len(heat)}"
    for b in BRANDS:
        assert fills[b.color.lower()] >= 10, f"{b.name}: stores and competitor fences"
    assert all(fills[c.lower()] for c in EVENT_COLORS.values()), "presence events by type"
    assert fills[OUTCOMES["used"].lower()], "pings per hour by outcome"
    for k in ("send push", "stopped"):
        assert fills[DECISION_COLORS[k].lower()], f"decisions by campaign: {k}"


@pytest.mark.slow
async def test_the_report_shows_the_map_and_the_charts_in_a_browser(
    clean_pool: asyncpg.Pool,
    settings_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    browser = next((b for b in map(shutil.which, BROWSERS) if b), None)
    if browser is None and os.environ.get("GEO_ENGINE_REQUIRE_BROWSER"):
        pytest.fail("no Chromium on this machine (apt-get install chromium) to render the report")
    from adapters.demo.run import run_demo_async

    out = tmp_path / "report.html"
    settings = settings_factory(require_location_consent=True)
    console = Console(file=io.StringIO(), width=200)
    await run_demo_async(100, 7, out, settings, progress=False, console=console)

    # offline: nothing to fetch, nothing to run (the SVG namespace is a name, not a download)
    page = out.read_text(encoding="utf-8")
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page)) - {"http://www.w3.org/2000/svg"}
    assert not urls, urls
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\(", page, re.I)

    # what the browser will draw, as the page declares it (all a machine without Chromium
    # can check: the pixels below need one)
    drawn_in_svg(page)
    if browser is None:
        return
    img = await asyncio.to_thread(screenshot, browser, out, tmp_path / "report.png")
    assert img.shape[:2] == (WINDOW[1], WINDOW[0])
    bg = (img == np.array(MAP_BG, np.uint8)).all(axis=2)
    found = [b for b in bands(bg.any(axis=1)) if b[1] - b[0] >= 200]
    assert len(found) == 2, f"the map and the close-up, by their background: {found}"
    (m0, m1), (z0, z1) = found
    assert 780 <= m1 - m0 <= 820, "the map is 1100 x ~800 px"
    cols = np.flatnonzero(bg[m0:m1].any(axis=0))
    city = img[m0:m1, cols[0] : cols[-1] + 1]
    assert city.shape[1] >= 1000
    # the footfall heat cells: many shades over most of the map, not a flat background
    shades = np.unique(city.reshape(-1, 3), axis=0)
    assert len(shades) >= 300, len(shades)
    plain = (city == np.array(MAP_BG, np.uint8)).all(axis=2) | (city >= 250).all(axis=2)
    assert plain.mean() < 0.6, f"{plain.mean():.0%} of the map is plain background"
    # stores (squares) and competitor fences, in their brands' colours
    for b in BRANDS:
        assert count(city, [b.color]) >= 100, b.name
    # the close-up: fences and fixes drawn, not an empty square
    zoom = img[z0:z1]
    assert len(np.unique(zoom.reshape(-1, 3), axis=0)) >= 50

    # the four charts, below the close-up: each one's bars in its own colours
    charts = img[z1:]
    assert count(charts, list(EVENT_COLORS.values())) >= 1500, "presence events per hour"
    assert count(charts, [OUTCOMES["used"]]) >= 5000, "pings per hour by outcome"
    assert min(count(charts, [b.color]) for b in BRANDS) >= 300, "store visits per store"
    assert count(charts, [DECISION_COLORS["send push"]]) >= 300, "decisions by campaign"
    assert count(charts, [DECISION_COLORS["stopped"]]) >= 300, "decisions by campaign"
    # and the page ends before the window does: nothing cut off
    assert (img[-50:] == 255).all(), "the page is taller than the screenshot"
