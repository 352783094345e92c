"""`smm lock`, `smm pull`, `smm import`: pin models, fetch them verified, provision volumes.

Thin: parse arguments, call :mod:`smart_model_manager.ops.lock` / :mod:`smart_model_manager.ops.pull`, print a
summary. Exceptions become exit codes in ``cli.main`` (0 ok, 1 failure, 2 usage).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import FormatError, IntegrityError, ModelNotFoundError, SmmError, SourceError
from ..formats import lockfile, spec as spec_mod
from ..settings import Settings

if TYPE_CHECKING:
    from rich.console import Console


class Failed(click.ClickException):
    """Exit 1 after our own output (``standalone_mode=False`` drops ``ctx.exit`` codes)."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(self.message, err=True)


class FailedUsage(Failed):
    exit_code = 2


def _hub(settings: Settings, endpoint: str) -> Any:
    """The Hub transport for lock and pull: every network setting from the environment (timeout, retries, the
    retry budget, offline and which variable set it), at the endpoint the command was given."""
    from ..remote.hub import HubClient

    return HubClient(endpoint, settings.token, timeout=settings.timeout, retries=settings.retries,
                     retry_budget=settings.retry_budget, offline=settings.offline,
                     offline_reason=settings.offline_origin)


def _lock_path(given: Path | None, settings: Settings) -> Path:
    if given is not None:
        return given
    return settings.lock_path or Path(lockfile.DEFAULT_NAME)


@click.command("lock")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(spec_mod.DEFAULT_NAME), show_default=True, help="The models.yaml to resolve.")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The lock to write. Default: SMM_LOCK, else ./models.lock.")
@click.option("--endpoint", default=None, help="Hub or mirror URL. Default: HF_ENDPOINT, else huggingface.co.")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the lock is missing or out of date (CI).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--sign", "sign_key", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also sign the written lock with this PEM private key (writes LOCK.sig; see `smm sign`).")
def lock(spec_path: Path, lock_path: Path | None, endpoint: str | None, check: bool, as_json: bool,
         sign_key: Path | None) -> None:
    """Pin every model in models.yaml to a commit and every file to a sha256.

    \b
    Examples:
      smm lock                                   # models.yaml -> models.lock
      smm lock --endpoint http://mirror:8080     # resolve against a mirror
      smm lock --check                           # in CI: fail when models.lock is stale
      smm lock --sign approver.key.pem           # and write models.lock.sig
    """
    from ..ops.lock import diff, resolve_lock

    if check and sign_key is not None:
        raise click.UsageError("--check writes nothing; sign with `smm sign` instead")
    settings = Settings.from_env()
    path = _lock_path(lock_path, settings)
    spec = spec_mod.load(spec_path)
    previous = None
    old_bytes = path.read_bytes() if path.is_file() else None
    if check and old_bytes is None:  # say it before any network request
        raise Failed(f"{path} does not exist; create it with `smm lock` and commit it")
    if old_bytes is not None:
        try:
            previous = lockfile.loads(old_bytes.decode("utf-8"), path)
        except (FormatError, UnicodeDecodeError) as err:
            if check:
                raise Failed(f"{path} is malformed ({err}); regenerate it with `smm lock`") from err
            click.echo(f"warning: ignoring malformed {path}: {err}", err=True)
    url = endpoint or settings.endpoint
    new = resolve_lock(spec, url, settings.token, timeout=settings.timeout, retries=settings.retries,
                       previous=previous, client=_hub(settings, url))
    if check:
        up_to_date = old_bytes == new.dumps().encode("utf-8")
        changes = [] if up_to_date else diff(previous, new)
        if as_json:
            click.echo(json.dumps({"path": str(path), "up_to_date": up_to_date, "changes": changes,
                                   "models": _lock_json(new)}, indent=2, sort_keys=True))
        if up_to_date:
            if not as_json:
                click.echo(f"{path} is up to date ({len(new.models)} model(s))")
            return
        lines = "\n".join(f"  - {line}" for line in changes)
        raise Failed(f"{path} is out of date with {spec_path} / the endpoint:\n{lines}\nRun `smm lock` and commit it.")
    written = lockfile.write_lock(path, new)
    if sign_key is not None:
        from ..ops.signing import sign_lock

        click.echo(f"signed {path} -> {sign_lock(path, sign_key)}", err=True)
    if as_json:
        click.echo(json.dumps({"path": str(path), "written": written, "models": _lock_json(new)},
                              indent=2, sort_keys=True))
        return
    click.echo(f"{'wrote' if written else 'unchanged:'} {path} ({len(new.models)} model(s))")
    for alias, e in sorted(new.models.items()):
        click.echo(f"  {alias}: {e.repo_id}@{e.commit[:12]} {len(e.files)} files, "
                   f"{sum(f.size for f in e.files.values()) / 1e6:,.1f} MB")


