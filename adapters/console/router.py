"""GET /console and its static files (HTML, JS modules, CSS, vendored libraries).

The page is the same for every user: it holds no data and no key. The key is typed in the
browser and kept in its sessionStorage; every call the page makes is a public API call."""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from pydantic_settings import BaseSettings, SettingsConfigDict

STATIC = Path(__file__).parent / "static"
# a fresh Debian image may lack /etc/mime.types: a module script served as text/plain is refused
mimetypes.add_type("text/javascript", ".js")
mimetypes.add_type("text/css", ".css")

router = APIRouter(include_in_schema=False)


class ConsoleSettings(BaseSettings):
    """GEO_ENGINE_CONSOLE_TILE_URL: a tile layer under the fences, e.g.
    https://tile.openstreetmap.org/{z}/{x}/{y}.png (none by default: the console works offline)."""

    model_config = SettingsConfigDict(env_prefix="GEO_ENGINE_CONSOLE_", extra="ignore")
    tile_url: str | None = None
    tile_attribution: str = "© OpenStreetMap contributors"


def _csp(tile_url: str | None) -> str:
    """Scripts from this origin only (no inline script, no eval); images from here, data: URIs
    (the drawing toolbar's icons) and the tile server if one is configured."""
    img = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url)  # {s}.tile.example.org: any subdomain of it
        if parts.scheme in ("http", "https") and parts.netloc:
            img += f" {parts.scheme}://{parts.netloc.replace('{s}', '*')}"
    return (
        "default-src 'self'; script-src 'self'; connect-src 'self'; "
        f"img-src {img}; style-src 'self' 'unsafe-inline'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


@router.get("/console")
async def console_root() -> RedirectResponse:
    return RedirectResponse("/console/", status_code=307)


@router.get("/console/", response_class=HTMLResponse)
async def console_index() -> HTMLResponse:
    cfg = ConsoleSettings()
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    page = page.replace("{{TILE_URL}}", html.escape(cfg.tile_url or "", quote=True))
    page = page.replace("{{TILE_ATTRIBUTION}}", html.escape(cfg.tile_attribution, quote=True))
    headers = {"Content-Security-Policy": _csp(cfg.tile_url), "Cache-Control": "no-store"}
    return HTMLResponse(page, headers=headers)


@router.get("/console/{path:path}")
async def console_file(path: str) -> FileResponse:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC.resolve()) or not target.is_file():
        raise HTTPException(404, "not found")
    # no-cache: revalidated (ETag) on each load, so an upgrade is never half old, half new
    return FileResponse(target, headers={"Cache-Control": "no-cache"})
