"""model-metadata.yaml format 2: several commits per model, the lock history, format 1 still read,
merging rules (files of one commit, alias owners), and the writer (under the volume lock, re-parsed)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from smart_model_manager import ManifestError, MissingFileError
from smart_model_manager.formats import manifest
from smart_model_manager.formats.manifest import FileEntry, LockRecord, Manifest, ModelEntry

pytestmark = pytest.mark.unit

C1, C2, C3 = "ab" * 20, "cd" * 20, "ef" * 20
D1, D2 = "sha256:" + "d1" * 32, "sha256:" + "d2" * 32
F = FileEntry(10, "sha256:" + "ab" * 32)
G = FileEntry(20, "sha256:" + "cd" * 32)


def entry(commit: str, files: dict[str, FileEntry], **kw) -> ModelEntry:  # type: ignore[no-untyped-def]
    return ModelEntry(repo_id="org/fin", commit=commit, model_type="sentiment", files=files,
                      labels=("negative", "neutral", "positive"), **kw)


def two_commits() -> Manifest:
    return Manifest.of([entry(C1, {"config.json": F, "model.safetensors": G}, provisioned_at="2026-01-01T00:00:00Z",
                              lock_digest=D1, aliases=("fin",)),
                        entry(C2, {"config.json": F}, provisioned_at="2026-02-01T00:00:00Z", lock_digest=D2)],
                       locks=[LockRecord(D1, "2026-01-01T00:00:00Z", {"org/fin": C1}),
                              LockRecord(D2, "2026-02-01T00:00:00Z", {"org/fin": C2})],
                       generated_by="tests", verified_at="2026-02-01T00:00:00Z")


def test_format_2_round_trips_canonically_with_every_commit_and_the_lock_history() -> None:
    man = two_commits()
    text = man.dumps()
    assert text.count("format: 2") == 1 and "commits:" in text and "locks:" in text
    back = manifest.loads(text, "v/model-metadata.yaml")
    assert back.as_dict() == man.as_dict() and back.dumps() == text and back.format == 2
    rec = back.find("fin")
    assert rec is back.find("ORG/FIN") and sorted(rec.commits) == [C1, C2]
    assert rec.get(C1).files == {"config.json": F, "model.safetensors": G} and rec.get(C2).files == {"config.json": F}
    assert rec.get(C1).lock_digest == D1 and rec.get(C2).provisioned_at == "2026-02-01T00:00:00Z"
    assert rec.latest().commit == C2 and back.lock_digest == D2
    assert [e.commit for e in back.entries()] == [C1, C2]


def test_format_1_is_still_read_and_written_back_as_format_2() -> None:
    v1 = f"""format: 1
generated_by: smart-model-manager 0.1.0
verified_at: '2026-11-26T09:00:00Z'
lock_digest: {D1}
models:
  org/fin:
    commit: {C1}
    model_type: sentiment
    labels: [negative, neutral, positive]
    aliases: [fin]
    files:
      config.json: {{size: 10, sha256: '{F.sha256}'}}
