"""A small client for the OCI distribution API (any v2 registry), on the standard library.

Why not the ``oras`` Python SDK (0.2.x): its ``upload_manifest`` takes a dict and lets ``requests``
re-serialise it (``json=manifest``), so the bytes a registry stores are not the bytes we built and
hashed; the digest changes and a pod pinned to the built digest would not find its image (measured
against docker-registry 2.8: built ``sha256:17a8e78e...``, stored by oras 0.2.43 as ``sha256:5356c116...``).
It also
brings ``requests`` and ``jsonschema``. The protocol subset needed here is small: ``HEAD``/monolithic
``POST``+``PUT`` for blobs, ``PUT``/``GET`` for manifests, and the Basic / Bearer-token challenge.

Credentials (:class:`Credentials`) come from settings: ``SMM_REGISTRY_USERNAME`` + ``SMM_REGISTRY_PASSWORD``
(basic, or exchanged for a bearer token when the registry asks for one), ``SMM_REGISTRY_TOKEN`` (a bearer
token sent as is), or ``SMM_REGISTRY_AUTH_FILE`` (a docker ``config.json``, the ``.dockerconfigjson`` key
of a ``kubernetes.io/dockerconfigjson`` Secret).
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ConfigurationError, FormatError, ModelNotFoundError, SourceError

_REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:localhost|[A-Za-z0-9.-]+\.[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+(?=:))(?::\d+)?")
REFERENCE_EXPECTED = "REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], e.g. registry.example.com/team/models:v1"


class RegistryError(SourceError):
    """The registry refused or failed a request. ``status`` is the HTTP status (None: no answer)."""

    def __init__(self, message: str, *, status: int | None = None):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class Reference:
    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return (f"{self.registry}/{self.repository}" + (f":{self.tag}" if self.tag else "")
                + (f"@{self.digest}" if self.digest else ""))

    @property
    def target(self) -> str:
        """What a manifest request names: the digest when pinned, else the tag."""
        return self.digest or self.tag or "latest"


def parse_reference(ref: str) -> Reference:
    """``host[:port]/repo[:tag][@sha256:...]``. The registry host is required: no implicit Docker Hub."""
    rest, _, digest = ref.partition("@")
    host, slash, path = rest.partition("/")
    if not slash or not _HOST.fullmatch(host):
        raise ConfigurationError(f"{ref!r} is not an image reference with a registry: expected {REFERENCE_EXPECTED}")
    repo, tag = path, None
    if ":" in path.rsplit("/", 1)[-1]:
        repo, _, tag = path.rpartition(":")
    if not _REPO.fullmatch(repo) or (tag is not None and not _TAG.fullmatch(tag)) or (
            digest and not _DIGEST.fullmatch(digest)):
        raise ConfigurationError(f"{ref!r} is not a valid image reference: expected {REFERENCE_EXPECTED} "
                                 "(repository in lower case)")
    return Reference(host, repo, tag, digest or None)


@dataclass(frozen=True)
class Credentials:
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @classmethod
    def resolve(cls, registry: str, *, username: str | None = None, password: str | None = None,
                token: str | None = None, auth_file: Path | None = None) -> Credentials:
        """Explicit values first, then the auth file's entry for ``registry`` (none: anonymous)."""
        if token or (username and password):
            return cls(username, password, token)
        if auth_file is not None:
            return cls._from_file(registry, auth_file)
        return cls()

    @classmethod
    def _from_file(cls, registry: str, path: Path) -> Credentials:
        try:
            doc = json.loads(Path(path).read_text())
            auths: Mapping[str, Any] = doc.get("auths", {})
        except (OSError, ValueError, AttributeError) as err:
            raise ConfigurationError(f"SMM_REGISTRY_AUTH_FILE {path}: not a readable docker config.json "
                                     f"({err}); expected {{\"auths\": {{\"{registry}\": {{\"auth\": \"...\"}}}}}}") from err
        for key in (registry, f"https://{registry}", f"http://{registry}", f"https://{registry}/v2/"):
            entry = auths.get(key)
            if isinstance(entry, dict):
                if entry.get("registrytoken"):
                    return cls(token=str(entry["registrytoken"]))
                user, pw = entry.get("username"), entry.get("password")
                if entry.get("auth"):
                    user, _, pw = base64.b64decode(entry["auth"]).decode("utf-8").partition(":")
                return cls(user or None, pw or None)
        return cls()


