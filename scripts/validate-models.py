#!/usr/bin/env python3
"""validate-models.py: the original design's script name, on `smm validate`.

    scripts/validate-models.py --quick --dir /app/models     # every `smm validate` flag, same exit codes (0/1/2)
    scripts/validate-models.py --model-dir /app/models --wait --timeout 600 --export-report report.json --quiet

The original's flags:
  --model-dir DIR        the folder to check (same as --dir)
  --wait                 poll until the folder validates; exit 1 with the last findings after --timeout
                         (`smm validate --wait`)
  --timeout SECONDS      how long --wait polls (default: smm validate's, 600)
  --export-report FILE   also write the report as JSON to FILE (whatever the outcome)
  --quiet                print nothing on stdout; the exit code says it all

With neither --model-dir nor --dir: SMM_VOLUME_DIR when set, else MODEL_CACHE_DIR when set (the variable
the original documented), else /app/models. Exit codes are those of `smm validate`: 0 ok, 1 findings
(or still not valid when --wait timed out), 2 usage error.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

try:
    from smart_model_manager.cli.main import main
except ModuleNotFoundError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from smart_model_manager.cli.main import main



def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="validate-models.py", add_help=False)
    p.add_argument("--model-dir", dest="model_dir")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--timeout", type=float, default=None)
    p.add_argument("--export-report", dest="export_report")
    p.add_argument("--quiet", "-q", action="store_true")
    return p.parse_known_args(argv)


def validate_args(opts: argparse.Namespace, rest: list[str]) -> list[str] | str:
    """The `smm validate` arguments, or a usage error message."""
    has_dir = any(a == "--dir" or a.startswith("--dir=") for a in rest)
    if opts.model_dir and has_dir:
        return "--model-dir and --dir name the same thing; give one"
    if opts.timeout is not None and opts.timeout < 0:
        return f"--timeout must be >= 0 seconds, got {opts.timeout:g}"
    args = list(rest)
    uses_cache = "--cache" in rest
    if opts.model_dir:
        args += ["--dir", opts.model_dir]
    elif not has_dir and not uses_cache and not os.environ.get("SMM_VOLUME_DIR") and os.environ.get("MODEL_CACHE_DIR"):
        args += ["--dir", os.environ["MODEL_CACHE_DIR"]]
    return args


def run_once(args: list[str]) -> tuple[int, dict[str, Any] | None]:
    """`smm validate ARGS --json`, its stdout captured; (exit code, the report or None)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["validate", *args, "--json"])
    try:
        report = json.loads(out.getvalue())
    except ValueError:
        report = None
    return code, report if isinstance(report, dict) else None


def render(report: dict[str, Any]) -> str:
    """The human report `smm validate` prints, from its JSON form."""
    from dataclasses import fields

    from smart_model_manager.cli.validate import render as render_report
    from smart_model_manager.ops.validate import Finding, ValidationReport

    names = {f.name for f in fields(ValidationReport)}
    data = {k: v for k, v in report.items() if k in names and k != "findings"}
    findings = tuple(Finding(**f) for f in report.get("findings", []))
    return render_report(ValidationReport(findings=findings, **data))


ORIGINAL_FLAGS = """
Flags of the original validate-models.py (accepted here too):
  --model-dir DIR        the folder to check (same as --dir)
  --wait                 poll until the folder validates (bounded by --timeout)
  --timeout SECONDS      how long --wait polls (default 600)
  --export-report FILE   also write the report as JSON to FILE
  --quiet                print nothing on stdout; the exit code says it all
With no folder given: SMM_VOLUME_DIR, else MODEL_CACHE_DIR, else /app/models."""


def run(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        code = main(["validate", "--help"])
        print(ORIGINAL_FLAGS)
        return code
    opts, rest = parse(argv)
    args = validate_args(opts, rest)
    if isinstance(args, str):
        print(f"usage error: {args}", file=sys.stderr)
        return 2
    wants_json = "--json" in args
    args = [a for a in args if a != "--json"]
    if opts.wait:  # `smm validate --wait` polls and prints its progress on stderr
        args += ["--wait"] + (["--timeout", f"{opts.timeout:g}"] if opts.timeout is not None else [])
    code, report = run_once(args)
    if opts.export_report and report is not None:
        target = Path(opts.export_report)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, target)
    if report is not None and not opts.quiet:
        print(json.dumps(report, indent=2, sort_keys=True) if wants_json else render(report))
    return code


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
