"""The lean runner: ONNX Runtime + ``tokenizers`` (backends ``"onnx"`` and ``"onnx-int8"``).

Neither torch nor transformers is imported, here or by anything this imports (a subprocess test
checks ``sys.modules``): that is where the cold-start and memory savings come from. The tokenizer
is ``tokenizer.json`` read by the Rust ``tokenizers`` library, configured from
``tokenizer_config.json`` / ``config.json`` exactly as the torch runner configures transformers
(same truncation length, same right padding), so both backends see the same token ids.

Session options, and why:
- ``intra_op_num_threads`` from :mod:`smart_model_manager.loaders.cpu` (cgroup quota aware), because
  ONNX Runtime's default is one thread per *host* core, which a CPU-limited pod cannot have;
- ``inter_op_num_threads=1`` + sequential execution: BERT graphs are a chain (a second pool competes);
- spinning disabled: idle worker threads otherwise busy-wait and burn the CPU quota of a shared pod;
- all graph optimizations on (attention/GELU/LayerNorm fusion);
- no CPU memory arena and no memory pattern: the arena keeps the largest batch's activations
  forever (a service went from ~200 MB to ~2 GB after one long request and never came back);
  without it each run's buffers are freed when the run ends. Batches are bounded by a token
  budget (:data:`~._common.CPU_TOKEN_BUDGET`), so the peak of one run is bounded too.

On a CUDA device (``device=`` a :class:`~smart_model_manager.loaders.device.DeviceChoice`) the session asks
for CUDAExecutionProvider first. If ONNX Runtime has no such provider, or the session comes up on the
CPU provider anyway (no driver, no GPU), device ``auto`` logs the fallback and runs on the CPU; an
explicit ``SMM_DEVICE=cuda`` raises: never a silent CPU run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .._layout import ONNX_FP32_FILE, ONNX_INT8_FILE, ONNX_QUALITY_FILE
from ..backends import ONNX_INSTALL
from ..errors import BackendError
from ..model import RunnerDefaults
from ..registry import get_model_type
from ._common import (
    ATTENTION_WIDTH,
    CPU_TOKEN_BUDGET,
    DEFAULT_BATCH_SIZE,
    check_model_type,
    check_untruncated,
    effective_max_length,
    read_folder_meta,
    read_json,
    token_budget_batches,
)
from .device import DeviceChoice

log = logging.getLogger(__name__)



def tokenizer_file(folder: Path) -> Path:
    """``tokenizer.json`` of ``folder``; BackendError (how to make one) if it does not exist."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        raise BackendError(f"the ONNX backend needs {path} (a fast-tokenizer file), which does not "
                           "exist; re-save the tokenizer with transformers or use backend 'torch'")
    return path


def make_tokenizer(folder: Path, max_len: int) -> Any:
    """``tokenizers.Tokenizer`` from ``tokenizer.json``: truncation at ``max_len``, no padding.

    Padding is done per batch by the runner; whatever truncation/padding the file carries
    (e.g. a fixed 128 padding in sentence-transformers exports) is replaced, to match transformers
    called with ``truncation=True, max_length=max_len``.
    """
    from tokenizers import Tokenizer

    path = tokenizer_file(folder)
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises a bare Exception on malformed files
        raise BackendError(f"{path} is not a valid tokenizer.json: {err}") from err
    tok.no_padding()
    tok.enable_truncation(max_length=max_len)
    return tok


def session_options(threads: int) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.enable_cpu_mem_arena = False  # see the module docstring: memory per request is returned
    so.enable_mem_pattern = False    # patterns are cached per input shape: unbounded with free-length text
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only; ORT warns about every unused initializer otherwise
    return so


CUDA_EP, CPU_EP = "CUDAExecutionProvider", "CPUExecutionProvider"
GPU_INSTALL = "pip install 'smart-model-manager[gpu]' (onnxruntime-gpu, instead of onnxruntime)"