@click.command("pull")
@click.argument("refs", nargs=-1, metavar="[ORG/NAME[@REV]]...")
@click.option("--lock", "lock_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The lock to pull. Default: SMM_LOCK, else ./models.lock.")
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path),
              default=Path(spec_mod.DEFAULT_NAME), show_default=True,
              help="With ORG/NAME: the models.yaml to add it to (created if missing).")
@click.option("--model-type", type=click.Choice(["auto", "sentiment", "embeddings"]), default="auto",
              show_default=True, help="With ORG/NAME: its type; auto reads the pinned config.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Provision this volume folder (HF cache layout + model-metadata.yaml written last).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Fill this cache instead. Default: MODEL_CACHE_DIR / HF_HUB_CACHE / ~/.cache/huggingface/hub.")
@click.option("--endpoint", default=None, help="Hub or mirror URL. Default: HF_ENDPOINT, else huggingface.co.")
@click.option("--jobs", "-j", type=click.IntRange(1, 32), default=4, show_default=True,
              help="Files downloaded in parallel.")
@click.option("--only", multiple=True, metavar="ALIAS", help="Pull only these aliases (repeatable).")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: on a terminal).")
def pull(refs: tuple[str, ...], lock_path: Path | None, spec_path: Path, model_type: str, as_json: bool,
         target: Path | None, cache_dir: Path | None, endpoint: str | None, jobs: int,
         only: tuple[str, ...], progress: bool | None) -> None:
    """Download every locked model (or the ORG/NAME given), verify each sha256, publish atomically.

    With ORG/NAME[@REV] it is one step, like `hf download`: the model is added to models.yaml
    (created if missing) and pinned in models.lock, then pulled; files are written only if pinning
    succeeded.

    \b
    Examples:
      smm pull                                   # fill the local cache from ./models.lock
      smm pull ProsusAI/finbert                  # add + lock + pull one model
      smm pull sentence-transformers/all-MiniLM-L6-v2@main --target /mnt/models
      smm pull --target /mnt/models              # provision a volume (manifest written last)
      HF_ENDPOINT=http://mirror:8080 smm pull --target /mnt/models --jobs 8
      smm pull --only finbert --cache-dir /tmp/hf
    """
    from ..ops.pull import pull as run_pull

    if target is not None and cache_dir is not None:
        raise click.UsageError("--target and --cache-dir exclude each other")
    if refs and only:
        raise click.UsageError("give ORG/NAME arguments or --only, not both")
    settings = Settings.from_env()
    url = endpoint or settings.endpoint
    path = _lock_path(lock_path, settings)
    if refs:
        from ..ops.pull import ensure_writable
        from ..ops.quickpull import add_model

        # the destination first: pinning must not touch models.yaml/models.lock for a pull that cannot land
        ensure_writable(target or cache_dir or settings.cache_dir, what="target" if target else "cache folder")
        aliases = []
        try:
            for ref in refs:
                alias, _lock, wrote_spec = add_model(
                    ref, spec_path=spec_path, lock_path=path, endpoint=url, token=settings.token,
                    timeout=settings.timeout, retries=settings.retries, offline=settings.offline_origin,
                    model_type=None if model_type == "auto" else model_type, client=_hub(settings, url))
                aliases.append(alias)
                click.echo(f"pinned {ref} as {alias!r} in {path}" + (f" (added to {spec_path})" if wrote_spec else ""),
                           err=True)
        except (SmmError, OSError) as err:
            raise _pull_failed(err, url, offline=settings.offline_origin, pinning=True) from err
        only = tuple(aliases)
    lock_obj = lockfile.load(path)
    hook = _NoProgress() if as_json and progress is None else _progress(progress, bars=settings.progress_bars)
    try:
        report = run_pull(lock_obj, target=target, cache_dir=None if target else (cache_dir or settings.cache_dir),
                          endpoint=url, token=settings.token, jobs=jobs, progress=hook,
                          timeout=settings.timeout, retries=settings.retries, only=only or None,
                          offline=settings.offline_origin, client=_hub(settings, url))
    except (SmmError, OSError) as err:
        raise _pull_failed(err, url, offline=settings.offline_origin) from err
    finally:
        hook.close()
    if as_json:
        click.echo(json.dumps(_pull_json(report), indent=2, sort_keys=True))
        return
    for m in report.models:
        extra = f", {len(m.repaired)} repaired" if m.repaired else ""
        click.echo(f"{m.alias}: {m.repo_id}@{m.commit[:12]} {len(m.downloaded)} downloaded, {len(m.reused)} "
                   f"already present{extra} -> {m.snapshot}")
    where = f"volume {report.root} (manifest {report.manifest_path})" if report.is_volume else f"cache {report.root}"
    click.echo(f"{len(report.models)} model(s) verified in {where}: {report.files_downloaded} file(s), "
               f"{report.bytes_downloaded / 1e6:,.1f} MB downloaded in {report.seconds:.1f}s")


