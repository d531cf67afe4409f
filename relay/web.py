"""The 호가창 web page: static files from ``relay/web/`` and the local cluster's page config.

No build step: the page is plain HTML, CSS and JavaScript modules, served as they are. A request
path is resolved inside the web directory and refused (404) when it would leave it, names a
folder, or has a type the page does not use. ``/config.json`` (the gateway's URL and the local
demo key) exists only when the relay was started with a page config (``exchange up`` does that)
and is given to loopback clients only: the demo key must never leave the machine it was made on.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

WEB_ROOT = Path(__file__).with_name("web")
INDEX = "index.html"
CONFIG_PATH = "/config.json"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

# The page runs only its own files and may not be framed: it can place orders with a key, so no
# other site may wrap it (clickjacking) and no injected script may run. It talks to the relay
# and to a gateway whose URL it is given, hence any http(s)/ws(s) origin for connections.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self' http: https: ws: wss:; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True)
class WebFile:
    """What to answer one page request with."""

    status: int
    content_type: str
    body: bytes


NOT_FOUND = WebFile(404, "text/plain; charset=utf-8", b"not found\n")


def web_file(url_path: str, root: Path = WEB_ROOT) -> WebFile:
    """The static file a URL path names under ``root``, or 404 when there is none to give."""
    relative = unquote(url_path).lstrip("/") or INDEX
    base = root.resolve()
    target = (base / relative).resolve()
    # resolve() folds `..` and symlinks, so a path that leaves the web directory shows it here.
    if not target.is_relative_to(base) or not target.is_file():
        return NOT_FOUND
    content_type = CONTENT_TYPES.get(target.suffix)
    if content_type is None:
        return NOT_FOUND
    return WebFile(200, content_type, target.read_bytes())


def page_config(config_file: Path | None, remote_host: str, host_header: str) -> WebFile:
    """The page's config for a client at ``remote_host``: only on loopback, only when one was set.

    The Host header must name loopback too: a page of another site whose name was re-pointed at
    127.0.0.1 (DNS rebinding) comes from a loopback address but asks for its own host name.
    """
    if config_file is None or not is_loopback(remote_host) or not is_loopback(host_name(host_header)):
        return NOT_FOUND
    return WebFile(200, CONTENT_TYPES[".json"], config_file.read_bytes())


def host_name(host_header: str) -> str:
    """The host of a Host header, without its port or an IPv6 address's brackets."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if ":" in host_header else host_header


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
