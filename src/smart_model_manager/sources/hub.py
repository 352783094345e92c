"""The Hub source: download on demand from the Hub (or any ``HF_ENDPOINT`` mirror) into the local cache,
verified BEFORE anything is published.

The transport is any ``remote.base.RemoteClient`` (``remote.hub.HubClient``, the only module that talks to
a Hub, by default); verification and publishing are :mod:`..store.fetch`. This module only decides what to fetch for a request and what the result means.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..remote.base import RemoteClient
from ..remote.hub import HubClient
from ..settings import Settings
from ..store.fetch import Want, fetch_into
from ..store.writer import clean_stale_staging
from .base import Request, Resolved, Unavailable, Verified, read_schema

log = logging.getLogger(__name__)


class HubSource:
    """Download on demand into the local cache (or ``root``) and return the verified snapshot.

    With a lock entry for the requested commit, every file is checked against its pinned sha256 before
    it is published. Without one, the revision's files are fetched and published unverified (LFS files
    are still checked against the sha256 the endpoint lists), and a warning says so.
    """

    name = "hub"

    def __init__(self, settings: Settings, *, client: RemoteClient | None = None, root: Path | None = None,
                 jobs: int = 4):
        self.settings = settings
        self.root = Path(root) if root is not None else Path(settings.cache_dir)
        self.client: RemoteClient = client or HubClient.from_settings(settings)
        self.jobs = jobs

    def resolve(self, request: Request) -> Resolved:
        from ..formats.spec import select_files

        if self.settings.offline:
            name = self.settings.offline_origin or "HF_HUB_OFFLINE"
            raise Unavailable(f"offline ({name} is set): no download attempted",
                              hint=f"provision beforehand with `smm pull` or unset {name}")
        pinned = request.pinned
        commit = request.want_commit
        revision = request.revision or (pinned.revision if pinned is not None else None) or "main"
        if pinned is not None and commit == pinned.commit and pinned.files:
            wants = {rel: Want.from_entry(e) for rel, e in pinned.files.items()}
            verified = Verified.FULL
        else:
            remote = self.client.revision(request.repo_id, commit or revision)
            commit = remote.commit
            wants = {rel: Want(remote.files[rel].size, remote.files[rel].sha256)
                     for rel in select_files(remote.files)}
            if not wants:
                raise Unavailable(f"{request.repo_id}@{revision} at {self.client.endpoint} has no loadable files")
            verified = Verified.LFS_ONLY if any(w.sha256 for w in wants.values()) else Verified.NONE
        assert commit is not None  # the pinned branch has one; the remote branch just set it
        ref = revision if revision != commit and len(revision) != 40 else None
        clean_stale_staging(self.root)  # leftovers of a killed process; live writers hold their lock
        result = fetch_into(self.root, self.client, request.repo_id, commit, wants, revision=ref, jobs=self.jobs)
        labels, dim = read_schema(result.snapshot)
        log.info("hub: %s@%s ready in %s (%d downloaded, %d reused, verified=%s)", request.repo_id, commit[:12],
                 self.root, len(result.downloaded) + len(result.repaired), len(result.reused), verified)
        return Resolved(repo_id=request.repo_id, source=self.name, path=result.snapshot, commit=commit,
                        revision=request.revision, labels=tuple((pinned.labels if pinned else ()) or labels),
                        dimension=(pinned.dimension if pinned else None) or dim,
                        files=dict(pinned.files) if pinned else {}, verified=verified)


__all__ = ["HubSource"]
