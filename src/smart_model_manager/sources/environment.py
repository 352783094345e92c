"""Environment detection: a pure function of Settings plus two filesystem checks.

Precedence, highest first (docs/configuration.md):
1. an explicit SMM_ENV;
2. test signals (PYTEST_CURRENT_TEST, TESTING=true);
3. a volume manifest exists (SMM_VOLUME_DIR/model-metadata.yaml, default /app/models);
4. CI signals (CI=true, GITHUB_ACTIONS=true, GITLAB_CI, BUILDKITE, JENKINS_URL, CIRCLECI, TF_BUILD);
5. a local cache that holds models;
6. the hub fallback.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .._layout import CI_VARIABLES
from ..settings import CI, DEV, HUB, PRODUCTION, TEST, Settings, parse_bool
from ..store.scan import read_revisions, repo_folders

log = logging.getLogger(__name__)
_warned: set[str] = set()  # say each unusable TESTING value once per process


@dataclass(frozen=True)
class Detection:
    environment: str   # test | dev | ci | production | hub
    signal: str        # the variable or path that decided it
    reason: str        # one readable sentence

    def __str__(self) -> str:
        return f"{self.environment} ({self.reason})"


def _truthy_ci(name: str, value: str) -> bool:
    if name in ("CI", "GITHUB_ACTIONS", "CIRCLECI"):
        try:
            return parse_bool(name, value)
        except ValueError:
            return False
    if name == "TF_BUILD":
        return value.strip().lower() == "true"
    return value.strip() != ""  # GITLAB_CI, BUILDKITE, JENKINS_URL: set and non-empty


def cache_has_models(cache_dir: Path) -> bool:
    """True when the HF cache folder holds at least one model snapshot. Never creates anything."""
    return any(read_revisions(folder) for _repo_id, folder, _link in repo_folders(cache_dir))


def detect(settings: Settings) -> Detection:
    if settings.env_override:
        return Detection(settings.env_override, "SMM_ENV", f"SMM_ENV={settings.env_override} is set")
    if settings.signal("PYTEST_CURRENT_TEST"):
        return Detection(TEST, "PYTEST_CURRENT_TEST", "running inside a pytest test (PYTEST_CURRENT_TEST is set)")
    testing = settings.signal("TESTING")
    if testing is not None and testing.strip().lower() in ("1", "true", "yes", "on"):
        return Detection(TEST, "TESTING", f"TESTING={testing} is set")
    if testing is not None and testing.strip().lower() not in ("", "0", "false", "no", "off") \
            and testing not in _warned:
        _warned.add(testing)
        log.warning("TESTING=%r is not a boolean, so it is ignored (the environment is detected as if "
                    "it were unset); use TESTING=1/true/yes/on for mocks, or 0/false/no/off", testing)
    if settings.manifest_path.is_file():
        return Detection(PRODUCTION, str(settings.manifest_path),
                         f"a volume manifest exists at {settings.manifest_path}")
    for name in CI_VARIABLES:
        value = settings.signal(name)
        if value is not None and _truthy_ci(name, value):
            return Detection(CI, name, f"{name}={value} is set")
    if cache_has_models(settings.cache_dir):
        return Detection(DEV, str(settings.cache_dir), f"the local model cache {settings.cache_dir} holds models")
    return Detection(HUB, "fallback", "no test, volume, CI or local-cache signal; falling back to the Hub")