@click.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--as", "repo_id", required=True, help="Repo id to file it under, e.g. myorg/finbert-tuned.")
@click.option("--target", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Import into this volume and update its model-metadata.yaml (last).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Import into this cache. Default: MODEL_CACHE_DIR / HF_HUB_CACHE / ~/.cache/huggingface/hub.")
@click.option("--alias", default=None, help="Alias recorded in the volume manifest (load_model(alias)).")
@click.option("--model-type", default="sentiment", show_default=True, help="sentiment or embeddings.")
@click.option("--revision", default="main", show_default=True, help="The ref to point at the imported commit.")
def import_(folder: Path, repo_id: str, target: Path | None, cache_dir: Path | None, alias: str | None,
            model_type: str, revision: str) -> None:
    """Import a local model folder (air-gapped machines): content-addressed, verified, atomic.

    \b
    Examples:
      smm import ./finbert-tuned --as myorg/finbert-tuned
      smm import ./finbert-tuned --as myorg/finbert-tuned --target /mnt/models --alias finbert
      smm import ./minilm --as sentence-transformers/all-MiniLM-L6-v2 --model-type embeddings
    """
    from ..ops.pull import provision_from_folder

    if target is not None and cache_dir is not None:
        raise click.UsageError("--target and --cache-dir exclude each other")
    settings = Settings.from_env()
    root = target or cache_dir or settings.cache_dir
    result = provision_from_folder(folder, root, repo_id, model_type=model_type, alias=alias, revision=revision,
                                   write_manifest=target is not None)
    size = sum(s for s, _ in result.files.values())
    click.echo(f"imported {folder} as {repo_id}@{result.commit} ({len(result.files)} files, {size / 1e6:,.1f} MB) "
               f"into {root}" + (f"; manifest {result.manifest_path}" if result.manifest_path else ""))


def _lock_json(lock_obj: lockfile.Lock) -> dict[str, object]:
    return {alias: {"repo_id": e.repo_id, "revision": e.revision, "commit": e.commit,
                    "model_type": e.model_type, "files": len(e.files),
                    "bytes": sum(f.size for f in e.files.values())}
            for alias, e in sorted(lock_obj.models.items())}


def _pull_json(report: object) -> dict[str, object]:
    r: Any = report
    return {"root": str(r.root), "is_volume": r.is_volume,
            "manifest": str(r.manifest_path) if r.manifest_path else None,
            "seconds": r.seconds, "files_downloaded": r.files_downloaded,
            "bytes_downloaded": r.bytes_downloaded,
            "models": [{"alias": m.alias, "repo_id": m.repo_id, "commit": m.commit, "snapshot": str(m.snapshot),
                        "downloaded": list(m.downloaded), "reused": list(m.reused),
                        "repaired": list(m.repaired)} for m in r.models]}


def _pull_failed(err: BaseException, endpoint: str, *, offline: str | None = None,
                 pinning: bool = False) -> click.ClickException:
    """The error as usual, then ONE closing line: what failed and what to try."""
    import errno as errno_mod

    from .main import _classify

    code, prefix = _classify(err)
    if isinstance(err, IntegrityError):
        what, hint = ("the endpoint served other bytes than models.lock pins",
                      "if upstream changed on purpose run `smm lock` and review the diff; otherwise "
                      f"suspect the mirror or proxy at {endpoint}")
    elif isinstance(err, OSError) and err.errno == errno_mod.ENOSPC:
        what, hint = "not enough free space", "free space or choose another --target / --cache-dir"
    elif offline and isinstance(err, (ModelNotFoundError, SourceError)):
        what, hint = (f"{offline} is set, so nothing can be fetched from {endpoint}",
                      f"unset {offline} (smm and huggingface_hub both read it) and rerun `smm pull`, or pull on a "
                      "connected machine and copy the cache or volume here")
    elif pinning and isinstance(err, (ModelNotFoundError, SourceError)):
        what, hint = (f"the model could not be pinned at {endpoint}",
                      "check the ORG/NAME spelling and that the endpoint is reachable (`smm env` shows it; set "
                      "HF_ENDPOINT or --endpoint for a mirror; HF_TOKEN for a private or gated repo)")
    elif isinstance(err, (ModelNotFoundError, SourceError)):
        what, hint = (f"a download from {endpoint} failed",
                      "check that the endpoint is reachable (`smm env` shows it; set HF_ENDPOINT or "
                      "--endpoint for a mirror), then rerun `smm pull`: verified files are kept")
    elif isinstance(err, OSError):
        what, hint = "a local file operation failed", "fix the path or permissions named above and rerun"
    else:
        what, hint = "the pull stopped", "fix what the message above names and rerun `smm pull`"
    cls = FailedUsage if code == 2 else Failed
    kept = "models.yaml and models.lock unchanged" if pinning else "nothing unverified was published"
    return cls(f"{prefix}: {err}\nsmm pull failed: {what}; {kept}. Try: {hint}.")


# -- progress ------------------------------------------------------------------------------------
class _LineProgress:
    """Plain lines (CI logs, pipes): one when a file starts, one when it ends. Never per chunk."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, int] = {}

    def start(self, key: str, total: int | None) -> None:
        with self._lock:
            self._seen[key] = 0
        size = f" ({total / 1e6:,.1f} MB)" if total else ""
        click.echo(f"downloading {key}{size}", err=True)

    def advance(self, key: str, n: int) -> None:
        with self._lock:
            self._seen[key] = self._seen.get(key, 0) + n

    def finish(self, key: str) -> None:
        with self._lock:
            n = self._seen.pop(key, 0)
        click.echo(f"fetched {key} ({n / 1e6:,.1f} MB)", err=True)

    def close(self) -> None:
        pass


class _RichProgress:
    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.table import Column

        # stderr: stdout keeps only the summary, so `smm pull > log` stays readable. The name and the
        # bar share what the terminal has left (ratios, name cut with "…"), so at 80 columns every
        # file stays on one line instead of wrapping.
        self._bars = Progress(
            TextColumn("{task.description}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis")),
            BarColumn(bar_width=None, table_column=Column(ratio=2)), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(), transient=False, expand=True,
            console=console or Console(stderr=True))
        self._tasks: dict[str, object] = {}
        self._bars.start()

    def start(self, key: str, total: int | None) -> None:
        self._tasks[key] = self._bars.add_task(key, total=total)

    def advance(self, key: str, n: int) -> None:
        self._bars.advance(self._tasks[key], n)  # type: ignore[arg-type]

    def finish(self, key: str) -> None:
        pass

    def close(self) -> None:
        self._bars.stop()


class _NoProgress(_LineProgress):
    def start(self, key: str, total: int | None) -> None:
        pass

    def finish(self, key: str) -> None:
        pass


def _progress(wanted: bool | None, bars: bool = True) -> _LineProgress | _RichProgress:
    """--no-progress: nothing. On a terminal: live bars, unless HF_HUB_DISABLE_PROGRESS_BARS (``bars=False``)
    asks for none and --progress does not insist; then, as on a pipe, one plain line per file start and end."""
    tty = sys.stderr.isatty()
    if wanted is False:
        return _NoProgress()
    if tty and (bars or wanted is True):
        return _RichProgress()
    return _LineProgress()
