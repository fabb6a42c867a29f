"""The operator's control console: a page of plain ES modules served from the package, speaking only to
the API every other client uses (sign-in, bookings, fleet, alerts, the fleet socket).

No build step: the modules in `static/` are what the browser runs, with Leaflet vendored under
`static/vendor/` (no tile server: the map draws the network's own streets from `GET /map/streets`).
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

STATIC = Path(__file__).parent / "static"
PATH = "/console"


def console_router() -> Router:
    """`/console/` and its files: public (the page signs in with `POST /sessions`), revalidated on each
    load so that an upgrade reaches every dispatcher's browser at once."""
    return create_static_files_router(
        path=PATH,
        directories=[STATIC],
        html_mode=True,
        name="console",
        cache_control=CacheControlHeader(no_cache=True),
        opt={"exclude_from_auth": True},
        include_in_schema=False,
    )


__all__ = ["PATH", "STATIC", "console_router"]
