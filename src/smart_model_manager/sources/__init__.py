"""Sources: one way each to obtain a verified local folder (or, for mocks, a schema).

Each source's ``resolve(request)`` returns a :class:`Resolved`, raises :class:`Unavailable` to mean
"try the next source", or raises a fatal error (``IntegrityError``, ``FormatError``) that stops the chain.
"""

from .base import Request, Resolved, Source, Unavailable

__all__ = ["Request", "Resolved", "Source", "Unavailable"]
