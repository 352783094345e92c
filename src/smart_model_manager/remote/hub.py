"""The Hub transport: metadata and file bytes from a Hub (or any ``HF_ENDPOINT`` mirror), over huggingface_hub.

``huggingface_hub`` is imported inside functions so ``import smart_model_manager`` stays light. ``endpoint=``
and ``token=`` are always passed explicitly: huggingface_hub freezes its environment variables at import
time, so a process that sets ``HF_ENDPOINT`` late would otherwise talk to huggingface.co.

Why not ``hf_hub_download``: it does not verify content. It checks the size and (since huggingface_hub 2.x)
no longer reuses a half-written ``.incomplete`` blob, and its GET takes a timeout; but it never compares the
bytes with a sha256, so a proxy or mirror that serves other bytes goes unnoticed. Here bytes are hashed while
they stream and compared with the lock, every request has a timeout, and retries are bounded and follow the
server's ``Retry-After`` / ``RateLimit`` headers. :class:`HubClient` satisfies ``publish.Downloader``:
``publish.fetch_into`` verifies and publishes what it downloads.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .._version import __version__
from ..errors import IntegrityError, SourceError, Unavailable
from ..settings import Settings
from ..store.fetch import NullProgress, ProgressHook

log = logging.getLogger(__name__)

LIBRARY = "smart-model-manager"
T = TypeVar("T")


# -- what the remote says ------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteFile:
    path: str
    size: int | None
    sha256: str | None       # hex, from LFS metadata; None for small (git) files: their id is a git sha1


@dataclass(frozen=True)
class RemoteRevision:
    repo_id: str
    revision: str
    commit: str
    files: dict[str, RemoteFile]


# -- the transport ---------------------------------------------------------------------------------
class HubClient:
    """Metadata and file bytes from one endpoint, with a timeout on every request and bounded retries.

    Raises ``Unavailable`` for "does not exist / not allowed / offline" (with the reason) and
    ``SourceError`` for transient failures that outlived the retries.
    """

    def __init__(self, endpoint: str, token: str | None = None, *, timeout: float = 30.0, retries: int = 3,
                 offline: bool = False, backoff: float = 0.5, retry_budget: float = 120.0,
                 offline_reason: str | None = None):
        self.endpoint = endpoint.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retries = max(0, retries)
        self.offline = offline
        self.offline_reason = offline_reason   # the variable that made it offline, for the message
        self.backoff = backoff
        self.retry_budget = retry_budget       # seconds of waiting between attempts, all retries together

    @classmethod
    def from_settings(cls, settings: Settings) -> HubClient:
        return cls(settings.endpoint, settings.token, timeout=settings.timeout, retries=settings.retries,
                   offline=settings.offline, retry_budget=settings.retry_budget,
                   offline_reason=settings.offline_origin)

    # error classification: each branch says whether it means "retry", "next source" or "fatal"
    def _classify(self, err: BaseException, what: str) -> BaseException:
        import httpx2
        from huggingface_hub import errors as hf

        if isinstance(err, hf.OfflineModeIsEnabled):
            return Unavailable(f"offline: huggingface_hub is in offline mode ({err})",
                               hint="unset HF_HUB_OFFLINE, or use `smm pull` on a connected machine")
        if isinstance(err, hf.GatedRepoError):
            return Unavailable(f"{what}: the repo is gated at {self.endpoint}: {_first_line(err)}",
                               hint="accept the license on the Hub and set HF_TOKEN")
        if isinstance(err, hf.RepositoryNotFoundError):
            return Unavailable(f"{what}: repository not found at {self.endpoint} (or private: set HF_TOKEN)")
        if isinstance(err, hf.RevisionNotFoundError):
            return Unavailable(f"{what}: revision not found at {self.endpoint}")
        if isinstance(err, hf.RemoteEntryNotFoundError):
            return Unavailable(f"{what}: file not found at {self.endpoint}")
        if isinstance(err, hf.HfHubHTTPError):
            status = err.response.status_code if err.response is not None else None
            if status in (401, 403):
                return Unavailable(f"{what}: access denied ({status}) by {self.endpoint}",
                                   hint="set HF_TOKEN to a token that can read the repo")
            return SourceError(f"{what}: HTTP {status} from {self.endpoint}: {_first_line(err)}")
        if isinstance(err, httpx2.TimeoutException):
            return SourceError(f"{what}: no answer from {self.endpoint} within {self.timeout:g}s "
                               f"({type(err).__name__}); raise SMM_TIMEOUT (or HF_HUB_DOWNLOAD_TIMEOUT) if the "
                               "link is just slow")
        if isinstance(err, httpx2.TooManyRedirects):  # a redirect loop: the endpoint is broken, say where
            url = err.request.url if getattr(err, "_request", None) is not None else self.endpoint
            return SourceError(f"{what}: too many redirects from {url} (a redirect loop?): {err}")
        if isinstance(err, (httpx2.TransportError, ConnectionError)):
            return SourceError(f"{what}: cannot reach {self.endpoint}: {type(err).__name__}: {err}")
        return err  # e.g. ENOSPC while writing: local, not retried, not disguised as a network error

    def _retry(self, what: str, fn: Callable[[], T]) -> T:
        if self.offline:
            names = self.offline_reason or "HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE or SMM_OFFLINE"
            raise Unavailable(f"offline ({names} is set)",
                              hint=f"unset {names} or provision with `smm pull` beforehand")
        attempts = self.retries + 1
        waited = 0.0
        for attempt in range(1, attempts + 1):
            try:
                return fn()
            except (Unavailable, IntegrityError):
                raise
            except Exception as err:  # noqa: BLE001 - classified right below
                mapped = self._classify(err, what)
                if mapped is err:  # not a network condition: a bug or a local problem, raised as is
                    raise
                if not isinstance(mapped, SourceError):  # "does not exist" / "not allowed": next source
                    raise mapped from err
                if attempt == attempts:
                    raise SourceError(f"{mapped} (gave up after {attempts} attempt(s); SMM_RETRIES)") from err
                asked = server_wait(err)
                delay = min(self.backoff * 2 ** (attempt - 1), 8.0) if asked is None else asked
                if asked is not None and waited + asked > self.retry_budget:
                    # waiting cannot help within the budget: say when it can, instead of hammering the server
                    when = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + asked))
                    raise SourceError(
                        f"{mapped}: the server asks to retry in {asked:g}s (after {when}), more than the "
                        f"{self.retry_budget - waited:g}s left of the retry budget (SMM_RETRY_BUDGET); retry "
                        "after that time, or raise SMM_RETRY_BUDGET") from err
                waited += delay
                log.info("%s; retry %d/%d in %.1fs%s", mapped, attempt, attempts - 1, delay,
                         " (as the server asked)" if asked is not None else "")
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def revision(self, repo_id: str, revision: str) -> RemoteRevision:
        """The commit ``revision`` points to and every file of that commit (size, LFS sha256), in ONE request.

        ``model_info(files_metadata=True)`` rather than ``list_repo_tree``: the latter takes no timeout in
        huggingface_hub 2.x, and one request cannot see a branch move between "which commit" and "which files".
        """
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint, token=self.token, library_name=LIBRARY)

        def call() -> RemoteRevision:
            info = api.model_info(repo_id, revision=revision, files_metadata=True, timeout=self.timeout)
            files = {}
            for sib in info.siblings or []:
                lfs = sib.lfs
                sha = lfs.get("sha256") if isinstance(lfs, dict) else getattr(lfs, "sha256", None)
                files[sib.rfilename] = RemoteFile(sib.rfilename, sib.size, sha or None)
            if not info.sha:
                raise SourceError(f"{repo_id}@{revision}: {self.endpoint} did not say which commit it is")
            return RemoteRevision(repo_id, revision, info.sha, files)

        return self._retry(f"{repo_id}@{revision}", call)

    def download(self, repo_id: str, commit: str, path: str, dest: Path, *, size: int | None = None,
                 progress: ProgressHook | None = None) -> tuple[int, str]:
        """Stream one file into ``dest``; returns (bytes, sha256 hex). Resumes with Range after a drop."""
        from huggingface_hub import __version__ as hf_version, hf_hub_url
        from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

        url = hf_hub_url(repo_id, path, revision=commit, endpoint=self.endpoint)
        headers = build_hf_headers(token=self.token, library_name=LIBRARY, library_version=__version__,
                                   user_agent={"huggingface_hub": hf_version})
        headers["Accept-Encoding"] = "identity"  # byte offsets must be file offsets for Range resumes
        progress = progress or NullProgress()
        key = f"{repo_id}/{path}"
        state: dict[str, Any] = {"written": 0, "hash": hashlib.sha256()}
        with open(dest, "wb") as fh:
            def attempt() -> None:
                done = state["written"]
                if size is not None and done == size and done > 0:
                    return  # the drop happened after the last byte
                h = dict(headers)
                if done:
                    h["Range"] = f"bytes={done}-"
                with get_session().stream("GET", url, headers=h, timeout=self.timeout) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        hf_raise_for_status(resp)
                    if done and resp.status_code != 206:  # the server ignored Range: start over
                        fh.seek(0)
                        fh.truncate()
                        state["written"], state["hash"] = 0, hashlib.sha256()
                    for chunk in resp.iter_bytes():  # as received: a drop keeps every byte already read
                        if size is not None and state["written"] + len(chunk) > size:
                            # never let a wrong (or hostile) endpoint fill the disk past what the lock pins
                            raise IntegrityError(
                                f"{repo_id}: {path}: {self.endpoint} sent more than the pinned {size} bytes; "
                                "stopped the download", path=path, expected=str(size),
                                actual=f">{size}")
                        fh.write(chunk)
                        state["hash"].update(chunk)
                        state["written"] += len(chunk)
                        progress.advance(key, len(chunk))

            self._retry(f"{repo_id}@{commit[:12]}: {path}", attempt)
            fh.flush()
            os.fsync(fh.fileno())
        return state["written"], state["hash"].hexdigest()


def server_wait(err: BaseException) -> float | None:
    """Seconds the server asked us to wait before the next attempt, or None when it did not say.

    As huggingface_hub's own ``http_backoff`` decides: a 429 whose ``RateLimit`` header says no requests are
    left waits for the window's reset (parsed by huggingface_hub's ``parse_ratelimit_headers``; the reset is
    whole seconds rounded down, so one second is added, as huggingface_hub does); otherwise ``Retry-After``.
    Retry-After is parsed here because huggingface_hub's parser is private and skips the HTTP-date form.
    """
    response = getattr(err, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    from huggingface_hub.utils import parse_ratelimit_headers

    if getattr(response, "status_code", None) == 429:
        info = parse_ratelimit_headers(headers)
        if info is not None and info.remaining == 0:
            return float(info.reset_in_seconds) + 1.0
    return _retry_after(headers.get("retry-after"))


def _retry_after(value: str | None) -> float | None:
    """RFC 9110 Retry-After: delay-seconds or an HTTP-date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


__all__ = ["LIBRARY", "HubClient", "NullProgress", "ProgressHook", "RemoteFile", "RemoteRevision", "server_wait"]
