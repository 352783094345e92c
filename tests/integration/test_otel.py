"""Optional OpenTelemetry tracing, each case in a fresh process (OpenTelemetry's global tracer provider can be
set once per process): spans for resolve, verify, load and infer go to the in-memory exporter of the SDK, to
the exporter the OTEL_* variables name, or nowhere, with opentelemetry never imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="the otel extra: pip install -e '.[otel]'")
pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

# a real model on a verified volume: the torch loader, full verification, one inference
VOLUME_MODEL = """
import sys
sys.path.insert(0, {tests!r})
from pathlib import Path
from _mirror_fixtures import build_tiny_bert
from smart_model_manager.ops.pull import provision_from_folder
src = build_tiny_bert(Path({tmp!r}) / "src")
provision_from_folder(src, Path({tmp!r}) / "vol", "org/tiny", model_type="sentiment", alias="tiny",
                      write_manifest=True)
"""

LOAD_AND_INFER = """
from smart_model_manager import get_model_manager
model = get_model_manager().load_model("tiny")
model("BTC rallies after ETF approval")
model.raw(["ETH slides", "SOL flat"])
"""


def _run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("SMM_", "HF_", "OTEL_", "PYTEST_", "MODEL_CACHE_DIR", "TESTING"))}
    base.update(SMM_ENV="production", SMM_VOLUME_DIR=str(tmp_path / "vol"), SMM_VERIFY="full",
                SMM_BACKEND="torch", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                MODEL_CACHE_DIR=str(tmp_path / "cache"))
    base.update(env)
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=base, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def volume(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("otel")
    _run(VOLUME_MODEL.format(tests=str(REPO / "tests" / "integration"), tmp=str(tmp)), tmp)
    return tmp


def test_spans_for_resolve_verify_load_and_infer_reach_the_applications_provider(volume: Path) -> None:
    code = """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with trace.get_tracer("app").start_as_current_span("app.request"):
    """ + textwrap.indent(textwrap.dedent(LOAD_AND_INFER), "        ") + """
    print(json.dumps([{"name": s.name, "id": s.context.span_id, "parent": s.parent.span_id if s.parent else None,
                       "status": s.status.status_code.name, "attributes": dict(s.attributes)}
                      for s in exporter.get_finished_spans()]))
    """
    spans = json.loads(_run(code, volume).stdout.strip().splitlines()[-1])
    by_name: dict[str, list[dict]] = {}
    for s in spans:
        by_name.setdefault(s["name"], []).append(s)
    (app,) = by_name["app.request"]
    (load,) = by_name["smm.load_model"]
    (resolve,) = by_name["smm.resolve"]
    (loading,) = by_name["smm.load"]
    assert load["parent"] == app["id"]  # nested under the application's own span
    assert resolve["parent"] == load["id"] and loading["parent"] == load["id"]
    verify = by_name["smm.verify"]
    assert verify and all(v["parent"] == resolve["id"] for v in verify)
    assert verify[0]["attributes"]["smm.full"] is True and verify[0]["attributes"]["smm.files"] > 0
    assert load["attributes"]["smm.repo_id"] == "org/tiny" and load["attributes"]["smm.source"] == "volume"
    assert len(load["attributes"]["smm.commit"]) == 40 and load["attributes"]["smm.backend"] == "torch"
    infer = by_name["smm.infer"]
    assert [s["attributes"]["smm.texts"] for s in infer] == [1, 2]
    assert all(s["parent"] == app["id"] and s["attributes"]["smm.repo_id"] == "org/tiny" for s in infer)
    assert all(s["status"] != "ERROR" for s in spans)
    assert not any("BTC" in str(v) for s in spans for v in s["attributes"].values())  # never the texts


def test_a_failed_load_is_an_error_span(volume: Path) -> None:
    code = """
    import json
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from smart_model_manager import get_model_manager
    try:
        get_model_manager().load_model("org/not-on-the-volume")
    except Exception as err:
        print("raised", type(err).__name__)
    print(json.dumps({s.name: s.status.status_code.name for s in exporter.get_finished_spans()}))
    """
    out = _run(code, volume).stdout.strip().splitlines()
    assert out[0] == "raised ModelNotFoundError"
    assert json.loads(out[-1])["smm.load_model"] == "ERROR"


def test_otel_traces_exporter_configures_the_sdk_by_itself(volume: Path) -> None:
    proc = _run(LOAD_AND_INFER, volume, OTEL_TRACES_EXPORTER="console", OTEL_SERVICE_NAME="smm-test")
    names = [json.loads(chunk)["name"] for chunk in _json_objects(proc.stderr)]
    assert {"smm.load_model", "smm.resolve", "smm.verify", "smm.load", "smm.infer"} <= set(names), names
    assert '"service.name": "smm-test"' in proc.stderr and proc.stdout == ""  # stdout stays the program's


def _json_objects(text: str) -> list[str]:
    """ConsoleSpanExporter prints one indented JSON object per span, one after another."""
    out, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and start is not None:
                out.append(text[start:i + 1])
    return out


def test_not_configured_imports_nothing(volume: Path) -> None:
    code = LOAD_AND_INFER + """
import sys
print(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))
"""
    assert _run(code, volume).stdout.strip().splitlines()[-1] == "[]"
    disabled = _run(code, volume, OTEL_TRACES_EXPORTER="console", OTEL_SDK_DISABLED="true")
    assert disabled.stdout.strip().splitlines()[-1] == "[]"


def test_configured_but_not_installed_warns_once_and_works(volume: Path) -> None:
    block = textwrap.dedent("""
        import importlib.util
        import logging
        import sys
        class Block:  # as if the otel extra were not installed
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "opentelemetry":
                    raise ModuleNotFoundError(name)
                return None
        sys.meta_path.insert(0, Block())
        real = importlib.util.find_spec
        importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] == "opentelemetry" else real(name, *a)
        logging.basicConfig(level=logging.WARNING)
        """)
    code = block + textwrap.dedent(LOAD_AND_INFER) + \
        'print("ok", sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"))\n'
    proc = _run(code, volume, OTEL_TRACES_EXPORTER="otlp")
    assert proc.stdout.strip().splitlines()[-1] == "ok []"
    assert proc.stderr.count("opentelemetry is not installed") == 1
    assert "pip install 'smart-model-manager[otel]'" in proc.stderr


def test_the_service_traces_its_model_load_and_every_batch(tmp_path: Path) -> None:
    code = """
    import json, time
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    from fastapi.testclient import TestClient
    from smart_model_manager.service.app import create_app
    with TestClient(create_app()) as client:
        for _ in range(100):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.1)
        assert client.post("/v1/sentiment", json={"texts": ["BTC up", "ETH down"]}).status_code == 200
        assert client.post("/predict", json={"inputs": "SOL flat"}).status_code == 200
    print(json.dumps([(s.name, dict(s.attributes)) for s in exporter.get_finished_spans()]))
    """
    proc = _run(code, tmp_path, SMM_ENV="test")
    spans = json.loads(proc.stdout.strip().splitlines()[-1])
    names = [n for n, _ in spans]
    assert "smm.load_model" in names and "smm.resolve" in names
    infer = [a for n, a in spans if n == "smm.infer"]
    assert sorted(a["smm.texts"] for a in infer) == [1, 2]  # one span per model call (micro-batch)
