"""Names and patterns every layer agrees on (layer 0, stdlib only): one home for each.

Commit ids, the repo-id rule, the file names we write or read, and the CI variables. Patterns are
applied with ``fullmatch`` (``$`` would accept a trailing newline). The cache layout's names (repo
folders, temp names, locks) are ``store.layout``'s.
"""

from __future__ import annotations

import re

# -- ids -------------------------------------------------------------------------------------------
COMMIT = re.compile(r"[0-9a-f]{40}")    # a git commit id, lowercase hex
HEX64 = re.compile(r"[0-9a-f]{64}")     # a sha256 hex digest
# One part of a repo id: huggingface_hub's rule (utils/_validators.py): [A-Za-z0-9._-], starts with an
# alphanumeric, at most 96 characters; the whole id has no "--" or ".." and no part ends in ".git".
_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


def is_commit(value: object) -> bool:
    """A full 40-hex lowercase commit id (never a prefix, never with a trailing newline)."""
    return isinstance(value, str) and COMMIT.fullmatch(value) is not None


def is_repo_id(value: object) -> bool:
    """``name`` or ``org/name`` as the Hub accepts them. The one rule for models.yaml, models.lock, the
    volume manifest, ``smm import --as``, the cache layout and the mirror."""
    if not isinstance(value, str):
        return False
    parts = value.split("/")
    if not 1 <= len(parts) <= 2 or "--" in value or ".." in value:
        return False
    return all(_REPO_PART.fullmatch(p) is not None and not p.endswith(".git") for p in parts)


REPO_ID_EXPECTED = "a repo id like 'org/name' ([A-Za-z0-9._-], no '--' or '..')"

# -- file names ------------------------------------------------------------------------------------
SPEC_NAME = "models.yaml"
LOCK_NAME = "models.lock"
MANIFEST_NAME = "model-metadata.yaml"
CONFIG_FILE = "config.json"
ONNX_DIR = "onnx"
ONNX_FP32_FILE = "onnx/model.onnx"
ONNX_DATA_FILE = "onnx/model.onnx_data"
ONNX_INT8_FILE = "onnx/model.int8.onnx"
ONNX_QUALITY_FILE = "onnx/quality.json"

# -- environment variables that mean "this is a CI job" (read only by settings / environment) -------
CI_VARIABLES = ("CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "CIRCLECI", "TF_BUILD")

__all__ = [
    "CI_VARIABLES", "COMMIT", "CONFIG_FILE", "HEX64", "LOCK_NAME", "MANIFEST_NAME", "ONNX_DATA_FILE", "ONNX_DIR",
    "ONNX_FP32_FILE", "ONNX_INT8_FILE", "ONNX_QUALITY_FILE", "REPO_ID_EXPECTED", "SPEC_NAME", "is_commit",
    "is_repo_id",
]
