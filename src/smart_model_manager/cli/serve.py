"""`smm serve`: run the HTTP services. ``smm serve sentiment`` runs the crypto-news sentiment API."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any

import click

from ..settings import PRODUCTION, environ


@click.group("serve")
def serve() -> None:
    """Run an HTTP service."""


@serve.command("sentiment")
@click.option("--host", default=None, help="Bind address (default 127.0.0.1; SMM_SERVICE_HOST). Use 0.0.0.0 in a pod.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8000; SMM_SERVICE_PORT).")
@click.option("--model", "models", multiple=True,
              help="Alias, repo id or (in dev) a local model folder (SMM_SERVICE_MODEL; default: "
                   "SMM_MODEL, else finbert = ProsusAI/finbert unless a lock maps it elsewhere). Repeat as "
                   "NAME=MODEL to serve several models, one route each (SMM_SERVICE_MODELS), e.g. "
                   "--model crypto=kk08/CryptoBERT --model stock=finbert.")
@click.option("--optional", "optional", multiple=True,
              help="A route that may fail to load: the service is ready without it and its items go to the "
                   "first loaded model (SMM_SERVICE_OPTIONAL). Repeatable.")
@click.option("--detector", default=None,
              help="How items without model/market are routed: keywords (default, the original rule) or "
                   "package.module:function (SMM_SERVICE_DETECTOR).")
@click.option("--model-executor", type=click.Choice(["shared", "per-model"]), default=None,
              help="Several models: their batches run at once, one model thread each (per-model, default) or "
                   "take turns on one (shared) (SMM_SERVICE_MODEL_EXECUTOR).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Processes; each loads its own copy of the model.")
@click.option("--max-batch", type=click.IntRange(1, 1024), default=None,
              help="Texts per model call (default 32; SMM_SERVICE_MAX_BATCH).")
@click.option("--max-wait-ms", type=click.FloatRange(0, 10_000), default=None,
              help="Wait for more texts before a call (default 5; SMM_SERVICE_MAX_WAIT_MS).")
@click.option("--max-queued-tokens", type=click.IntRange(-1, None), default=None,
              help="Admission bound in estimated tokens of queued work; beyond it 503 + Retry-After at once. "
                   "0 = auto (measured throughput x half the deadline, the default), -1 = no bound "
                   "(SMM_SERVICE_MAX_QUEUED_TOKENS).")
@click.option("--request-timeout", "request_timeout_s", type=click.FloatRange(0, 3600), default=None,
              help="Deadline in seconds for a request to be computed, else 503; clients may lower it with "
                   "X-Request-Timeout. 0 = none (default 2; SMM_SERVICE_REQUEST_TIMEOUT_S).")
@click.option("--limit-concurrency", type=click.IntRange(0, None), default=None,
              help="uvicorn: open connections + tasks before plain 503s; 0 = no limit (default 1024; "
                   "SMM_SERVICE_LIMIT_CONCURRENCY).")
@click.option("--backlog", type=click.IntRange(1, None), default=None,
              help="uvicorn: pending TCP connections the kernel queues (default 2048; SMM_SERVICE_BACKLOG).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info",
              show_default=True)
@click.option("--log-format", type=click.Choice(["auto", "json", "text"]), default="auto", show_default=True,
              help="auto: JSON lines unless stderr is a terminal.")
def sentiment(host: str | None, port: int | None, models: tuple[str, ...], optional: tuple[str, ...],
              detector: str | None, model_executor: str | None, workers: int, max_batch: int | None,
              max_wait_ms: float | None, max_queued_tokens: int | None, request_timeout_s: float | None,
              limit_concurrency: int | None, backlog: int | None, log_level: str, log_format: str) -> None:
    """Serve crypto-news sentiment over HTTP (POST /v1/sentiment, /v1/analyze; /docs).

    The model is loaded through get_model_manager(), so the environment decides where it comes from:
    mocks under pytest, the HF cache in dev, the verified volume in production. In production the
    model must resolve from the volume before the server starts (else one line on stderr, exit 1);
    elsewhere a failed load is said on stderr and every route answers 503 (see docs/service.md).

    \b
    Examples:
      smm serve sentiment                                  # 127.0.0.1:8000, the default model
      smm serve sentiment --model finbert-demo --port 8080
      smm serve sentiment --model crypto=kk08/CryptoBERT --model stock=finbert --optional stock
      smm serve sentiment --request-timeout 1 --max-queued-tokens 4000
      SMM_ENV=production SMM_VOLUME_DIR=/models smm serve sentiment --host 0.0.0.0
    """
    import uvicorn

    from ..service.config import ServiceConfig
    from ..service.logs import configure_logging, logging_config

    config = ServiceConfig.from_env(environ()).with_overrides(
        host=host, port=port, max_batch=max_batch, max_wait_ms=max_wait_ms, detector=detector,
        model_executor=model_executor, max_queued_tokens=max_queued_tokens, request_timeout_s=request_timeout_s,
        limit_concurrency=limit_concurrency, backlog=backlog, **_model_options(models, optional))
    json_lines = None if log_format == "auto" else log_format == "json"
    log_config = logging_config(log_level.upper(), json_lines=json_lines)
    configure_logging(log_level.upper(), json_lines=json_lines)
    logging.getLogger(__name__).info("starting sentiment service", extra={
        "host": config.host, "port": config.port, "model": config.model_label, "workers": workers,
        "max_batch": config.max_batch, "max_wait_ms": config.max_wait_ms,
        "max_queued_tokens": config.max_queued_tokens, "request_timeout_s": config.request_timeout_s,
        "limit_concurrency": config.limit_concurrency, "backlog": config.backlog})
    _preflight(config)
    if workers == 1:
        from ..service.app import create_app, default_declared

        uvicorn.run(create_app(config=config, loader=_telling_loader(config), declared=default_declared),
                    host=config.host,
                    port=config.port, log_config=log_config, access_log=False,
                    timeout_graceful_shutdown=30, **config.uvicorn_limits())
        return
    _exec_workers(config, workers, log_config)


def _model_options(models: tuple[str, ...], optional: tuple[str, ...]) -> dict[str, str]:
    """``--model`` / ``--optional`` as config fields: one unnamed ``--model X`` is ``model``; any
    ``NAME=MODEL`` makes every ``--model`` a named route (``models``). Given routes replace the env's."""
    from ..service.routes_config import split_route

    if not models:
        return {"optional": ",".join(optional)} if optional else {}
    named = [split_route(m) for m in models]
    if len(models) == 1 and named[0][0] is None:
        if optional:
            raise click.UsageError("--optional needs named routes: --model NAME=MODEL")
        return {"model": named[0][1], "models": ""}
    unnamed = [m for m, (n, _) in zip(models, named) if n is None]
    if unnamed:
        raise click.UsageError(f"several --model options must each be NAME=MODEL; {unnamed[0]!r} has no name "
                               "(e.g. --model crypto=kk08/CryptoBERT --model stock=finbert)")
    return {"models": ",".join(models), "optional": ",".join(optional), "model": ""}


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _preflight(config: Any) -> None:
    """Production: nothing can ever load if the model does not resolve from the volume now (it is
    read-only and the service never re-provisions), so say so and exit 1 rather than serve 503s.
    Other environments start anyway: the load may download, and that is done in the background."""
    from .. import errors
    from ..api import get_model_manager
    from ..polarity import resolve as resolve_polarity

    manager = get_model_manager()
    if manager.environment != PRODUCTION:
        return
    for route in config.routes():
        name = route.model or config.model_name
        try:
            resolved = manager.resolve(name, model_type="sentiment")
            resolve_polarity(resolved.repo_id, resolved.labels, manager.declared_polarity(name, resolved.repo_id),
                             name=route.name)
        except (errors.SmmError, OSError) as err:
            if route.optional:  # the service starts without it; the load says so once
                continue
            click.echo(f"smm serve: cannot serve {route.model or config.model_label} in production: "
                       f"{_one_line(err)}", err=True)
            raise SystemExit(1) from None


