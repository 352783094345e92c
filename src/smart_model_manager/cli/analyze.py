"""`smm analyze`: sentiment for headlines given as arguments or in a .txt / .jsonl file."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import click

from ..settings import Settings
from ..sources.known_models import default_model

BATCH = 32


def read_items(path: Path, stream: BinaryIO | None = None) -> list[dict[str, Any]]:
    """Items from a .txt file (one headline per line) or .jsonl (objects with "text", optional "id",
    "symbols"); ``stream`` reads those lines from an open binary stream instead (stdin)."""
    items: list[dict[str, Any]] = []
    with (contextlib.nullcontext(stream) if stream is not None else open(path, "rb")) as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise click.UsageError(
                    f"{path}:{n}: not UTF-8 text (byte {err.start + 1} of the line: {err.reason}); "
                    "--file takes a .txt (one headline per line) or .jsonl file") from None
            if not line.strip():
                continue
            if path.suffix == ".jsonl":
                try:
                    obj = json.loads(line)
                except ValueError as err:
                    raise click.UsageError(f"{path}:{n}: invalid JSON: {err}") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"].strip():
                    raise click.UsageError(f'{path}:{n}: expected an object with a non-empty "text" string')
                items.append({"id": obj.get("id", n), "text": obj["text"], "symbols": obj.get("symbols")})
            else:
                items.append({"id": n, "text": line.rstrip("\r\n"), "symbols": None})
    if not items:
        raise click.UsageError(f"{path} holds no headlines")
    return items


def _stdin_items(explicit: bool) -> list[dict[str, Any]] | None:
    """Headlines from stdin: ``smm analyze -``, or no argument while stdin is a pipe/file."""
    try:
        stdin = sys.stdin.buffer
        if not explicit and stdin.isatty():
            return None
        return read_items(Path("<stdin>"), stream=stdin)
    except (OSError, ValueError):  # no usable stdin (closed, or captured by a test runner)
        if explicit:
            raise click.UsageError("`-` reads headlines from stdin, but stdin cannot be read") from None
        return None


def _batches(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), BATCH):
        yield items[i:i + BATCH]


def _progress(total: int) -> Any:
    from rich.console import Console
    from rich.progress import Progress

    # the bar belongs on stderr; on stdout, rich 13.0 wrote a blank line even when disabled, breaking JSON lines
    return Progress(transient=True, console=Console(stderr=True),
                    disable=not (sys.stderr.isatty() and total > BATCH))


@click.command("analyze")
@click.argument("texts", nargs=-1)
@click.option("-f", "--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Headlines: .txt (one per line) or .jsonl (objects with a \"text\" key).")
@click.option("-m", "--model", default=None,
              help="Model alias, repo id or (in dev) a local model folder (default: SMM_MODEL, else "
                   "finbert; the offline demo model is finbert-demo).")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default=None,
              help="Output format (default: table on a terminal, JSON lines otherwise).")
@click.option("--symbols", is_flag=True, help="Also print per-symbol aggregates (BTC, ETH, ...).")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Write results here.")
def analyze(texts: tuple[str, ...], file_: Path | None, model: str | None, fmt: str | None, symbols: bool,
            output: TextIO) -> None:
    """Analyse the sentiment of headlines.

    \b
    Examples:
      smm analyze "Bitcoin crashes 20% after exchange hack" "ETF inflows push BTC to a record high"
      smm analyze --file data/sample_headlines.txt --format table --symbols
      smm analyze --file news.jsonl -o results.jsonl
      cat headlines.txt | smm analyze                # one headline per line on stdin (or: smm analyze -)
      smm analyze --model ./my-model "BTC up"       # a local model folder (dev only)
    """
    from ..api import get_model_manager
    from ..service.symbols import aggregate_symbols, detect_symbols, normalise_symbols

    if texts and file_:
        raise click.UsageError("give headlines as arguments or with --file, not both")
    if file_ is not None:
        items = read_items(file_)
    elif texts and texts != ("-",):
        items = [{"id": i, "text": t, "symbols": None} for i, t in enumerate(texts, 1)]
    else:
        stdin_items = _stdin_items(explicit=texts == ("-",))
        if stdin_items is None:
            raise click.UsageError("no headlines: pass them as arguments, with --file, or on stdin "
                                   "(`smm analyze -` or a pipe)")
        items = stdin_items
    for it in items:  # validate everything before loading anything
        if not it["text"].strip():
            where = f"{file_}:{it['id']}" if file_ is not None else f"argument {it['id']}"
            raise click.UsageError(f"{where}: empty headline; give at least one non-space character")
    name = model or default_model(Settings.from_env())
    fmt = fmt or ("table" if output.isatty() else "jsonl")

    m = get_model_manager().load_model(name, "sentiment")
    results: list[dict[str, Any]] = []
    with _progress(len(items)) as progress:
        task = progress.add_task("analysing", total=len(items))
        for batch in _batches(items):
            probs = m.raw([it["text"] for it in batch])
            for it, p in zip(batch, probs):
                scores = {lab: round(float(v), 6) for lab, v in zip(m.labels, p)}
                best = max(scores, key=lambda k: scores[k])
                syms = normalise_symbols(it["symbols"]) if it["symbols"] else detect_symbols(it["text"])
                results.append({"id": it["id"], "text": it["text"], "label": best, "score": scores[best],
                                "scores": scores, "symbols": syms, "_probs": list(p)})
            progress.advance(task, len(batch))

    agg = aggregate_symbols(((r["symbols"], r["_probs"]) for r in results), m.labels) if symbols else {}
    for r in results:
        del r["_probs"]
    if fmt == "jsonl":
        for r in results:
            output.write(json.dumps(r, ensure_ascii=False) + "\n")
        if symbols:
            output.write(json.dumps({"symbols": agg}, sort_keys=True) + "\n")
    else:
        _table(results, agg if symbols else None, m, output)


def _table(results: list[dict[str, Any]], agg: dict[str, Any] | None, m: Any, output: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    # a terminal's own width (80 columns must not wrap); 100 columns into files and pipes
    console = Console(file=output) if output.isatty() else Console(file=output, width=100)
    i = m.info
    console.print(f"model {i.repo_id} @ {(i.commit or '-')[:12]}", overflow="fold")
    console.print(f"  env={i.environment} source={i.source} backend={i.backend} load={i.load_seconds:.2f}s")
    colour = {"positive": "green", "negative": "red", "neutral": "yellow"}
    t = Table(show_lines=False)
    t.add_column("label")
    t.add_column("score", justify="right")
    t.add_column("symbols")
    t.add_column("headline")
    for r in results:
        c = colour.get(r["label"].lower(), "white")
        t.add_row(f"[{c}]{r['label']}[/{c}]", f"{r['score']:.3f}", ",".join(r["symbols"]), r["text"])
    console.print(t)
    if agg:
        s = Table(title="per symbol")
        for col in ("symbol", "count", "mean signed", "conf-weighted", *[f"#{lab}" for lab in m.labels]):
            s.add_column(col, justify="right" if col != "symbol" else "left")
        for sym, a in agg.items():
            s.add_row(sym, str(a["count"]), f"{a['mean_signed_score']:+.3f}", f"{a['confidence_weighted_score']:+.3f}",
                      *[str(a["label_counts"][lab]) for lab in m.labels])
        console.print(s)
