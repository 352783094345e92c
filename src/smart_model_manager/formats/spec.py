"""``models.yaml``: the models a project wants, written by hand; ``smm lock`` pins it into ``models.lock``.

```yaml
models:
  finbert:                          # alias: load_model("finbert")
    repo_id: ProsusAI/finbert
    revision: main                  # branch, tag or 40-hex commit; default main
    model_type: sentiment
    include: ["*.json", "*.txt", "*.safetensors"]   # optional globs; default: everything a loader needs
    exclude: ["onnx/**"]            # optional globs, applied after include
    polarity: {positive: positive, negative: negative, neutral: neutral}  # optional: what each label means
```

Errors name the file, the line and the field (``models.yaml:7: models.finbert.repo_id: ...``).
:func:`select_files` is the one file-selection rule, shared by the lock and by downloads without a lock.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._layout import COMMIT, REPO_ID_EXPECTED, SPEC_NAME, is_repo_id
from ..backends import lock_files
from ..errors import ConfigurationError, LockfileError, UnknownModelTypeError
from ..registry import get_model_type
from . import _fields, _yaml
from ._fields import is_alias, is_format_int, is_revision

DEFAULT_NAME = SPEC_NAME

# Weights in formats no loader here reads. Without this default a lock of ProsusAI/finbert pins (and a pull
# downloads) tf_model.h5 and flax_model.msgpack too: three copies of 440 MB for one usable one.
DEFAULT_EXCLUDE = (
    "*.h5", "*.msgpack", "*.ot", "*.tflite", "*.mlmodel", "*.mlpackage/**", "coreml/**", "openvino/**",
    "onnx/**", "*.gguf", "*.ckpt", ".gitattributes", "README.md", "*.png", "*.jpg",
)
# ...except the files some backend reads (backends.BACKENDS[*].files, e.g. onnx/model.onnx); upstream onnx/
# folders otherwise hold up to nine variants (O1-O4, per-CPU int8) of which none is read. A backend added to
# the table brings its files into locks without touching this module.
DEFAULT_KEEP = lock_files()
PICKLE_WEIGHTS = ("pytorch_model*.bin", "*/pytorch_model*.bin")


@dataclass(frozen=True)
class SpecEntry:
    alias: str
    repo_id: str
    revision: str
    model_type: str
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    line: int | None = None
    polarity: tuple[tuple[str, str], ...] = ()  # (label, positive|negative|neutral); checked against labels by `smm lock`


@dataclass(frozen=True)
class Spec:
    models: dict[str, SpecEntry]
    path: str | None = None


def _match(path: str, patterns: Iterable[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    for pat in patterns:
        if fnmatch.fnmatchcase(path, pat) or ("/" not in pat and fnmatch.fnmatchcase(name, pat)):
            return True
        if pat.endswith("/**") and (path.startswith(pat[:-3] + "/") or fnmatch.fnmatchcase(path, pat[:-1] + "*")):
            return True
    return False


def select_files(paths: Iterable[str], include: Iterable[str] = (), exclude: Iterable[str] = ()) -> list[str]:
    """The files to pin/download, sorted. Globs match the whole path or, without '/', the file name.

    With no ``include``: everything except :data:`DEFAULT_EXCLUDE` (but :data:`DEFAULT_KEEP`), and pickle weights
    (``pytorch_model*.bin``) are dropped when safetensors weights exist (the torch loader refuses pickles
    unless SMM_ALLOW_PICKLE=1, so they would be dead weight).
    """
    include, exclude = tuple(include), tuple(exclude)
    all_paths = sorted(set(paths))
    if include:
        chosen = [p for p in all_paths if _match(p, include)]
    else:
        keep = lock_files()
        chosen = [p for p in all_paths if _match(p, keep) or not _match(p, DEFAULT_EXCLUDE)]
        if any(p.endswith(".safetensors") for p in chosen):
            chosen = [p for p in chosen if not _match(p, PICKLE_WEIGHTS)]
    return [p for p in chosen if not _match(p, exclude)]


def _globs(doc: _yaml.Doc, kp: tuple[Any, ...], raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not all(isinstance(g, str) and g.strip() for g in raw):
        doc.fail(kp, "expected a list of glob patterns such as ['*.json', '*.safetensors']")
    for i, g in enumerate(raw):
        if g.startswith("/") or "\\" in g:
            doc.fail(kp + (i,), f"glob {g!r} must be a relative POSIX pattern")
    return tuple(raw)


KEYS = {"repo_id", "revision", "model_type", "include", "exclude", "polarity"}


def loads(text: str, path: str | Path = "<string>") -> Spec:
    doc = _yaml.load(text, path, LockfileError)
    data = doc.data
    if not isinstance(data, dict):
        doc.fail((), "expected a mapping with a 'models' key")
    unknown = set(data) - {"models", "version"}
    if unknown:
        doc.fail((sorted(unknown)[0],), "unknown key; models.yaml has 'models' (and optionally 'version')")
    if "version" in data and not is_format_int(data["version"], 1):
        doc.fail(("version",), f"expected version: 1 (or no version), got {data['version']!r}")
    raw_models = data.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        doc.fail(("models",), "expected a non-empty mapping of alias -> {repo_id, model_type, ...}")
    models: dict[str, SpecEntry] = {}
    by_repo: dict[str, str] = {}
    by_alias: dict[str, str] = {}
    for alias, raw in raw_models.items():
        kp: tuple[Any, ...] = ("models", alias)
        if not is_alias(alias):  # it may look like a repo id, but then it must not name another repo
            doc.fail(kp, "an alias is letters, digits, '.', '_', '-' (optionally 'org/name')")
        if isinstance(raw, str):  # shorthand "alias: org/name" is not enough: the model type is required
            doc.fail(kp, f"expected a mapping, e.g. {{repo_id: {raw}, model_type: sentiment}}")
        if not isinstance(raw, dict):
            doc.fail(kp, "expected a mapping with repo_id and model_type")
        extra = set(raw) - KEYS
        if extra:
            doc.fail(kp + (sorted(extra)[0],), f"unknown key; expected {', '.join(sorted(KEYS))}")
        for key in ("repo_id", "model_type"):
            if key not in raw:
                doc.fail(kp, f"missing required key '{key}'")
        rid = raw["repo_id"]
        if not is_repo_id(rid):
            doc.fail(kp + ("repo_id",), f"expected {REPO_ID_EXPECTED}, got {rid!r}")
        rev = raw.get("revision", "main")
        if isinstance(rev, int) or rev is None:  # an unquoted all-digit commit prefix parses as int
            doc.fail(kp + ("revision",), f"expected a branch, tag or 40-hex commit as a string, got {rev!r}")
        if not is_revision(rev):
            doc.fail(kp + ("revision",), f"expected a branch, tag or 40-hex commit, got {rev!r}")
        if len(rev) == 40 and not COMMIT.fullmatch(rev) and all(c in "0123456789abcdefABCDEF" for c in rev):
            doc.fail(kp + ("revision",), "commit ids are lowercase hex")
        mtype = raw["model_type"]
        if not isinstance(mtype, str):
            doc.fail(kp + ("model_type",), f"expected a model type name, got {mtype!r}")
        try:
            get_model_type(mtype)
        except UnknownModelTypeError as err:
            doc.fail(kp + ("model_type",), str(err))
        low_alias, low_repo = alias.lower(), rid.lower()
        if low_repo in by_repo:
            doc.fail(kp + ("repo_id",), f"{rid} is listed twice: as {by_repo[low_repo]!r} and as {alias!r}; "
                                        "keep one alias per repo")
        if low_alias in by_alias:
            doc.fail(kp, f"alias {alias!r} conflicts with alias {by_alias[low_alias]!r} (names are "
                         "case-insensitive)")
        # An alias spelled like another entry's repo id would make load_model(name) ambiguous.
        for other_alias, other in models.items():
            if other.repo_id.lower() == low_alias and other.repo_id.lower() != low_repo:
                doc.fail(kp, f"alias {alias!r} is the repo id of {other_alias!r}; rename one of them")
            if other_alias.lower() == low_repo and other.repo_id.lower() != low_repo:
                doc.fail(kp + ("repo_id",), f"{rid} is also used as the alias of {other.repo_id} "
                                            f"({other_alias!r}); rename one of them")
        by_repo[low_repo] = alias
        by_alias[low_alias] = alias
        models[alias] = SpecEntry(alias=alias, repo_id=rid, revision=rev, model_type=mtype,
                                  include=_globs(doc, kp + ("include",), raw.get("include")),
                                  exclude=_globs(doc, kp + ("exclude",), raw.get("exclude")),
                                  line=doc.line(kp),
                                  polarity=tuple(_fields.polarity(doc, kp + ("polarity",),
                                                                  raw.get("polarity")).items()))
    return Spec(models=models, path=str(path))


def load(path: str | Path) -> Spec:
    p = Path(path)
    try:
        text = _yaml.read(p, LockfileError)  # refuses files over the size limit and non-UTF-8 bytes
    except FileNotFoundError:
        raise ConfigurationError(f"{p} does not exist; write it (see docs/artifacts.md) or pass --spec") from None
    return loads(text, p)