class RegistryClient:
    """One registry. Each request opens its own connection (uploads are few and large)."""

    def __init__(self, registry: str, *, credentials: Credentials | None = None, plain_http: bool = False,
                 timeout: float = 30.0):
        self.registry = registry
        self.scheme = "http" if plain_http else "https"
        self.credentials = credentials or Credentials()
        self.timeout = timeout
        self._auth: dict[str, str] = {}  # scope -> Authorization header value

    # -- the API -------------------------------------------------------------------------------------
    def has_blob(self, repo: str, digest: str) -> bool:
        status, _h, _b = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull",
                                      ok=(200, 404))
        return status == 200

    def upload_blob(self, repo: str, digest: str, size: int, body: BinaryIO) -> None:
        scope = f"repository:{repo}:pull,push"
        _s, headers, _b = self.request("POST", f"/v2/{repo}/blobs/uploads/", scope=scope, ok=(202,),
                                       headers={"Content-Length": "0"})
        location = headers.get("location") or ""
        sep = "&" if "?" in location else "?"
        self.request("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", scope=scope, ok=(201,),
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)}, body=body)

    def put_manifest(self, repo: str, target: str, data: bytes, media_type: str) -> str:
        _s, headers, _b = self.request("PUT", f"/v2/{repo}/manifests/{target}", scope=f"repository:{repo}:pull,push",
                                       ok=(201,), headers={"Content-Type": media_type,
                                                           "Content-Length": str(len(data))}, body=data)
        return headers.get("docker-content-digest", "")

    def get_manifest(self, repo: str, target: str, accept: str) -> tuple[bytes, str]:
        _s, headers, body = self.request("GET", f"/v2/{repo}/manifests/{target}", scope=f"repository:{repo}:pull",
                                         ok=(200,), headers={"Accept": accept})
        return body, headers.get("content-type", "")

    def open_blob(self, repo: str, digest: str) -> http.client.HTTPResponse:
        return self.request_stream("GET", f"/v2/{repo}/blobs/{digest}", scope=f"repository:{repo}:pull")

    # -- transport and auth ----------------------------------------------------------------------------
    def request(self, method: str, url: str, *, scope: str, ok: tuple[int, ...], headers: dict[str, str] | None = None,
                body: bytes | BinaryIO | None = None) -> tuple[int, dict[str, str], bytes]:
        resp = self._send(method, url, scope=scope, headers=headers or {}, body=body)
        with resp:
            data = resp.read() if method != "HEAD" else b""
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status not in ok:
                raise self._failure(method, url, resp.status, data)
            return resp.status, hdrs, data

    def request_stream(self, method: str, url: str, *, scope: str) -> http.client.HTTPResponse:
        for _ in range(5):  # a registry may redirect blob reads to its storage
            resp = self._send(method, url, scope=scope, headers={}, body=None)
            if resp.status in (301, 302, 303, 307, 308):
                url = resp.getheader("location") or ""
                resp.close()
                continue
            if resp.status != 200:
                data = resp.read()
                resp.close()
                raise self._failure(method, url, resp.status, data)
            return resp
        raise RegistryError(f"{method} {url}: too many redirects")

    def _send(self, method: str, url: str, *, scope: str, headers: dict[str, str],
              body: bytes | BinaryIO | None) -> http.client.HTTPResponse:
        start = body.tell() if hasattr(body, "tell") else None  # type: ignore[union-attr]
        resp = self._once(method, url, {**headers, **self._authorization(scope)}, body)
        if resp.status == 401 and scope not in self._auth:
            challenge = resp.getheader("www-authenticate") or ""
            resp.read()
            resp.close()
            self._auth[scope] = self._answer(challenge, scope)
            if start is not None:
                body.seek(start)  # type: ignore[union-attr]
            resp = self._once(method, url, {**headers, **self._authorization(scope)}, body)
        return resp

    def _authorization(self, scope: str) -> dict[str, str]:
        if scope in self._auth:
            return {"Authorization": self._auth[scope]}
        if self.credentials.token:
            return {"Authorization": f"Bearer {self.credentials.token}"}
        return {}

    def _once(self, method: str, url: str, headers: dict[str, str], body: bytes | BinaryIO | None
              ) -> http.client.HTTPResponse:
        parts = urllib.parse.urlsplit(url)
        host = parts.netloc or self.registry
        scheme = parts.scheme or self.scheme
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = conn_cls(host, timeout=self.timeout)
        try:
            conn.request(method, path, body=body, headers=headers)
            return conn.getresponse()
        except TimeoutError as err:
            conn.close()
            raise RegistryError(f"registry {host} did not answer {method} within {self.timeout:g}s "
                                "(raise SMM_TIMEOUT for a slow registry)") from err
        except OSError as err:
            conn.close()
            hint = " (is it running? for a registry without TLS pass --plain-http)" if scheme == "https" else \
                " (is it running?)"
            raise RegistryError(f"registry {host} is unreachable over {scheme}: "
                                f"{getattr(err, 'strerror', None) or err}{hint}") from err

    def _answer(self, challenge: str, scope: str) -> str:
        scheme, _, params = challenge.partition(" ")
        fields = dict(re.findall(r'(\w+)="([^"]*)"', params))
        c = self.credentials
        basic = (base64.b64encode(f"{c.username}:{c.password}".encode()).decode()
                 if c.username and c.password is not None else None)
        if scheme.lower() == "basic":
            if basic is None:
                raise RegistryError(f"registry {self.registry} needs a username and password (401); set "
                                    "SMM_REGISTRY_USERNAME and SMM_REGISTRY_PASSWORD or SMM_REGISTRY_AUTH_FILE",
                                    status=401)
            return f"Basic {basic}"
        if scheme.lower() == "bearer" and fields.get("realm"):
            query = urllib.parse.urlencode({k: v for k, v in (("service", fields.get("service")),
                                                               ("scope", scope)) if v})
            token_url = f"{fields['realm']}{'&' if '?' in fields['realm'] else '?'}{query}"
            status, _h, data = RegistryClient(self.registry, timeout=self.timeout)._plain(
                token_url, {"Authorization": f"Basic {basic}"} if basic else {})
            if status != 200:
                raise RegistryError(f"the token service of {self.registry} refused the credentials ({status}); "
                                    "check SMM_REGISTRY_USERNAME / SMM_REGISTRY_PASSWORD", status=status)
            doc = json.loads(data)
            return f"Bearer {doc.get('token') or doc.get('access_token')}"
        raise RegistryError(f"registry {self.registry} asks for authentication this client does not speak: "
                            f"{challenge or '(no WWW-Authenticate header)'}", status=401)

    def _plain(self, url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        resp = self._once("GET", url, headers, None)
        with resp:
            return resp.status, dict(resp.getheaders()), resp.read()

    def _failure(self, method: str, url: str, status: int, data: bytes) -> Exception:
        detail = ""
        try:
            errs = json.loads(data).get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errs if isinstance(e, dict))
        except (ValueError, AttributeError):
            detail = data[:200].decode("utf-8", "replace").strip()
        where = urllib.parse.urlsplit(url).path
        msg = f"registry {self.registry} answered {status} to {method} {where}" + (f" ({detail})" if detail else "")
        if status == 401:
            return RegistryError(f"{msg}: the credentials were refused; check SMM_REGISTRY_USERNAME / "
                                 "SMM_REGISTRY_PASSWORD / SMM_REGISTRY_TOKEN / SMM_REGISTRY_AUTH_FILE", status=status)
        if status == 403:
            return RegistryError(f"{msg}: these credentials may not do this (push rights?)", status=status)
        if status == 404 and method == "GET":
            return ModelNotFoundError(f"{msg}: no such image or tag", attempts=[(self.registry, "404")])
        if status == 400 and b"DIGEST_INVALID" in data:
            return FormatError(f"{msg}: the bytes sent do not hash to their digest")
        return RegistryError(msg, status=status)


__all__ = ["REFERENCE_EXPECTED", "Credentials", "Reference", "RegistryClient", "RegistryError", "parse_reference"]
