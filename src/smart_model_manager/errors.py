"""The exception tree of smart-model-manager.

Every error subclasses :class:`SmmError` *and* the builtin it specialises, so callers can catch
either (the huggingface_hub habit: ``LocalEntryNotFoundError(FileNotFoundError, ...)``)::

    SmmError
    ├── ConfigurationError(ValueError)        a bad setting or argument (SMM_ENV=prod, SMM_BACKEND=gpu)
    │   └── UnknownModelTypeError(ValueError) a model type nobody registered
    ├── FormatError(ValueError)               a malformed data file; names file and line
    │   ├── ManifestError                     model-metadata.yaml
    │   └── LockfileError                     models.yaml / models.lock
    ├── ModelNotFoundError(LookupError)       no source had the model; lists every source tried
    ├── IntegrityError(ValueError)            a file's bytes are not the ones pinned (never falls through)
    │   └── MissingFileError(FileNotFoundError)  a manifest/lock lists a file that is not on disk
    ├── SourceError(OSError)                  a source failed for a transient reason (network, timeout)
    ├── BackendError(RuntimeError)            a backend cannot load the model (missing extra, missing .onnx)
    └── MirrorError(OSError)                  the mirror server cannot start or serve

Control flow, not errors (they never leave the library; the resolver and the CLI turn them into the above)::

    Unavailable(Exception)                    "this source does not have the model": try the next source
"""

from __future__ import annotations

import os


class SmmError(Exception):
    """Base class of every error raised by smart-model-manager."""


class ConfigurationError(SmmError, ValueError):
    """A setting, environment variable or argument has a value we cannot use."""


class UnknownModelTypeError(ConfigurationError):
    """``load_model(..., model_type=X)`` with an X nobody registered."""


class FormatError(SmmError, ValueError):
    """A data file is malformed. Carries the file and the 1-based line."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None, line: int | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class ManifestError(FormatError):
    """``model-metadata.yaml`` is malformed."""


class LockfileError(FormatError):
    """``models.yaml`` or ``models.lock`` is malformed or inconsistent."""


class ModelNotFoundError(SmmError, LookupError):
    """No source could provide the model. ``attempts`` lists (source, reason) for each one tried."""

    def __init__(self, message: str, *, attempts: list[tuple[str, str]] | None = None):
        self.attempts = list(attempts or [])
        super().__init__(message)


class IntegrityError(SmmError, ValueError):
    """A file's bytes do not match the pinned digest or size. Never falls through to another source."""

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None,
                 expected: str | None = None, actual: str | None = None):
        self.path = os.fspath(path) if path is not None else None
        self.expected = expected
        self.actual = actual
        super().__init__(message)


class MissingFileError(IntegrityError, FileNotFoundError):
    """A manifest or lock names a file that is not on disk."""


class SignatureError(IntegrityError):
    """A signed lock's signature is missing, malformed, from a key not accepted, or over other bytes."""


class SourceError(SmmError, OSError):
    """A source failed for a reason that may be transient (network down, timeout, server error)."""


class BackendError(SmmError, RuntimeError):
    """A backend cannot load the model: missing optional dependency, missing exported file, ..."""


class MirrorError(SmmError, OSError):
    """The mirror server cannot start or serve."""


class Unavailable(Exception):  # noqa: N818 - a signal, not an error: it never reaches a caller
    """Not an error: this source does not have the model; the resolver tries the next one.

    ``reason`` says why (recorded in ``ModelNotFoundError.attempts``); ``hint`` what would make it available.
    """

    def __init__(self, reason: str, hint: str | None = None):
        self.reason = reason
        self.hint = hint
        super().__init__(reason)


__all__ = [
    "BackendError", "ConfigurationError", "FormatError", "IntegrityError", "LockfileError",
    "ManifestError", "MirrorError", "MissingFileError", "ModelNotFoundError", "SignatureError", "SmmError",
    "SourceError", "Unavailable", "UnknownModelTypeError",
]