"""
    man = manifest.loads(v1)
    assert man.format == 1
    e = man.entry("fin", C1)
    assert e is not None and e.files == {"config.json": F} and e.labels == ("negative", "neutral", "positive")
    # the volume-wide digest and time become the commit's and the one lock record's
    assert (e.lock_digest, e.provisioned_at) == (D1, "2026-11-26T09:00:00Z")
    assert man.locks == (LockRecord(D1, "2026-11-26T09:00:00Z", {"org/fin": C1}),)
    again = manifest.loads(man.dumps())
    assert again.format == 2 and again.entry("fin", C1) == e and again.locks == man.locks


def test_a_commit_records_the_union_of_the_files_its_locks_pinned() -> None:
    # B2: the same commit re-provisioned by a lock with `include:` pins fewer files; the others stay on the
    # volume (an older lock's pods may read them), so they stay recorded and verifiable
    man = Manifest.of([entry(C1, {"config.json": F, "model.safetensors": G})])
    man = man.with_entry(entry(C1, {"config.json": F}, lock_digest=D2))
    assert man.entry("org/fin", C1).files == {"config.json": F, "model.safetensors": G}
    assert man.entry("org/fin", C1).lock_digest == D2
    # other bytes for a path of a recorded commit are a conflict the provisioner refuses
    changed = entry(C1, {"config.json": FileEntry(11, F.sha256), "vocab.txt": G})
    assert manifest.conflicts(man, changed) == [("config.json", F, FileEntry(11, F.sha256))]
    assert manifest.conflicts(man, entry(C2, {"config.json": G})) == []


def test_aliases_have_one_owner_and_repo_ids_match_case_insensitively() -> None:
    man = Manifest.of([entry(C1, {"config.json": F}, aliases=("fin",))])
    other = ModelEntry(repo_id="org/other", commit=C3, model_type="sentiment", files={"config.json": F},
                       aliases=("fin",))
    man = man.with_entry(other)
    assert man.find("fin").repo_id == "org/other" and man.models["org/fin"].aliases == ()
    man = man.with_entry(dataclasses.replace(entry(C2, {"config.json": F}), repo_id="ORG/Fin"))
    assert sorted(man.models) == ["ORG/Fin", "org/other"] and sorted(man.models["ORG/Fin"].commits) == [C1, C2]


def test_lock_history_recent_commits_and_forgetting_commits() -> None:
    man = two_commits().with_lock(LockRecord(D1, "2026-03-01T00:00:00Z", {"org/fin": C1}))  # rollback: D1 again
    assert [r.digest for r in man.locks] == [D2, D1]  # re-provisioning moves a lock to the end (newest)
    assert man.recent_commits(1) == {"org/fin": {C1}}
    assert man.recent_commits(2) == {"org/fin": {C1, C2}} and man.recent_commits(0) == {}
    gone = man.without_commits({"org/fin": [C2]})
    assert sorted(gone.models["org/fin"].commits) == [C1] and [r.digest for r in gone.locks] == [D1]
    assert gone.without_commits({"org/fin": [C1]}).models == {}
    history = Manifest(models=man.models)
    for i in range(manifest.MAX_LOCK_HISTORY + 5):
        history = history.with_lock(LockRecord("sha256:" + f"{i:064x}", "t", {"org/fin": C1}))
    assert len(history.locks) == manifest.MAX_LOCK_HISTORY and history.locks[-1].digest.endswith(f"{i:x}")


@pytest.mark.parametrize("old,new,at,expect", [
    (f"- digest: {D1}", "- digest: md5:1", None, "locks.0.digest: expected 'sha256:'"),
    (f"    org/fin: {C1}", f"    org/fin: {C3}", None, f"locks.0.models.org/fin: org/fin@{C3[:12]} is not recorded"),
    (f"      {C2}:", "      not-a-commit:", None, "commits.not-a-commit: expected a 40-hex commit id"),
    ("      model_type: sentiment", "      model_type: 7", None, "model_type: expected a model type"),
    (f"      lock_digest: {D2}", "      lock_digest: 5", None, "lock_digest: expected 'sha256:'"),
    ("    commits:", "    comits:", "  org/fin:", "expected a mapping with 'commits'"),
])
def test_malformed_format_2_names_file_line_and_field(old: str, new: str, at: str | None, expect: str) -> None:
    text = two_commits().dumps()
    assert old in text, text
    bad = text.replace(old, new, 1)
    line = next(i for i, ln in enumerate(bad.splitlines(), 1) if ln.strip() == (at or new).strip())
    with pytest.raises(ManifestError) as exc:
        manifest.loads(bad, "/app/models/model-metadata.yaml")
    assert str(exc.value).startswith(f"/app/models/model-metadata.yaml:{line}:"), (str(exc.value), line)
    assert expect in str(exc.value)


def test_record_adds_commits_under_the_volume_lock_and_writes_what_parses(tmp_path: Path) -> None:
    root = tmp_path / "vol"
    for c in (C1, C2, C3):
        (root / "models--org--fin" / "snapshots" / c).mkdir(parents=True)
    (root / f".tmp-{manifest.MANIFEST_NAME}.dead").write_text("half")  # a writer killed mid-write
    manifest.record(root, [entry(C1, {"config.json": F})], generated_by="tests", lock_digest=D1)
    man = manifest.record(root, [entry(C2, {"config.json": G})], generated_by="tests", lock_digest=D2)
    assert man == dataclasses.replace(manifest.load(root / manifest.MANIFEST_NAME), path=man.path)
    assert sorted(man.models["org/fin"].commits) == [C1, C2]
    assert [r.digest for r in man.locks] == [D1, D2] and man.generated_by == "tests"
    assert not list(root.glob(".tmp-*"))
    # an import (no lock) records the commit and no lock
    man = manifest.record(root, [entry(C3, {"config.json": F})], generated_by="tests")
    assert man.entry("org/fin", C3).lock_digest is None and len(man.locks) == 2


def test_a_commit_whose_snapshot_vanished_is_never_recorded(tmp_path: Path) -> None:
    # `smm prune` deletes commits while holding the volume lock; a pull records only what still exists
    root = tmp_path / "vol"
    (root / "models--org--fin" / "snapshots" / C1).mkdir(parents=True)
    manifest.record(root, [entry(C1, {"config.json": F})], generated_by="tests", lock_digest=D1)
    before = (root / manifest.MANIFEST_NAME).read_bytes()
    with pytest.raises(MissingFileError, match=f"snapshot {C2} vanished before it was recorded"):
        manifest.record(root, [entry(C1, {"config.json": F}), entry(C2, {"config.json": G})], generated_by="tests",
                        lock_digest=D2)
    assert (root / manifest.MANIFEST_NAME).read_bytes() == before
