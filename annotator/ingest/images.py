"""Where images may come from: local files only under an image root, URLs only from allowed hosts.

An imported file is untrusted input. Its ``image_path`` could name any file on the server
(``/home/x/secret.png``, ``../../..``) and its ``image_url`` any address the annotators'
browsers can reach (their own localhost, the intranet). So:

* **Local files** are confined to an *image root*. ``IFL_IMAGE_ROOT`` sets it; the default is
  ``db/images`` under the working directory (like the default database ``db/ifl.sqlite``).
  ``ifl import`` resolves each ``image_path`` (relative paths against its root, links
  followed), refuses one outside the root and stores the resolved absolute path. Its root is
  ``IFL_IMAGE_ROOT`` if set, else the folder of the imported file; that folder is then recorded
  in the database (``study_settings``, key ``image_roots``), so the app shows those images too.
  The app serves a stored path only if, resolved again, it is inside the configured root or a
  recorded one, exists, is a file and starts like a PNG, JPEG, GIF, WebP or BMP image (no SVG:
  it can carry script).
* **URLs** must be ``http``/``https``. ``IFL_IMAGE_HOSTS`` is a comma-separated allow-list of
  host names (``images.example.org``, or ``*.example.org`` for its subdomains); empty allows
  any host. The browser still fetches an allowed URL itself, with no referrer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, insert, select, update

from db.models import StudySetting, utcnow

__all__ = [
    "DEFAULT_IMAGE_ROOT",
    "IMAGE_ROOTS_SETTING",
    "confine_image_path",
    "image_root",
    "image_roots",
    "image_url_allowed",
    "image_url_problem",
    "looks_like_image",
    "record_image_root",
    "servable_image_path",
]

DEFAULT_IMAGE_ROOT = Path("db") / "images"
IMAGE_ROOTS_SETTING = "image_roots"

# File signatures of the raster formats browsers show; SVG is left out on purpose.
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".gif": (b"GIF87a", b"GIF89a"),
    ".webp": (b"RIFF",),
    ".bmp": (b"BM",),
}


def image_root() -> Path:
    """The configured image root, absolute: ``IFL_IMAGE_ROOT``, else ``db/images`` in the working directory."""
    configured = os.environ.get("IFL_IMAGE_ROOT", "").strip()
    return (Path(configured).expanduser() if configured else DEFAULT_IMAGE_ROOT).resolve()


def confine_image_path(path: str, root: Path) -> Path:
    """``path`` resolved (relative to ``root``, links followed); a ValueError if it leaves ``root``.

    The file need not exist: confinement is about where a path points, existence is checked
    separately (an import only warns about missing files).
    """
    if "\x00" in path:
        raise ValueError(f"image path {path!r} contains a NUL byte")
    root = root.resolve()
    resolved = (root / Path(path).expanduser()).resolve()
    if not resolved.is_relative_to(root):
        raise ValueError(f"image path {path!r} is outside the image root {str(root)!r}")
    return resolved


def looks_like_image(path: Path) -> bool:
    """True for a readable file whose suffix and first bytes are those of a PNG, JPEG, GIF, WebP or BMP."""
    signatures = _SIGNATURES.get(path.suffix.lower())
    if not signatures:
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(12)
    except OSError:
        return False
    if path.suffix.lower() == ".webp":
        return head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    return head.startswith(signatures)


def servable_image_path(stored: str | None, roots: Iterable[Path] | None = None) -> Path | None:
    """The image file to show for a stored ``image_path``, or None when it must not be shown.

    Only a file inside one of ``roots`` (default: the configured :func:`image_root`; pass
    :func:`image_roots` to include the roots recorded at import) that exists and looks like an
    image. The path is resolved again here, so a link planted after the import cannot lead out.
    """
    if not stored:
        return None
    for root in (image_root(),) if roots is None else roots:
        try:
            resolved = confine_image_path(stored, root)
        except (ValueError, OSError):
            continue
        if resolved.is_file() and looks_like_image(resolved):
            return resolved
    return None


def image_url_problem(url: str) -> str | None:
    """Why the browser may not fetch ``url`` (for an error message), or None if it may."""
    if not url or any(character.isspace() or ord(character) < 32 or character == "\\" for character in url):
        return "is not a plain http(s) URL (it has spaces, control characters or backslashes)"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "is not a well-formed URL"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return "is not an http(s) URL with a host"
    allowed = [entry.strip().lower() for entry in os.environ.get("IFL_IMAGE_HOSTS", "").split(",") if entry.strip()]
    if allowed and not any(host == entry or (entry.startswith("*.") and host.endswith(entry[1:])) for entry in allowed):
        return f"has the host {host!r}, which IFL_IMAGE_HOSTS does not allow ({', '.join(allowed)})"
    return None


def image_url_allowed(url: str) -> bool:
    """True if the browser may fetch ``url``: http(s), a host, and the host in ``IFL_IMAGE_HOSTS`` if set.

    Backslashes, whitespace and control characters are refused outright: browsers and
    ``urlsplit`` disagree about where the host of such a URL is.
    """
    return image_url_problem(url) is None


def _recorded_roots(connection: Connection) -> list[str]:
    value = connection.execute(select(StudySetting.value).where(StudySetting.key == IMAGE_ROOTS_SETTING)).scalar()
    return list(json.loads(value)) if value else []


def image_roots(engine: Engine) -> list[Path]:
    """The configured image root, then every root recorded by ``ifl import``: where images may be served from."""
    with engine.connect() as connection:
        recorded = _recorded_roots(connection)
    configured = image_root()
    return [configured, *(Path(root) for root in recorded if Path(root) != configured)]


def record_image_root(connection: Connection, root: Path) -> None:
    """Remember ``root`` (inside the caller's transaction) so the app serves images imported under it."""
    root_text = str(root.resolve())
    recorded = _recorded_roots(connection)
    if root_text in recorded:
        return
    value = json.dumps([*recorded, root_text])
    if recorded:
        connection.execute(
            update(StudySetting).where(StudySetting.key == IMAGE_ROOTS_SETTING).values(value=value, updated_at=utcnow())
        )
    else:
        connection.execute(insert(StudySetting).values(key=IMAGE_ROOTS_SETTING, value=value))