def providers_for(choice: DeviceChoice | None, available: Sequence[str]) -> list[Any]:
    """The execution providers to ask for: CUDA first on a GPU device, else the CPU."""
    if choice is None or not choice.is_cuda:
        return [CPU_EP]
    if CUDA_EP not in available:
        problem = (f"onnxruntime has no {CUDA_EP} (available: {', '.join(available) or 'none'}); "
                   f"install it with: {GPU_INSTALL}")
        if choice.explicit:
            raise BackendError(f"SMM_DEVICE={choice.requested_device}: {problem}")
        log.warning("device auto chose %s, but %s; ONNX Runtime runs on the CPU", choice.device, problem)
        return [CPU_EP]
    return [(CUDA_EP, {"device_id": choice.index}), CPU_EP]


def create_session(path: Path, options: Any, choice: DeviceChoice | None) -> tuple[Any, str]:
    """An InferenceSession and the device it really runs on ("cpu" or "cuda:N")."""
    import warnings

    import onnxruntime as ort

    providers = providers_for(choice, ort.get_available_providers())
    with warnings.catch_warnings(record=True) as caught:  # ORT warns (not raises) about absent providers
        warnings.simplefilter("always")
        session = ort.InferenceSession(str(path), options, providers=providers)
    for w in caught:
        log.info("onnxruntime: %s", w.message)
    wanted_cuda = providers[0] != CPU_EP
    if not wanted_cuda:
        return session, "cpu"
    assert choice is not None
    active = list(session.get_providers())
    if CUDA_EP in active:
        return session, choice.device
    problem = f"the ONNX Runtime session for {path} came up on {active}, not {CUDA_EP} (no usable GPU/driver?)"
    if choice.explicit:
        raise BackendError(f"SMM_DEVICE={choice.requested_device}: {problem}; use SMM_DEVICE=auto or cpu to "
                           "allow the CPU")
    log.warning("device auto: %s; fell back to the CPU provider", problem)
    return session, "cpu"


