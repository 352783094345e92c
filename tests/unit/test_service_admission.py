"""Admission control in estimated tokens: the bound's three modes, a shared total, Retry-After, and the
batcher's deadline and disconnect drops (pure asyncio, no server)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smart_model_manager.errors import ConfigurationError
from smart_model_manager.service.admission import (
    BOOTSTRAP_TOKENS,
    Admission,
    Overloaded,
    estimate_tokens,
)
from smart_model_manager.service.batching import ClientGone, DeadlineExceeded, MicroBatcher
from smart_model_manager.service.config import ServiceConfig

pytestmark = pytest.mark.unit


def test_estimate_is_about_four_characters_a_token_plus_specials_and_capped():
    assert estimate_tokens("") == 2 and estimate_tokens("a" * 40) == 12
    assert estimate_tokens("a" * 100_000) == 512


def test_fixed_bound_refuses_beyond_it_and_counts_nothing_then():
    a = Admission(max_tokens=100)
    a.admit(60, 1)
    with pytest.raises(Overloaded) as exc:
        a.admit(41, 1)
    assert exc.value.retry_after >= 1 and "bound is 100 (fixed)" in str(exc.value)
    assert (a.tokens, a.texts) == (60, 1)
    a.admit(40, 2)
    a.release(60, 1)
    assert (a.tokens, a.texts) == (40, 2)


def test_a_request_is_always_admitted_when_nothing_is_queued():
    a = Admission(max_tokens=10)
    a.admit(5000, 64)  # larger than the bound, but alone: served, never refused forever
    assert a.tokens == 5000


def test_off_never_refuses():
    a = Admission(max_tokens=-1)
    for _ in range(100):
        a.admit(10_000, 1)
    assert a.limit() is None and a.mode == "off"


def test_auto_bound_is_measured_throughput_times_half_the_deadline():
    a = Admission(max_tokens=0, deadline_s=2.0)
    assert a.limit() == BOOTSTRAP_TOKENS  # nothing measured yet
    a.observe(1000, 0.5)  # 2000 tokens/s
    assert a.limit() == 2000  # 2000 tok/s * 2 s * 0.5
    assert a.limit(budget_s=0.5) == 500  # a request with a lower deadline gets a lower bound
    a.admit(400, 1)
    with pytest.raises(Overloaded):
        a.admit(200, 1, budget_s=0.5)
    a.admit(200, 1)  # fits under the default deadline's bound


def test_retry_after_is_the_time_to_work_off_the_queue():
    a = Admission(max_tokens=-1)
    assert a.retry_after() == 1  # nothing measured: 1 s
    a.observe(100, 1.0)
    a.admit(450, 1)
    assert a.retry_after() == 5
    a.admit(100_000, 1)
    assert a.retry_after() == 60  # capped at a minute


def test_a_shared_total_bounds_several_batchers():
    total = Admission(max_tokens=100, name="service in total")
    m1, m2 = Admission(max_tokens=80, parent=total, name="model a"), Admission(max_tokens=80, parent=total)
    m1.admit(70, 1)
    with pytest.raises(Overloaded, match="service in total"):
        m2.admit(40, 1)  # m2 itself is empty, but the total is not
    assert (m2.tokens, total.tokens) == (0, 70)
    m2.admit(30, 1)
    assert total.tokens == 100
    m1.release(70, 1)
    assert (total.tokens, total.texts) == (30, 1)


def test_config_reads_the_overload_settings_from_the_environment():
    c = ServiceConfig.from_env({"SMM_SERVICE_MAX_QUEUED_TOKENS": "-1", "SMM_SERVICE_REQUEST_TIMEOUT_S": "0.5",
                                "SMM_SERVICE_DROP_DISCONNECTED": "off", "SMM_SERVICE_LIMIT_CONCURRENCY": "0",
                                "SMM_SERVICE_BACKLOG": "128"})
    assert (c.max_queued_tokens, c.deadline_s, c.drop_disconnected) == (-1, 0.5, False)
    assert c.uvicorn_limits() == {"limit_concurrency": None, "backlog": 128}
    assert ServiceConfig.from_env(c.to_env()) == c
    d = ServiceConfig()
    assert (d.max_queued_tokens, d.request_timeout_s, d.limit_concurrency, d.backlog) == (0, 2.0, 1024, 2048)


@pytest.mark.parametrize(("var", "value"), [("SMM_SERVICE_MAX_QUEUED_TOKENS", "-2"),
                                            ("SMM_SERVICE_REQUEST_TIMEOUT_S", "-1"),
                                            ("SMM_SERVICE_DROP_DISCONNECTED", "maybe"),
                                            ("SMM_SERVICE_LIMIT_CONCURRENCY", "-5")])
def test_bad_overload_settings_name_the_variable(var: str, value: str):
    with pytest.raises(ConfigurationError, match=var):
        ServiceConfig.from_env({var: value})


class Gate:
    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.seen: list[str] = []

    def __call__(self, texts: list[str]) -> list[list[float]]:
        self.entered.set()
        assert self.open.wait(10)
        self.seen.extend(texts)
        return [[1.0] for _ in texts]


def test_batcher_drops_expired_and_abandoned_texts_before_the_model():
    async def main() -> tuple[list[str], int]:
        gate = Gate()
        adm = Admission(max_tokens=-1)
        b = MicroBatcher(gate, max_batch=8, max_wait_ms=0, admission=adm)
        b.start()
        first = asyncio.ensure_future(b.submit(["held"]))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 10)
        with pytest.raises(DeadlineExceeded):
            await b.submit(["late"], timeout=0.05)
        gone: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = asyncio.ensure_future(b.submit(["gone"], abandon=lambda: gone))
        await asyncio.sleep(0)
        gone.set_result(None)
        with pytest.raises(ClientGone):
            await waiting
        with pytest.raises(DeadlineExceeded):
            await b.submit(["never"], timeout=0)
        gate.open.set()
        assert await first == [[1.0]]
        await b.close()
        return gate.seen, adm.tokens

    seen, queued = asyncio.run(main())
    assert seen == ["held"] and queued == 0  # nothing else computed; every admitted token released


def test_smm_serve_passes_the_overload_settings_to_the_app_and_uvicorn(monkeypatch: pytest.MonkeyPatch):
    import uvicorn
    from click.testing import CliRunner

    from smart_model_manager.cli import serve as serve_cli
    from smart_model_manager.cli.main import cli

    seen: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(kw, app=app))
    monkeypatch.setattr(serve_cli, "_preflight", lambda config: None)
    monkeypatch.setenv("SMM_SERVICE_BACKLOG", "512")
    res = CliRunner().invoke(cli, ["serve", "sentiment", "--limit-concurrency", "64", "--max-queued-tokens", "3000",
                                   "--request-timeout", "1.5", "--log-format", "text"])
    assert res.exit_code == 0, res.output
    assert (seen["limit_concurrency"], seen["backlog"]) == (64, 512)
    state = seen["app"].state.smm
    assert (state.admission.max_tokens, state.admission.deadline_s) == (3000, 1.5)
    assert state.config.deadline_s == 1.5


def test_a_request_already_in_the_model_is_answered_after_its_deadline():
    """The deadline bounds the wait for the model, not the model call: a long request computing alone
    (the worst request the limits allow takes seconds on a CPU) gets its answer, not a late 503."""
    async def main() -> list[list[float]]:
        gate = Gate()
        b = MicroBatcher(gate, max_batch=8, max_wait_ms=0)
        b.start()
        pending = asyncio.ensure_future(b.submit(["long"], timeout=0.05))
        await asyncio.get_running_loop().run_in_executor(None, gate.entered.wait, 10)
        await asyncio.sleep(0.1)  # past the deadline, while the text is in the model
        assert not pending.done()
        gate.open.set()
        rows = await pending
        await b.close()
        return rows

    assert asyncio.run(main()) == [[1.0]]
