"""The int8 file re-checked on the CPU that serves it, when a process loads it.

ONNX Runtime's int8 kernels differ by instruction set (AVX2, AVX-512, VNNI, AMX, ARM), so a gate passed on
the export machine says nothing certain about another node. ``onnx/quality.json`` carries fp32 reference
outputs for a golden subset (:mod:`..onnx.gate`); before the int8 runner is handed out it runs on them here:

- ``passed``: the int8 runner is used;
- ``fallback``: this CPU disagrees beyond the bound: the fp32 runner is used for this process, with ONE
  WARNING line naming this CPU's features;
- ``not-gated``: no references, or references computed from another fp32 file: fp32, one WARNING.

An explicit ``onnx-int8`` backend is refused instead (it asked for int8 and nothing else). The result is
``runner.int8_check`` (``LoadInfo.int8_check``: ``/v1/models``, the ``smm_int8_fallback`` metric).

The check costs a model call on 8 texts (64 when this CPU computes differently), which a cold start
notices. A pod's init container can do it instead: ``smm validate --int8-verdicts FILE`` writes what it
found on this node, and a process started with ``SMM_INT8_VERDICTS=FILE`` uses the verdict recorded for
its int8 file (by sha256) and its CPU (same model and flags) without re-checking.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._layout import ONNX_FP32_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE
from ..errors import BackendError
from ..store.layout import snapshot_glob

log = logging.getLogger(__name__)


VERDICTS_FORMAT = 1


def _int8_digest(quality: dict[str, Any]) -> str | None:
    entry = (quality.get("files") or {}).get(ONNX_INT8_FILE)
    return entry.get("sha256") if isinstance(entry, dict) else None


def _cpu_key(cpu: dict[str, Any]) -> list[Any]:
    return [cpu.get("machine"), cpu.get("model"), sorted(cpu.get("flags") or [])]


def read_verdict(path: Path | None, quality: dict[str, Any], cpu: dict[str, Any]) -> Any:
    """The :class:`..onnx.gate.Recheck` ``smm validate --int8-verdicts`` recorded for this int8 file (by its
    sha256) on a CPU like this one (same model and int8 flags), or None."""
    import json

    from ..onnx.gate import Recheck

    digest = _int8_digest(quality)
    if path is None or digest is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.info("ignoring the int8 verdicts file %s (%s); re-checking at load", path, err)
        return None
    for v in data.get("verdicts", []) if isinstance(data, dict) else []:
        if isinstance(v, dict) and v.get("int8_sha256") == digest and _cpu_key(v.get("cpu") or {}) == _cpu_key(cpu):
            fields = {k: v[k] for k in ("status", "reason", "cpu", "gate_cpu", "samples", "value", "upper",
                                        "threshold") if k in v}
            if fields.get("status") in ("passed", "fallback", "not-gated"):
                return Recheck(**{**fields, "reason": f"{fields.get('reason', '')} (verdict from {path})"})
    return None


def write_verdicts(path: Path, checks: list[dict[str, Any]]) -> None:
    """Write ``checks`` (:func:`check_tree` rows that carry ``int8_sha256``) atomically for later loads."""
    import json
    import os
    import tempfile

    rows = [c for c in checks if c.get("int8_sha256") and c.get("status") in ("passed", "fallback", "not-gated")]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"format": VERDICTS_FORMAT, "verdicts": rows}, fh, indent=2, sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class PriorCheck:
    """What the int8 re-check needs before the runner exists (``quality.json``, this CPU's features, a
    recorded verdict), read by :meth:`prepare` while the session is being built (``while_loading``)."""

    def __init__(self, folder: Path, verdicts: Path | None = None):
        self.folder, self.verdicts = folder, verdicts
        self.quality: dict[str, Any] | None = None
        self.cpu: dict[str, Any] = {}
        self.verdict: Any = None

    def prepare(self) -> None:
        from ..onnx.gate import recheck  # noqa: F401  (imported here, while the session builds)
        from ._common import read_json
        from .cpu import cpu_features

        self.quality = read_json(self.folder / ONNX_QUALITY_FILE)
        self.cpu = cpu_features()
        self.verdict = read_verdict(self.verdicts, self.quality, self.cpu)

    def result(self, runner: Any, model_type: str) -> Any:
        from ..onnx.gate import recheck

        if self.quality is None:
            self.prepare()
        assert self.quality is not None
        return self.verdict or recheck(self.quality, model_type, runner, cpu=self.cpu)


def check_int8_runner(runner: Any, folder: Path, model_type: str, verdicts: Path | None = None) -> Any:
    """:class:`..onnx.gate.Recheck` of ``runner`` (an int8 runner of ``folder``) on this CPU: the recorded
    verdict for this file and CPU if ``verdicts`` has one, else measured now."""
    return PriorCheck(folder, verdicts).result(runner, model_type)


def checked_int8(runner: Any, folder: Path, model_type: str, *, backend: str, model_ref: str,
                 load_fp32: Callable[[], Any], verdicts: Path | None = None, prior: PriorCheck | None = None) -> Any:
    """``runner`` if the int8 file holds up on this CPU, else the fp32 runner (``auto``/``onnx``).
    ``prior``: the :class:`PriorCheck` already prepared while ``runner`` loaded (else read now)."""
    result = (prior or PriorCheck(folder, verdicts)).result(runner, model_type)
    if result.status == "passed":
        runner.int8_check = result.as_dict()
        log.debug("int8 re-check of %s passed in %.3fs: %s", model_ref, result.seconds, result.reason)
        return runner
    what = ("disagrees with its fp32 references on" if result.status == "fallback"
            else "is not gated on")
    if backend == "onnx-int8":
        raise BackendError(f"backend 'onnx-int8': {folder / ONNX_INT8_FILE} {what} this CPU: {result.reason}; "
                           "use backend 'onnx' (it falls back to fp32) or 'onnx-fp32'")
    if not (folder / ONNX_FP32_FILE).is_file():
        raise BackendError(f"{folder / ONNX_INT8_FILE} {what} this CPU ({result.reason}) and there is no "
                           f"{folder / ONNX_FP32_FILE} to fall back to; pin it in the lock (it is part of "
                           "the export) or use backend 'torch'")
    del runner
    fp32 = load_fp32()
    fp32.int8_check = result.as_dict()
    log.warning("int8 model of %s %s this CPU; serving ONNX fp32 in this process instead: %s", model_ref,
                "disagrees with its fp32 references on" if result.status == "fallback" else "is not gated for",
                result.reason)
    return fp32





def check_tree(root: Path, *, hash_fp32: bool = True) -> list[dict[str, Any]]:
    """Re-check every published int8 file under ``root`` (a volume or a cache) on this CPU, hashing each
    fp32 file for the reference digest (``smm validate --full``: the node-cache DaemonSet and the provision
    Job run it on a node). One dict per file: ``path``, ``status``, ``reason``, ``seconds``."""
    from ..onnx.gate import recheck
    from ..store.hashing import sha256_file, with_prefix
    from ._common import read_json

    out: list[dict[str, Any]] = []
    for qpath in sorted(Path(root).glob(snapshot_glob(ONNX_QUALITY_FILE))):
        folder = qpath.parents[1]
        int8_path = folder / ONNX_INT8_FILE
        if not int8_path.is_file():
            continue
        quality = read_json(qpath)
        rel = folder.relative_to(root).as_posix()
        if not (isinstance(quality.get("int8"), dict) and quality["int8"].get("accepted") is True):
            continue
        model_type = str(quality.get("model_type") or "sentiment")
        fp32 = folder / ONNX_FP32_FILE
        if not fp32.is_file():
            digest: str | None = "missing"
        else:  # quick mode trusts the digest quality.json recorded (the size check already ran)
            digest = with_prefix(sha256_file(fp32)) if hash_fp32 else None
        try:
            from .cpu import cpu_features
            from .onnx import load_onnx_runner

            runner = load_onnx_runner(folder, model_type, onnx_file=int8_path)
            result = recheck(quality, model_type, runner, cpu=cpu_features(), fp32_sha256=digest)
        except (BackendError, ImportError) as err:
            out.append({"path": rel, "status": "skipped", "reason": str(err)})
            continue
        out.append({"path": rel, "int8_sha256": _int8_digest(quality), **result.as_dict()})
    return out
__all__ = ["PriorCheck", "check_int8_runner", "check_tree", "checked_int8", "read_verdict", "write_verdicts"]
