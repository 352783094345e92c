"""The mirror never serves a byte from outside the repo folder, whatever the request path looks like.

Every attempt goes over a raw socket (no client-side normalisation of ``..``) to a real server.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

from smart_model_manager.mirror import MirrorServer
from smart_model_manager.store.cache import import_folder

try:
    from ._mirror_fixtures import make_small_repo, raw_request
except ImportError:  # tests/ is not a package: pytest put this folder on sys.path
    from _mirror_fixtures import make_small_repo, raw_request

pytestmark = pytest.mark.integration

MARKER = f"TOP-SECRET-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def booby_trapped(tmp_path_factory: pytest.TempPathFactory) -> tuple[MirrorServer, Path, str]:
    """A root whose snapshot holds symlinks that escape the repo folder, with secrets outside it."""
    base = tmp_path_factory.mktemp("traversal")
    secret = base / "secret.txt"
    secret.write_text(MARKER + " outside the root\n")
    root = base / "root"
    commit = import_folder(make_small_repo(base / "src"), root, "org/small").commit
    (root / "secret.txt").write_text(MARKER + " inside the root, outside every repo\n")
    other = import_folder(make_small_repo(base / "src2"), root, "org/other")
    (other.snapshot / "private.txt").write_text(MARKER + " another repo's file\n")
    snap = root / "models--org--small" / "snapshots" / commit
    (snap / "leak_abs.txt").symlink_to(secret)                                     # absolute, outside root
    (snap / "leak_rel.txt").symlink_to(Path("..", "..", "..", "..", "secret.txt"))  # relative, outside root
    (snap / "leak_root.txt").symlink_to(Path("..", "..", "..", "secret.txt"))       # inside root, not repo
    (snap / "leak_cross.txt").symlink_to(other.snapshot / "private.txt")            # another repo
    (snap / "linkdir").symlink_to(base, target_is_directory=True)                  # a folder outside
    (root / "models--evil--repo").symlink_to(root / "models--org--other", target_is_directory=True)
    with MirrorServer(root) as server:
        yield server, secret, commit


ATTACKS = [
    b"/org/small/resolve/main/../../../secret.txt",
    b"/org/small/resolve/main/../../../../secret.txt",
    b"/org/small/resolve/main/%2e%2e/%2e%2e/%2e%2e/secret.txt",
    b"/org/small/resolve/main/%2E%2E/%2E%2E/%2E%2E/%2E%2E/secret.txt",
    b"/org/small/resolve/main/sub%2F..%2F..%2F..%2F..%2Fsecret.txt",
    b"/org/small/resolve/main/sub/%2F..%2F..%2F..%2F..%2Fsecret.txt",
    b"/org/small/resolve/main/./config.json/../../../../secret.txt",
    b"/org/small/resolve/main//secret.txt",
    b"/org/small/resolve/main/..%5C..%5C..%5C..%5Csecret.txt",
    b"/org/small/resolve/main/..\\..\\..\\..\\secret.txt",
    b"/org/small/resolve/main/C:%5Csecret.txt",
    b"/org/small/resolve/main/config.json%00../../../../secret.txt",
    b"/org/small/resolve/main/leak_abs.txt",
    b"/org/small/resolve/main/leak_rel.txt",
    b"/org/small/resolve/main/leak_root.txt",
    b"/org/small/resolve/main/leak_cross.txt",
    b"/org/small/resolve/main/linkdir/secret.txt",
    b"/org/small/resolve/main/linkdir/root/secret.txt",
    b"/org/small/resolve/..%2F..%2F..%2F..%2Fsecret.txt/config.json",
    b"/org/small/resolve/%2e%2e/config.json",
    b"/%2e%2e/%2e%2e/resolve/main/secret.txt",
    b"/..%2F..%2Fsecret.txt/x/resolve/main/config.json",
    b"/evil/repo/resolve/main/private.txt",
    b"/api/models/org/small/tree/main/..%2F..%2F..%2F..",
    b"/api/models/org/small/tree/main/linkdir",
    b"/api/models/%2e%2e%2F%2e%2e/revision/main",
    b"/api/models/org/small/revision/..%2F..%2F..%2Fsecret.txt",
    b"/api/models/evil/repo",
    b"/../../secret.txt",
    b"/secret.txt",
]


@pytest.mark.parametrize("target", ATTACKS, ids=[a.decode("latin-1") for a in ATTACKS])
@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
def test_escape_attempts_get_4xx_and_never_the_secret(booby_trapped, target: bytes, method: bytes) -> None:
    server, _secret, _commit = booby_trapped
    status, headers, body = raw_request(server.url, target, method)
    assert 400 <= status < 500, (status, body[:200])
    assert MARKER.encode() not in body
    assert all(MARKER not in v for v in headers.values())
    if method == b"GET":
        assert "error" in json.loads(body)  # always a JSON error, never an HTML page or the file


def test_absolute_path_in_one_encoded_segment_is_refused(booby_trapped) -> None:
    server, secret, _commit = booby_trapped
    target = b"/org/small/resolve/main/" + quote(str(secret), safe="").encode()
    status, _headers, body = raw_request(server.url, target)
    assert status in (400, 404) and MARKER.encode() not in body


def test_raw_nul_and_control_bytes_in_request_line_never_500(booby_trapped) -> None:
    server, _secret, _commit = booby_trapped
    for target in (b"/org/small/resolve/main/config.json\x00/../../secret.txt", b"/org/small/resolve/main/%ff%fe"):
        status, _headers, body = raw_request(server.url, target)
        assert 400 <= status < 500 and MARKER.encode() not in body


def test_escaping_symlinks_are_not_listed(booby_trapped) -> None:
    server, _secret, commit = booby_trapped
    status, _h, body = raw_request(server.url, f"/api/models/org/small/tree/{commit}?recursive=true".encode())
    assert status == 200
    paths = {e["path"] for e in json.loads(body)}
    assert paths == {"config.json", "empty.txt", "sub", "sub/dir", "sub/dir/weights.bin",
                     "with space+plus #1.txt"}
    status, _h, body = raw_request(server.url, b"/api/models/org/small")
    assert {s["rfilename"] for s in json.loads(body)["siblings"]} == {
        "config.json", "empty.txt", "sub/dir/weights.bin", "with space+plus #1.txt"}


def test_legitimate_file_next_to_the_traps_is_served(booby_trapped) -> None:
    """The refusals above are about the paths, not a broken server: the honest request works."""
    server, _secret, _commit = booby_trapped
    status, _h, body = raw_request(server.url, b"/org/small/resolve/main/config.json")
    assert status == 200 and json.loads(body)["hidden_size"] == 8
    assert os.path.islink(server.index.root / "models--evil--repo")  # the symlinked repo exists on disk
