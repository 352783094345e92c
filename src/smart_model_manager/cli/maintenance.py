"""`smm ls` and `smm prune`: what is in the cache / on the volume, and removing what nothing uses."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..formats import lockfile
from ..ops import maintenance
from ..settings import Settings


def human(n: int) -> str:
    """Decimal units (kB = 1000 B), like `smm import` and `du --si`."""
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


def _lock(settings: Settings, lock_path: Path | None, no_lock: bool) -> lockfile.Lock | None:
    """--lock, else SMM_LOCK, else ./models.lock if present. A malformed lock is an error (exit 1)."""
    if no_lock:
        return None
    if lock_path is not None:
        return lockfile.load(lock_path)
    return lockfile.find_lock(settings)


# exists=True: a typo'd --dir is a usage error (exit 2), not "0 models"
_dir_opt = click.option("--dir", "directory", type=click.Path(file_okay=False, exists=True, path_type=Path),
                        default=None,
                        help="Folder to inspect. Default: the local cache (and the volume for ls, if present).")
_lock_opt = click.option("--lock", "lock_path", type=click.Path(dir_okay=False, exists=True, path_type=Path),
                         default=None, help="models.lock. Default: SMM_LOCK, else ./models.lock if present.")
_no_lock_opt = click.option("--no-lock", is_flag=True, help="Ignore any models.lock.")


@click.command("ls")
@_dir_opt
@_lock_opt
@_no_lock_opt
@click.option("--json", "as_json", is_flag=True, help="Print JSON (for machines).")
def ls(directory: Path | None, lock_path: Path | None, no_lock: bool, as_json: bool) -> None:
    """List models: revisions (commits and refs), sizes, where they live, and whether models.lock pins them.

    \b
    Examples:
      smm ls                                   # the local cache, and SMM_VOLUME_DIR if it exists
      smm ls --dir /app/models --lock models.lock
      smm ls --json | jq '.[].repos[].repo_id'
    """
    settings = Settings.from_env()
    lock = _lock(settings, lock_path, no_lock)
    roots = [directory] if directory is not None else [settings.cache_dir] + (
        [settings.volume_dir] if settings.volume_dir.is_dir() and settings.volume_dir != settings.cache_dir else [])
    listings = [maintenance.list_models(r, lock=lock) for r in roots]
    if as_json:
        click.echo(json.dumps([x.as_dict() for x in listings], indent=2, sort_keys=True))
        return
    for listing in listings:
        kind = "volume" if listing.manifest else "cache"
        click.echo(f"{listing.location} ({kind}): {len(listing.repos)} model(s)")
        for r in listing.repos:
            lock_note = {"locked": f"locked as {r.alias}", "locked-commit-absent":
                         f"locked as {r.alias} at {(r.locked_commit or '')[:12]}, which is NOT here",
                         "unlocked": "not in models.lock", "no-lock": ""}[r.lock_status]
            click.echo(f"  {r.repo_id}  {human(r.size_on_disk)} on disk  {lock_note}".rstrip())
            for rev in r.revisions:
                marks = [m for m, on in (("locked", rev.locked), ("manifest", rev.in_manifest)) if on]
                refs = ",".join(rev.refs) or "(no ref)"
                click.echo(f"    {rev.commit[:12]}  {refs:<12} {rev.files:>3} file(s) {human(rev.size):>9}"
                           f"  {' '.join(marks)}".rstrip())
        for alias, rid, commit in listing.absent:
            click.echo(f"  {rid}  locked as {alias} at {commit[:12]}: NOT in {listing.location}")
        if listing.locks:
            click.echo(f"  locks provisioned here, newest last ({len(listing.locks)}; prune --keep-locks N keeps "
                       "the commits of the last N):")
            for i, rec in enumerate(listing.locks):
                pins = ", ".join(f"{rid}@{c[:12]}" for rid, c in sorted(rec.models.items()))
                click.echo(f"    {len(listing.locks) - i:>3}. {rec.digest[7:19]}  {rec.provisioned_at}  {pins}")


@click.command("prune")
@_dir_opt
@_lock_opt
@_no_lock_opt
@click.option("--dry-run", is_flag=True, help="Print the plan and delete nothing.")
@click.option("--min-age", type=click.FloatRange(min=0), default=maintenance.DEFAULT_MIN_AGE,
              show_default=True, help="Seconds a blob or .tmp-*/.incomplete leftover must be untouched to be removed "
                   "(younger ones may belong to a download in progress).")
@click.option("--keep-locks", type=click.IntRange(min=1), default=None, metavar="N",
              help="On a volume: also remove commits its manifest records that none of the N most recently "
                   "provisioned locks pins (nor --lock, nor a ref). Default: keep every recorded commit.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan (and result) as JSON.")
def prune(directory: Path | None, lock_path: Path | None, no_lock: bool, dry_run: bool, min_age: float,
          keep_locks: int | None, as_json: bool) -> None:
    """Delete revisions nothing references, blobs nothing links to, and stale temp files.

    Kept: snapshots a ref points to, commits models.lock or the volume manifest pins, and their blobs.
    With --keep-locks N (volumes), only the commits of the N most recently provisioned locks (and --lock's)
    stay recorded; the others are removed from the manifest first, then from disk.
    The plan is printed first with the bytes each item frees.

    \b
    Examples:
      smm prune --dry-run                      # what would go from the local cache
      smm prune --lock models.lock             # keep everything the lock pins, delete the rest
      smm prune --dir /app/models --keep-locks 2 --min-age 0 --dry-run   # a volume after rollouts
    """
    settings = Settings.from_env()
    lock = _lock(settings, lock_path, no_lock)
    root = directory if directory is not None else settings.cache_dir
    plan = maintenance.plan_prune(root, lock=lock, min_age=min_age, keep_locks=keep_locks)
    result = None if dry_run or not plan.items else maintenance.execute_prune(plan, lock=lock,
                                                                            min_age=min_age)
    if as_json:
        click.echo(json.dumps({"plan": plan.as_dict(), "dry_run": dry_run,
                               "result": result.as_dict() if result else None}, indent=2, sort_keys=True))
        return
    click.echo(f"prune plan for {plan.root}: {len(plan.items)} item(s), {human(plan.total_bytes)} "
               f"({plan.total_bytes} bytes); {plan.kept_revisions} revision(s) kept"
               + (f" (commits of the {keep_locks} most recent lock(s) kept)" if keep_locks else ""))
    for item in plan.items:
        click.echo(f"  {item.kind:<8} {human(item.bytes):>9}  {item.path}  ({item.reason})")
    if dry_run:
        click.echo("dry run: nothing deleted")
    elif result is not None:
        click.echo(f"deleted {len(result.deleted)} item(s), freed {human(result.freed_bytes)} "
                   f"({result.freed_bytes} bytes)")
        for item, why in result.skipped:
            click.echo(f"  kept {item.path}: {why}")