class OnnxRunner(RunnerDefaults):
    """``runner(texts) -> list[list[float]]`` backed by an ONNX Runtime session."""

    max_length: int
    token_budget: int

    def __init__(self, session: Any, tokenizer: Any, *, model_type: str, labels: tuple[str, ...],
                 max_length: int, pad_id: int, backend: str, onnx_file: Path,
                 batch_size: int = DEFAULT_BATCH_SIZE, token_budget: int | None = None):
        self.session = session
        self.tokenizer = tokenizer
        self.model_type = model_type
        self.labels = labels
        self.max_length = max_length
        self.pad_id = pad_id
        self.backend = backend
        self.onnx_file = onnx_file
        self.batch_size = batch_size
        self.token_budget = token_budget or CPU_TOKEN_BUDGET  # padded tokens per session.run
        self.device = "cpu"
        self.dtype = "fp32" if backend == "onnx" else "int8"
        self.supports_options = True  # runner(texts, RunOptions): max_length, truncation, batch_size, logits
        self._tokenizers: dict[int | None, Any] = {max_length: tokenizer}  # per truncation length
        self._tok_lock = threading.Lock()
        self.input_names = [i.name for i in session.get_inputs()]
        self.output_name = session.get_outputs()[0].name
        self.dimension: int | None = None
        if get_model_type(model_type).pools:
            dim = session.get_outputs()[0].shape[-1]
            self.dimension = dim if isinstance(dim, int) else None

    def _tokenizer_for(self, max_len: int | None) -> Any:
        """A tokenizer truncating at ``max_len`` (None: not at all); copies are made once and kept, so the
        shared default tokenizer's settings never change under a concurrent call."""
        tok = self._tokenizers.get(max_len)
        if tok is None:
            from tokenizers import Tokenizer

            with self._tok_lock:
                tok = self._tokenizers.get(max_len)
                if tok is None:
                    tok = Tokenizer.from_str(self.tokenizer.to_str())
                    tok.no_padding()
                    if max_len is None:
                        tok.no_truncation()
                    else:
                        tok.enable_truncation(max_length=max_len)
                    self._tokenizers[max_len] = tok
        return tok

    def encode(self, texts: list[str], max_len: int | None = -1) -> list[Any]:
        tok = self.tokenizer if max_len == -1 else self._tokenizer_for(max_len)
        return tok.encode_batch(list(texts))

    def _feed(self, encs: list[Any], width: int) -> dict[str, Any]:
        import numpy as np

        n = len(encs)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        types = np.zeros((n, width), dtype=np.int64)
        for row, e in enumerate(encs):
            k = len(e.ids)
            ids[row, :k] = e.ids
            mask[row, :k] = 1
            types[row, :k] = e.type_ids
        available = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        return {name: available[name] for name in self.input_names}

    def run_batch(self, encs: list[Any]) -> Any:
        """Raw model output (logits or last hidden state) for one padded batch, as numpy."""
        width = max(len(e.ids) for e in encs)
        feed = self._feed(encs, width)
        return self.session.run([self.output_name], feed)[0], feed["attention_mask"]

    def __call__(self, texts: list[str], options: Any = None) -> list[list[float]]:
        import numpy as np

        if not texts:
            return []
        max_len = effective_max_length(self.max_length, options)
        encs = self.encode(texts, max_len)
        lengths = [len(e.ids) for e in encs]
        if max_len is None:
            check_untruncated(lengths, self.max_length)
        batch_size = (options.batch_size if options is not None else None) or self.batch_size
        want_logits = bool(options is not None and options.logits)
        out: list[list[float] | None] = [None] * len(texts)
        for idx in token_budget_batches(lengths, self.token_budget, batch_size,
                                           self.token_budget * ATTENTION_WIDTH):
            raw, mask = self.run_batch([encs[i] for i in idx])
            raw = raw.astype(np.float32, copy=False)
            classifies = get_model_type(self.model_type).classifies
            if classifies and want_logits:
                rows = raw
            elif classifies:
                shifted = raw - raw.max(axis=-1, keepdims=True)
                exp = np.exp(shifted)
                rows = exp / exp.sum(axis=-1, keepdims=True)
            else:
                m = mask[:, :, None].astype(np.float32)
                pooled = (raw * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
                norms = np.linalg.norm(pooled, axis=1, keepdims=True)
                rows = pooled / np.clip(norms, 1e-12, None)
            for i, row in zip(idx, rows.tolist()):
                out[i] = row
        return out  # type: ignore[return-value]

    def logits(self, texts: list[str]) -> list[list[float]]:
        """Raw outputs in input order (sentiment logits); used to compare with torch."""
        encs = self.encode(texts)
        raw, _ = self.run_batch(encs)
        return raw.tolist()


def check_recorded_size(folder: Path, onnx_file: Path) -> None:
    """Refuse an .onnx whose size differs from what ``onnx/quality.json`` recorded at export.

    A cheap guard against a truncated copy; full sha256 verification is the ``verify`` hook's
    job (the volume/lock layers already hash every file they hand us).
    """
    qpath = folder / ONNX_QUALITY_FILE
    if not qpath.is_file():
        return
    files = read_json(qpath).get("files")
    if not isinstance(files, dict):
        return
    try:
        rel = onnx_file.relative_to(folder).as_posix()
    except ValueError:  # a file outside the model folder (export's temporary candidates)
        return
    entry = files.get(rel)
    if isinstance(entry, dict) and isinstance(entry.get("size"), int):
        actual = onnx_file.stat().st_size
        if actual != entry["size"]:
            from ..errors import IntegrityError
            raise IntegrityError(
                f"{onnx_file}: size {actual} bytes, but {qpath} recorded {entry['size']} bytes at "
                f"export; the file is truncated or was replaced. Re-export it with "
                f"'smm export onnx {folder}'", path=onnx_file, expected=str(entry["size"]),
                actual=str(actual))


def load_onnx_runner(folder: str | Path, model_type: str, *, onnx_file: str | Path | None = None,
                     threads: int | None = None, labels: Sequence[str] | None = None,
                     verify: Any = None, batch_size: int = DEFAULT_BATCH_SIZE,
                     device: DeviceChoice | None = None, token_budget: int | None = None,
                     while_loading: Callable[[], None] | None = None) -> OnnxRunner:
    """Load ``onnx_file`` (default ``onnx/model.onnx``) of ``folder`` into an :class:`OnnxRunner`.

    ``verify(path)`` is called before ONNX Runtime opens the file; it should raise if the file is
    not the pinned one. On the CPU a second thread reads the tokenizer and runs ``while_loading()`` while
    this one builds the session (:class:`SideLoad`): a cold start pays for the longer, not the sum.
    """
    from .cpu import default_threads

    folder = Path(folder)
    check_model_type(model_type)
    onnx_path = Path(onnx_file) if onnx_file is not None else folder / ONNX_FP32_FILE
    if not onnx_path.is_file():
        raise BackendError(f"{onnx_path} does not exist; create it with: smm export onnx {folder}")
    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError as err:
        raise BackendError(f"the ONNX backend needs onnxruntime and tokenizers ({err}); install "
                           f"them with: {ONNX_INSTALL}") from err

    meta = read_folder_meta(folder, model_type, labels)
    tokenizer_file(folder)  # a missing tokenizer.json is refused before the model file is verified or opened
    if verify is not None:
        verify(onnx_path)
    check_recorded_size(folder, onnx_path)

    def side() -> tuple[Any, int]:
        tokenizer = make_tokenizer(folder, meta.max_length)
        pad_id = pad_token_id(tokenizer, meta.config, meta.tokenizer_config)
        if while_loading is not None:
            while_loading()
        return tokenizer, pad_id

    side_load = SideLoad(side, threaded=device is None or not device.is_cuda)
    try:
        session, actual_device = create_session(onnx_path, session_options(default_threads(threads)), device)
    except BaseException as err:
        side_load.result()  # an error there (read first when loads were sequential) is the one reported
        if isinstance(err, BackendError) or not isinstance(err, Exception):
            raise
        # ORT raises its own exception types (InvalidProtobuf, Fail, ...)
        raise BackendError(f"ONNX Runtime cannot load {onnx_path}: {err}. The file may be corrupt; "
                           f"re-export it with 'smm export onnx {folder}'") from err
    tokenizer, pad_id = side_load.result()
    backend = "onnx-int8" if onnx_path.name == Path(ONNX_INT8_FILE).name else "onnx"
    runner = OnnxRunner(session, tokenizer, model_type=model_type, labels=meta.labels,
                        max_length=meta.max_length, pad_id=pad_id, backend=backend, onnx_file=onnx_path,
                        batch_size=batch_size, token_budget=token_budget)
    runner.device = actual_device
    if actual_device != "cpu":
        from .torch_cuda import DEFAULT_TOKEN_BUDGET  # a constant; torch itself is imported lazily there

        runner.batch_size = max(batch_size, 256)  # a GPU wants large batches; texts are length-sorted
        runner.token_budget = token_budget or DEFAULT_TOKEN_BUDGET
    log.debug("onnx runner for %s: %s, %s, max_length=%d", folder, onnx_path.name, model_type, meta.max_length)
    return runner


def pad_token_id(tokenizer: Any, config: dict[str, Any], tokenizer_config: dict[str, Any]) -> int:
    """The id padding uses: ``tokenizer_config.json``'s pad token, else ``config.json``'s pad_token_id."""
    pad_token = tokenizer_config.get("pad_token") or "[PAD]"
    if isinstance(pad_token, dict):  # older files store an AddedToken dict
        pad_token = pad_token.get("content") or "[PAD]"
    pad_id = tokenizer.token_to_id(str(pad_token))
    if pad_id is None:
        pad_id = int(config.get("pad_token_id") or 0)
    return int(pad_id)


class SideLoad:
    """``work()`` on a second thread (``threaded``) or right now, on this one; :meth:`result` joins it and
    returns its value or raises its error.

    :func:`load_onnx_runner` reads the tokenizer this way while the calling thread builds the session
    (ONNX Runtime releases the GIL while it initialises the session). The session stays on the
    calling thread on purpose: built on a helper thread, its allocations went to a second glibc malloc
    arena and the process's peak RSS grew by ~14 MB on a BERT-base. Not threaded on a GPU, where the
    session's provider warnings are caught with ``warnings.catch_warnings`` (not thread-safe).
    """

    def __init__(self, work: Callable[[], Any], *, threaded: bool):
        self._work = work
        self._value: Any = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="smm-onnx-side-load", daemon=True)
            self._thread.start()
        else:
            self._value = work()

    def _run(self) -> None:
        try:
            self._value = self._work()
        except BaseException as err:  # noqa: BLE001 - re-raised on the caller's thread by result()
            self._error = err

    def result(self) -> Any:
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


__all__ = ["OnnxRunner", "SideLoad", "load_onnx_runner", "make_tokenizer", "pad_token_id", "session_options",
           "tokenizer_file"]
