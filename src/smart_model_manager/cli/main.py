"""`smm`: the command-line entry point.

Commands are loaded lazily (``smm --help`` imports no command module's heavy dependencies) from the
table below: name -> "module:attribute". Each module holds one click command or group.

Exit codes: 0 success, 1 failure or findings, 2 usage error. Errors print one line; the traceback
is shown only with ``SMM_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from .. import errors
from ..settings import debug_enabled

COMMANDS: dict[str, tuple[str, str]] = {
    "env": ("smart_model_manager.cli.env", "env"),
    "analyze": ("smart_model_manager.cli.analyze", "analyze"),
    "models": ("smart_model_manager.cli.models", "models"),
    "mirror": ("smart_model_manager.cli.mirror", "mirror"),
    "serve": ("smart_model_manager.cli.serve", "serve"),
    "export": ("smart_model_manager.cli.export", "export"),
    "image": ("smart_model_manager.cli.image", "image"),
    "lock": ("smart_model_manager.cli.artifacts", "lock"),
    "pull": ("smart_model_manager.cli.artifacts", "pull"),
    "import": ("smart_model_manager.cli.artifacts", "import_"),
    "migrate": ("smart_model_manager.cli.migrate", "migrate"),
    "validate": ("smart_model_manager.cli.validate", "validate"),
    "sign": ("smart_model_manager.cli.sign", "sign"),
    "ls": ("smart_model_manager.cli.maintenance", "ls"),
    "prune": ("smart_model_manager.cli.maintenance", "prune"),
}

# Exception type -> (exit code, prefix). First match wins, so specific types come first.
EXIT_CODES: list[tuple[type[BaseException], int, str]] = [
    (errors.UnknownModelTypeError, 2, "usage error"),
    (errors.ConfigurationError, 2, "configuration error"),
    (errors.FormatError, 1, "malformed file"),
    (errors.IntegrityError, 1, "integrity error"),
    (errors.ModelNotFoundError, 1, "model not found"),
    (errors.BackendError, 1, "backend error"),
    (errors.SmmError, 1, "error"),
    (ValueError, 2, "invalid input"),
    (OSError, 1, "error"),
]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self._load(cmd_name)

    @staticmethod
    def _load(name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target
        cmd = getattr(importlib.import_module(module_name), attr)
        assert isinstance(cmd, click.Command)
        return cmd


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-v INFO, -vv DEBUG).")
@click.version_option(package_name="smart-model-manager")
def cli(verbose: int) -> None:
    """smart-model-manager: the right, verified copy of a model in every environment.

    \b
    Examples:
      smm env                      # which environment, why, and the effective settings
      smm analyze "BTC hits a record high"
      smm models build-demo        # build the offline demo sentiment model into the cache
    """
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map exceptions to exit codes. Returns the exit code (also used by tests)."""
    debug = debug_enabled()
    try:
        rv = cli.main(args=argv, prog_name="smm", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except click.exceptions.Exit as e:
        return int(e.exit_code or 0)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except Exception as e:  # noqa: BLE001 - the one place exceptions become exit codes
        if debug:
            raise
        code, prefix = _classify(e)
        click.echo(f"{prefix}: {e}", err=True)
        click.echo("(set SMM_DEBUG=1 for the traceback)", err=True)
        return code


def _classify(e: BaseException) -> tuple[int, str]:
    for etype, code, prefix in EXIT_CODES:
        if isinstance(e, etype):
            return code, prefix
    return 1, f"unexpected error ({type(e).__name__})"


def run() -> Any:  # pragma: no cover - console-script shim
    code = main()
    if "torch" in sys.modules or "onnxruntime" in sys.modules:
        # With torch/onnxruntime loaded, interpreter teardown (module GC, C++ destructors, thread
        # pools) took 6-15 s on a busy 2-core machine after the command had printed its result:
        # a silent pause that looks like a hang. Everything is done and closed by now,
        # so run the atexit handlers, flush, and leave without the teardown.
        import atexit
        import os

        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