def _telling_loader(config: Any) -> Any:
    """The default loader, plus one human line on stderr when the load ends (logs may be JSON). A model
    whose labels cannot be given a polarity is refused here, in one line naming them."""
    from ..polarity import resolve as resolve_polarity
    from ..service.app import default_declared, default_loader

    optional = {r.model for r in config.routes() if r.optional}
    routes = {r.model: r.name for r in config.routes()}

    def load(name: str | None) -> Any:
        try:
            model = default_loader(name)
            resolve_polarity(model.info.repo_id, model.labels, default_declared(name, model.info.repo_id),
                             name=name)
        except Exception as err:
            then = ("it is optional: the service runs without it" if name in optional else
                    "every route answers 503 until restarted")
            click.echo(f"smm serve: model {name or config.model_label} could not be loaded; {then}: "
                       f"{_one_line(err)}", err=True)
            raise
        i = model.info
        where = f"http://{config.host}:{config.port}"
        if len(routes) > 1:
            click.echo(f"smm serve: {i.repo_id} loaded from {i.source} ({i.backend}, {i.load_seconds:.1f} s) "
                       f"for route {routes.get(name or '', '?')}; {where} is ready once every model is "
                       "(GET /readyz; API docs: /docs)", err=True)
            return model
        click.echo(f"smm serve: {i.repo_id} loaded from {i.source} ({i.backend}, "
                   f"{i.load_seconds:.1f} s); ready at {where} (API docs: /docs)", err=True)
        return model

    return load


def _exec_workers(config: Any, workers: int, log_config: dict[str, Any]) -> None:
    """Several processes: hand over to uvicorn's supervisor, which imports the ASGI factory by name
    in each worker. The effective config travels as SMM_SERVICE_* in the child's environment (the
    path `uvicorn --factory` users take); our own process environment is left untouched."""
    fd, log_path = tempfile.mkstemp(prefix="smm-serve-logging-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(log_config, fh)
    args = [sys.executable, "-m", "uvicorn", "smart_model_manager.service.app:create_app", "--factory",
            "--host", config.host, "--port", str(config.port), "--workers", str(workers),
            "--log-config", log_path, "--no-access-log", "--timeout-graceful-shutdown", "30",
            "--backlog", str(config.uvicorn_limits()["backlog"])]
    if config.limit_concurrency:  # per worker process, as uvicorn counts it
        args += ["--limit-concurrency", str(config.limit_concurrency)]
    os.execve(sys.executable, args, {**environ(), **config.to_env()})
