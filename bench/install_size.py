#!/usr/bin/env python3
"""What does an install download? Sum the wheel sizes of a ``pip install --dry-run --report`` file.

pip's report names every distribution it would install and its URL, not its size; this asks the
package index for each file's size (one HTTP HEAD per remote file; local files are stat'ed) and
flags the CUDA stack (``nvidia-*``, ``cuda-*``, ``triton``). Used for README "Installing":

    PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= .venv/bin/python -m pip install --dry-run \
        --ignore-installed --report /tmp/r.json -c constraints.txt -e ".[all,dev]"
    python3 bench/install_size.py /tmp/r.json [--json]

Needs network access to the index the report names (PyPI); stdlib only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
import urllib.request
from pathlib import Path

CUDA_PREFIXES = ("nvidia-", "cuda-", "triton")


def _size(url: str) -> int | None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        path = Path(urllib.parse.unquote(parsed.path))
        return path.stat().st_size if path.is_file() else None
    req = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(req, timeout=30) as resp:
        length = resp.headers.get("Content-Length")
    return int(length) if length else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("report", type=Path, help="the file written by pip install --dry-run --report")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    rows = []
    for item in report.get("install", []):
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        url = item["download_info"]["url"]
        size = None if url.startswith("file:") and item.get("is_direct") and "dir_info" in \
            item["download_info"] else _size(url)
        rows.append({"name": name, "version": version, "bytes": size,
                     "cuda": name.lower().startswith(CUDA_PREFIXES)})
    total = sum(r["bytes"] or 0 for r in rows)
    cuda = [r for r in rows if r["cuda"]]
    cuda_total = sum(r["bytes"] or 0 for r in cuda)
    summary = {"packages": len(rows), "bytes": total, "cuda_packages": len(cuda),
               "cuda_bytes": cuda_total, "rows": sorted(rows, key=lambda r: -(r["bytes"] or 0))}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    for r in summary["rows"][:15]:
        mb = "?" if r["bytes"] is None else f"{r['bytes'] / 1e6:8.1f} MB"
        print(f"{mb:>11}  {r['name']}=={r['version']}{'  (CUDA)' if r['cuda'] else ''}")
    print(f"{len(rows)} packages, {total / 1e6:.0f} MB to download; CUDA stack: {len(cuda)} "
          f"packages, {cuda_total / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
