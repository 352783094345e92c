"""The service on a GPU: batching sized for the device, device and precision reported.

The model is the deterministic table model of the service tests, with load info saying it runs on
``cuda:0`` in bf16 (as a real GPU load reports it): what we test is what the *service* does with that.
"""

from __future__ import annotations

import asyncio
import dataclasses

import httpx
import pytest
from _service_fixtures import LABELS, TableRunner, make_model, serve
from prometheus_client.parser import text_string_to_metric_families

from smart_model_manager.errors import ConfigurationError
from smart_model_manager.model import Model
from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.integration


def gpu_model(runner: TableRunner) -> Model:
    m = make_model(runner)
    info = dataclasses.replace(m.info, backend="torch", device="cuda:0", dtype="bf16")
    return Model(runner, model_type="sentiment", labels=LABELS, info=info)


def metric(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) if f.name == name for s in f.samples]


def test_gpu_model_gets_gpu_batching_and_reports_device_and_dtype():
    runner = TableRunner(delay=0.05)  # slow enough that concurrent requests queue up behind a batch
    # batching is under test here, so admission is off: 480 texts at once are more than the bootstrap bound
    # admits before a model call has been timed (admission has its own tests in test_service_overload.py)
    with serve(gpu_model(runner), config=ServiceConfig(max_queued_tokens=-1)) as (url, app):
        (m,) = httpx.get(url + "/v1/models").json()["models"]
        assert (m["device"], m["dtype"], m["max_batch"], m["max_wait_ms"]) == ("cuda:0", "bf16", 256, 2.0)

        async def fire() -> list[int]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                rs = await asyncio.gather(*(c.post("/v1/sentiment", json={"texts": [f"headline {i} {j}" for j in
                                                                                    range(40)]})
                                            for i in range(12)))
            return [r.status_code for r in rs]

        assert asyncio.run(fire()) == [200] * 12
        text = httpx.get(url + "/metrics").text
    # 480 texts: with the CPU limit (32) that is >= 15 model calls; with 256 a batch, far fewer
    assert max(runner.batch_sizes) > 32 and max(runner.batch_sizes) <= 256
    (info,) = metric(text, "smm_service_model_info")
    assert (info.labels["device"], info.labels["dtype"], info.labels["backend"]) == ("cuda:0", "bf16", "torch")
    assert [s.value for s in metric(text, "smm_service_max_batch")] == [256]
    assert [s.value for s in metric(text, "smm_service_max_wait_seconds")] == [0.002]


def test_cpu_model_keeps_the_cpu_batching():
    with serve(make_model()) as (url, _):
        (m,) = httpx.get(url + "/v1/models").json()["models"]
        text = httpx.get(url + "/metrics").text
    assert (m["device"], m["dtype"], m["max_batch"], m["max_wait_ms"]) == ("cpu", "fp32", 32, 5.0)
    (info,) = metric(text, "smm_service_model_info")
    assert (info.labels["device"], info.labels["dtype"]) == ("cpu", "fp32")


def test_gpu_batching_is_configurable():
    cfg = ServiceConfig.from_env({"SMM_SERVICE_GPU_MAX_BATCH": "512", "SMM_SERVICE_GPU_MAX_WAIT_MS": "0.5"})
    assert cfg.batching_for("cuda:1") == (512, 0.5) and cfg.batching_for("cpu") == (32, 5.0)
    assert ServiceConfig.from_env(cfg.to_env()) == cfg
    with pytest.raises(ConfigurationError, match="SMM_SERVICE_GPU_MAX_BATCH"):
        ServiceConfig.from_env({"SMM_SERVICE_GPU_MAX_BATCH": "0"})
    with pytest.raises(ConfigurationError, match="SMM_SERVICE_GPU_MAX_WAIT_MS"):
        ServiceConfig(gpu_max_wait_ms=-1)
    with serve(gpu_model(TableRunner()), config=ServiceConfig(gpu_max_batch=64, gpu_max_wait_ms=1)) as (url, _):
        (m,) = httpx.get(url + "/v1/models").json()["models"]
    assert (m["max_batch"], m["max_wait_ms"]) == (64, 1.0)
