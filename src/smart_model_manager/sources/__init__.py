"""Sources: one way each to obtain a verified local folder (or, for mocks, a schema).

Each source's ``resolve(request)`` returns a :class:`Resolved`, raises :class:`Unavailable` to mean
"try the next source", or raises a fatal error (``IntegrityError``, ``FormatError``) that stops the chain
(the full contract: :class:`~.base.Source`). Which sources each environment asks: :mod:`.chains`.
"""

from .base import Pinned, Request, Resolved, Source, Unavailable, Verified

__all__ = ["Pinned", "Request", "Resolved", "Source", "Unavailable", "Verified"]
