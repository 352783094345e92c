"""Routing and JSON bodies of the mirror: decoded path segments in, a JSON value or a file out.

Kept apart from the HTTP plumbing in ``server.py`` so the Hub's URL grammar (docs/mirror.md) reads in one
place. ``{repo}`` is one or two segments; known repos are matched first (two segments, then one), then the
keyword position decides.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from ..registry import infer_task
from .index import FileEntry, MirrorIndex, Repo

API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
RESOLVE_PREFIXES = {"datasets": "dataset", "spaces": "space"}
KEYWORDS = {"revision", "tree", "refs", "commits", "paths-info", "discussions", "resolve"}
TRUE = {"1", "true", "yes"}
PR_PREFIX = "refs/pr/"


class HttpError(Exception):
    """A request no route can answer (unknown route, wrong method): status + message, no X-Error-Code."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass
class Request:
    method: str
    segments: list[str]                       # percent-decoded, split on the raw "/"
    query: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def flag(self, name: str, default: bool = False) -> bool:
        values = self.query.get(name)
        # hub >= 1.0 sends true/false, hub 0.x (requests) True/False: compare case-insensitively.
        return values[-1].strip().lower() in TRUE if values else default


@dataclass(frozen=True)
class FileResponse:
    repo_id: str
    commit: str
    entry: FileEntry


def route(index: MirrorIndex, req: Request) -> object:
    """Answer one request: a JSON-able value, or a :class:`FileResponse` for ``/resolve``."""
    segs = req.segments
    if segs[:2] == ["api", "agent-harnesses"] and len(segs) == 2:
        _allow(req, "GET")
        return {"standardEnvVars": [], "harnesses": {}}
    if len(segs) >= 3 and segs[0] == "api" and segs[1] in API_TYPES:
        return _api(index, req, API_TYPES[segs[1]], segs[2:])
    repo_type = "model"
    rest = segs
    if segs and segs[0] in RESOLVE_PREFIXES:
        repo_type, rest = RESOLVE_PREFIXES[segs[0]], segs[1:]
    if "resolve" in rest[1:3]:
        return _resolve(index, req, repo_type, rest)
    raise HttpError(404, f"Not Found: no route for /{'/'.join(segs)} on this mirror")


def _allow(req: Request, *methods: str) -> None:
    allowed = set(methods) | ({"HEAD"} if "GET" in methods else set())
    if req.method not in allowed:
        raise HttpError(405, f"Method {req.method} not allowed here (allowed: {', '.join(sorted(allowed))})")


def _split_repo(index: MirrorIndex, repo_type: str, rest: list[str]) -> tuple[Repo, list[str]]:
    """(repo, remaining segments). Raises NotFound(RepoNotFound) with the most plausible repo id."""
    if len(rest) >= 2 and index.has_repo(f"{rest[0]}/{rest[1]}", repo_type):
        return index.repo(f"{rest[0]}/{rest[1]}", repo_type), rest[2:]
    if index.has_repo(rest[0], repo_type):
        return index.repo(rest[0], repo_type), rest[1:]
    guess = rest[0] if len(rest) == 1 or rest[1] in KEYWORDS else f"{rest[0]}/{rest[1]}"
    return index.repo(guess, repo_type), []  # raises RepoNotFound


def _api(index: MirrorIndex, req: Request, repo_type: str, rest: list[str]) -> object:
    repo, tail = _split_repo(index, repo_type, rest)
    if tail in ([], [""]):
        _allow(req, "GET")
        return repo_info(repo, None, blobs=req.flag("blobs"))
    verb, args = tail[0], tail[1:]
    if verb == "revision" and len(args) == 1:
        _allow(req, "GET")
        return repo_info(repo, args[0], blobs=req.flag("blobs"))
    if verb == "tree" and args:
        _allow(req, "GET")
        commit = repo.resolve(args[0])
        return repo.tree(commit, "/".join(args[1:]), recursive=req.flag("recursive"))
    if verb == "refs" and not args:
        _allow(req, "GET")
        return refs(repo, include_prs=req.flag("include_prs"))
    if verb == "paths-info" and len(args) == 1:
        _allow(req, "POST")
        return paths_info(repo, repo.resolve(args[0]), req.body)
    raise HttpError(404, f"Not Found: /{verb} is not served by this mirror (read-only; see docs/mirror.md)")


