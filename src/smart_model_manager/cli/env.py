"""`smm env`: the doctor users run first when something is off."""

from __future__ import annotations

import json

import click

from ..settings import Settings
from .doctor import report


@click.command("env")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def env(as_json: bool) -> None:
    """Show the detected environment, why it was chosen, and the effective settings.

    \b
    Examples:
      smm env
      SMM_ENV=production SMM_VOLUME_DIR=/mnt/models smm env --json
    """
    rep = report(Settings.from_env())
    if as_json:
        click.echo(json.dumps(rep, indent=2, sort_keys=True))
        return
    click.echo(f"environment: {rep['environment']}  ({rep['reason']})")
    click.echo(f"sources:     {' -> '.join(rep['sources'])}")
    width = max(len(k) for k in rep)
    for key, value in rep.items():
        if key in ("environment", "reason", "sources", "signal"):
            continue
        click.echo(f"  {key:<{width}}  {value}")
