"""The dashboard's static files, as they are served: path, content type, bytes.

The page, its script and its style ship inside the package (``setup.cfg`` package_data)
and are read once. Nothing is fetched from anywhere else, so the page works offline; the
Content-Security-Policy allows scripts, styles and connections to this origin only, and no
inline script or style: the page holds no secret and runs nothing it did not load from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Final

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "Asset", "load"]

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file: the path it is served at, its file name and content type."""

    path: str
    filename: str
    content_type: str


#: The page, its script and its style.
ASSETS: Final = (
    Asset("/_admin/dashboard", "index.html", "text/html; charset=utf-8"),
    Asset("/_admin/dashboard.js", "dashboard.js", "text/javascript; charset=utf-8"),
    Asset("/_admin/dashboard.css", "dashboard.css", "text/css; charset=utf-8"),
)


def load(asset: Asset) -> bytes:
    """The file's bytes, from the installed package."""
    return resources.files(__package__).joinpath(asset.filename).read_bytes()
