"""`smm migrate`: convert an original-design volume (one folder per model) into a verified volume."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("migrate")
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The new volume (created if missing; an existing volume gets the models added).")
@click.option("--map", "maps", multiple=True, metavar="FOLDER=ORG/NAME",
              help="Repo id of a model folder, e.g. --map finbert=ProsusAI/finbert (repeatable). Wins over the "
                   "old manifest.")
@click.option("--dry-run", is_flag=True, help="Print the plan and write nothing.")
@click.option("--allow-pickle", is_flag=True,
              help="Convert pickle-only weights (pytorch_model.bin) to model.safetensors. Pickle can run code when "
                   "loaded: only for models you trust.")
def migrate(source: Path, target: Path, maps: tuple[str, ...], dry_run: bool, allow_pickle: bool) -> None:
    """Import every model folder of an original-style volume under its repo id, verified; manifest written last.

    Repo ids come from --map, else the old manifest.json / model-metadata.yaml, else a folder's
    cache_metadata.json. The source is only read. A plan with any problem writes nothing (exit 1).

    \b
    Examples:
      smm migrate /app/models --target /mnt/new-models --dry-run
      smm migrate /app/models --target /mnt/new-models --map finbert=ProsusAI/finbert
      smm migrate ./old-volume --target ./volume --allow-pickle && smm validate --dir ./volume --full
    """
    from ..ops.migrate import make_plan, migrate as run_migrate, parse_map

    plan = make_plan(source, target, parse_map(list(maps)), allow_pickle=allow_pickle)
    click.echo(plan.render())
    if not plan.ok:
        raise click.ClickException(f"{len(plan.problems) or 1} problem(s); nothing was written"
                                   + ("" if dry_run else f" to {target}"))
    if dry_run:
        click.echo(f"dry run: {len(plan.items)} model(s) would be migrated; nothing was written")
        return
    result = run_migrate(plan)
    click.echo(f"migrated {len(result.models)} model(s), {result.files} file(s), {result.bytes / 1e6:,.1f} MB into "
               f"{result.target}; manifest {result.manifest_path} written last; full re-validation OK")
    for repo_id, commit in sorted(result.models.items()):
        click.echo(f"  {repo_id}@{commit[:12]}")
