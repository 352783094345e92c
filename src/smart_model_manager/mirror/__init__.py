"""A read-only Hugging Face-compatible mirror over an HF hub cache folder (``smm mirror serve``).

Served by uvicorn + Starlette (the ``[mirror]`` extra; ``[server]`` includes it), imported only when a
server starts::

    from smart_model_manager.mirror import MirrorServer
    with MirrorServer("/models") as mirror:      # port 0: a free port
        snapshot_download("org/name", endpoint=mirror.url)

See docs/mirror.md for routes, auth and what is never served.
"""

from __future__ import annotations

from .faults import Fault
from .index import FileEntry, MirrorIndex
from .server import Limits, MirrorServer
from .stats import FileStats, MirrorStats

__all__ = ["Fault", "FileEntry", "FileStats", "Limits", "MirrorIndex", "MirrorServer", "MirrorStats"]
