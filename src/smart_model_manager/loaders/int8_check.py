"""The int8 file re-checked on the CPU that serves it, when a process loads it.

ONNX Runtime's int8 kernels differ by instruction set (AVX2, AVX-512, VNNI, AMX, ARM), so a gate passed on
the export machine says nothing certain about another node. ``onnx/quality.json`` carries fp32 reference
outputs for a golden subset (:mod:`..int8_gate`); before the int8 runner is handed out it runs on them here:

- ``passed``: the int8 runner is used;
- ``fallback``: this CPU disagrees beyond the bound: the fp32 runner is used for this process, with ONE
  WARNING line naming this CPU's features;
- ``not-gated``: no references, or references computed from another fp32 file: fp32, one WARNING.

An explicit ``onnx-int8`` backend is refused instead (it asked for int8 and nothing else). The result is
``runner.int8_check`` (``LoadInfo.int8_check``: ``/v1/models``, the ``smm_int8_fallback`` metric).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._layout import ONNX_FP32_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE
from ..errors import BackendError

log = logging.getLogger(__name__)


def check_int8_runner(runner: Any, folder: Path, model_type: str) -> Any:
    """:class:`..int8_gate.Recheck` of ``runner`` (an int8 runner of ``folder``) on this CPU."""
    from ..cpu import cpu_features
    from ..int8_gate import recheck
    from ._common import read_json

    quality = read_json(folder / ONNX_QUALITY_FILE)
    return recheck(quality, model_type, runner, cpu=cpu_features())


def checked_int8(runner: Any, folder: Path, model_type: str, *, backend: str, model_ref: str,
                 load_fp32: Callable[[], Any]) -> Any:
    """``runner`` if the int8 file holds up on this CPU, else the fp32 runner (``auto``/``onnx``)."""
    result = check_int8_runner(runner, folder, model_type)
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





def check_tree(root: Path) -> list[dict[str, Any]]:
    """Re-check every published int8 file under ``root`` (a volume or a cache) on this CPU, hashing each
    fp32 file for the reference digest (``smm validate --full``: the node-cache DaemonSet and the provision
    Job run it on a node). One dict per file: ``path``, ``status``, ``reason``, ``seconds``."""
    from ..hashing import sha256_file, with_prefix
    from ..int8_gate import recheck
    from ._common import read_json

    out: list[dict[str, Any]] = []
    for qpath in sorted(Path(root).glob(f"models--*/snapshots/*/{ONNX_QUALITY_FILE}")):
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
        digest = with_prefix(sha256_file(fp32)) if fp32.is_file() else "missing"
        try:
            from ..cpu import cpu_features
            from .onnx import load_onnx_runner

            runner = load_onnx_runner(folder, model_type, onnx_file=int8_path)
            result = recheck(quality, model_type, runner, cpu=cpu_features(), fp32_sha256=digest)
        except (BackendError, ImportError) as err:
            out.append({"path": rel, "status": "skipped", "reason": str(err)})
            continue
        out.append({"path": rel, **result.as_dict()})
    return out
__all__ = ["check_int8_runner", "check_tree", "checked_int8"]
