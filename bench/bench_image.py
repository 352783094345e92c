#!/usr/bin/env python3
"""`smm image build`: image size, build time, compression and layer sharing, per model folder.

For each model folder (imported into a temp cache first, as `smm import` does, and locked):

* **build**: `build_image` (hash every file against the lock, then pack it into tar layers, write the OCI
  layout). Baseline in the same run: a plain recursive copy of the same snapshot (`shutil.copytree`
  following links, what any packer must at least read and write). Ratio = build / copy. Alternated
  round by round; the median of `--rounds` is reported.
* **compression**: the biggest layer gzipped at level 6 (mtime 0): bytes and seconds, against the
  uncompressed layer. This decides whether layers are compressed.
* **sharing**: version 2 = the same files plus a changed `config.json` (a metadata-only release) and,
  separately, one changed weight file; bytes of the v2 layers that v1 does not have (what a node holding
  v1 pulls), against the whole v2 image.

    .venv/bin/python bench/bench_image.py --model demo=PATH_TO_DEMO_MODEL [--finbert-sized] [--write]

`--finbert-sized` adds a folder with FinBERT's file sizes (438 MB weights) of random bytes: its size and
build time are representative, its compression is not (random bytes do not compress). Results go to
bench/results/image.json only with `--write`. The machine is shared: the load average is recorded.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_util import RESULTS, machine  # noqa: E402

from smart_model_manager.formats.lockfile import Lock, LockEntry  # noqa: E402
from smart_model_manager.image.build import build_image  # noqa: E402
from smart_model_manager.ops.pull import provision_from_folder  # noqa: E402


def lock_for(folder: Path, cache: Path, repo_id: str) -> tuple[Lock, Path]:
    res = provision_from_folder(folder, cache, repo_id, model_type="sentiment")
    e = res.entry
    entry = LockEntry("m", repo_id, "main", res.commit, "sentiment", dict(e.files), labels=e.labels)
    return Lock(models={"m": entry}), res.snapshot


def finbert_sized(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "config.json").write_text(json.dumps({"architectures": ["BertForSequenceClassification"],
                                                 "id2label": {"0": "positive", "1": "negative", "2": "neutral"}}))
    (dest / "vocab.txt").write_bytes(os.urandom(231_508))
    (dest / "tokenizer_config.json").write_text('{"do_lower_case": true}\n')
    with open(dest / "model.safetensors", "wb") as f:
        for _ in range(438):
            f.write(os.urandom(1_000_000))
    return dest


def measure(name: str, folder: Path, tmp: Path, rounds: int) -> dict[str, Any]:
    cache = tmp / f"cache-{name}"
    lock, snap = lock_for(folder, cache, f"bench/{name}")
    files = sum(f.size for f in lock.models["m"].files.values())
    builds, copies, report = [], [], None
    for r in range(rounds):
        for what in (("build", "copy") if r % 2 == 0 else ("copy", "build")):
            out = tmp / f"{name}-{what}-{r}"
            t0 = time.perf_counter()
            if what == "build":
                report = build_image(lock, cache, out)
                builds.append(time.perf_counter() - t0)
            else:
                shutil.copytree(snap, out, symlinks=False)
                copies.append(time.perf_counter() - t0)
            shutil.rmtree(out)
    assert report is not None
    out = tmp / f"{name}-v1"
    v1 = build_image(lock, cache, out)
    biggest = max(v1.layers, key=lambda la: la.size)
    raw = (out / "blobs" / "sha256" / biggest.digest[7:]).read_bytes()
    t0 = time.perf_counter()
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    gz_s = time.perf_counter() - t0
    sharing = {}
    for case, rel in (("config.json changed", "config.json"), ("one weight file changed", _weights(lock))):
        v2dir = tmp / f"{name}-src-{len(sharing)}"
        shutil.copytree(snap, v2dir, symlinks=False)
        with open(v2dir / rel, "ab") as f:
            f.write(b"\n" if rel.endswith(".json") else b"\0")
        lock2, _ = lock_for(v2dir, cache, f"bench/{name}")
        v2 = build_image(lock2, cache, tmp / f"{name}-v2-{len(sharing)}")
        old = {la.digest for la in v1.layers}
        new = [la for la in v2.layers if la.digest not in old]
        sharing[case] = {"new_bytes": sum(la.size for la in new), "image_bytes": v2.size, "new_layers": len(new),
                         "layers": len(v2.layers)}
    return {"model": name, "files": len(lock.models["m"].files), "file_bytes": files, "image_bytes": v1.size,
            "layers": len(v1.layers), "build_s": round(statistics.median(builds), 3),
            "copy_s": round(statistics.median(copies), 3),
            "build_over_copy": round(statistics.median(builds) / statistics.median(copies), 2),
            "gzip6": {"layer": biggest.holds, "bytes": len(raw), "gz_bytes": len(gz),
                      "ratio": round(len(gz) / len(raw), 3), "seconds": round(gz_s, 3)},
            "sharing": sharing}


def _weights(lock: Lock) -> str:
    files = lock.models["m"].files
    return max(files, key=lambda rel: files[rel].size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--finbert-sized", action="store_true")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-image-") as t:
        tmp = Path(t)
        models = [tuple(m.split("=", 1)) for m in args.model]
        if args.finbert_sized:
            models.append(("finbert-sized", str(finbert_sized(tmp / "finbert-sized-src"))))
        for name, folder in models:
            results.append(measure(name, Path(folder), tmp, args.rounds))
    doc = {"machine": machine(), "results": results}
    print(json.dumps(doc, indent=2))
    if args.write:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "image.json").write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