def _resolve(index: MirrorIndex, req: Request, repo_type: str, rest: list[str]) -> FileResponse:
    if len(rest) >= 3 and rest[2] == "resolve" and (rest[1] != "resolve" or index.has_repo(
            f"{rest[0]}/{rest[1]}", repo_type)):
        repo_id, tail = f"{rest[0]}/{rest[1]}", rest[3:]
    else:
        repo_id, tail = rest[0], rest[2:]
    repo = index.repo(repo_id, repo_type)
    _allow(req, "GET")
    if len(tail) < 2 or not tail[0]:
        raise HttpError(404, "Not Found: expected /{repo}/resolve/{revision}/{path}")
    commit = repo.resolve(tail[0])
    return FileResponse(repo.repo_id, commit, repo.file(commit, "/".join(tail[1:])))


def _iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _pipeline_tag(files: list[FileEntry]) -> str | None:
    """Guess the task from config.json, so ``pipeline(model=...)`` without ``task`` works (the Hub's model-info ``pipeline_tag``)."""
    config = next((f for f in files if f.path == "config.json"), None)
    if config is None or config.size > 1 << 20:
        return None
    try:
        with open(config.real, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return infer_task(data) if isinstance(data, dict) else None


def repo_info(repo: Repo, revision: str | None, *, blobs: bool = False) -> dict[str, object]:
    """ModelInfo JSON (``GET /api/models/{repo}``) for the commit ``revision`` resolves to."""
    commit = repo.resolve(revision)
    files = repo.files(commit)
    try:
        modified = _iso(os.stat(repo.snapshot(commit)).st_mtime)
    except OSError:
        modified = _iso(0)
    siblings: list[dict[str, object]] = []
    for f in files:
        sib: dict[str, object] = {"rfilename": f.path}
        if blobs:
            sib.update(size=f.size, blobId=f.oid)
            if f.sha256 is not None:
                lfs = f.tree_entry()["lfs"]
                assert isinstance(lfs, dict)
                sib["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": lfs["pointerSize"]}
        siblings.append(sib)
    info: dict[str, object] = {
        "_id": commit[:24], "id": repo.repo_id, "sha": commit, "lastModified": modified, "createdAt": modified, "private": False,
        "gated": False, "disabled": False, "tags": [], "downloads": 0, "likes": 0, "siblings": siblings,
    }
    if "/" in repo.repo_id:
        info["author"] = repo.repo_id.split("/")[0]
    if repo.repo_type == "model":
        info["modelId"] = repo.repo_id
        if any(f.path == "config.json" for f in files):
            info["library_name"] = "transformers"
        tag = _pipeline_tag(files)
        if tag:
            info["pipeline_tag"] = tag
    return info


def refs(repo: Repo, *, include_prs: bool) -> dict[str, object]:
    branches, prs = [], []
    for name, commit in sorted(repo.refs().items()):
        if name.startswith(PR_PREFIX):
            prs.append({"name": name[len(PR_PREFIX):], "ref": name, "targetCommit": commit})
        else:
            # A cache cannot tell tags from branches (both are refs/<name>); call them branches.
            branches.append({"name": name, "ref": f"refs/heads/{name}", "targetCommit": commit})
    out: dict[str, object] = {"branches": branches, "tags": [], "converts": []}
    out["pullRequests"] = prs if include_prs else []
    return out


def paths_info(repo: Repo, commit: str, body: bytes) -> list[dict[str, object]]:
    """``POST paths-info``: tree entries for the listed paths; missing paths are skipped (as on the Hub)."""
    try:
        form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError as err:
        raise HttpError(400, f"paths-info body is not UTF-8 form data: {err}") from err
    wanted = [p.strip("/") for p in form.get("paths", [])]
    everything = repo.tree(commit, "", recursive=True)
    by_path = {str(e["path"]): e for e in everything}
    return [by_path[p] for p in wanted if p in by_path]


__all__ = ["FileResponse", "HttpError", "Request", "route"]
