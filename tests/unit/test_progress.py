"""Progress lines: a new step prints at once, repeats are throttled, the heartbeat fills silences."""

from __future__ import annotations

import threading

import pytest

from smart_model_manager.progress import Progress, format_seconds

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_new_step_prints_at_once_and_repeats_are_throttled() -> None:
    clock, out = Clock(), []
    p = Progress(out.append, every=5, clock=clock)
    p("training: epoch 1/6, step 1/144")
    clock.now += 1
    p("training: epoch 1/6, step 2/144")          # same step, 1 s later: held back
    clock.now += 4.5
    p("training: epoch 1/6, step 9/144")          # 5.5 s since the last line: printed
    p("evaluating on 105 held-out headlines")     # a new step: printed at once
    assert out == ["training: epoch 1/6, step 1/144", "training: epoch 1/6, step 9/144",
                   "evaluating on 105 held-out headlines"]


def test_heartbeat_repeats_the_current_step_with_its_duration() -> None:
    clock, out = Clock(), []
    p = Progress(out.append, every=5, clock=clock)
    assert p.beat() is False                      # nothing said yet: nothing to repeat
    p.say("exporting the ONNX graph (torch.onnx)")
    clock.now += 4
    assert p.beat() is False                      # spoke 4 s ago
    clock.now += 8
    assert p.beat() is True
    assert out[-1] == "exporting the ONNX graph (torch.onnx) ... (12 s in this step)"
    clock.now += 1
    assert p.beat() is False                      # the heartbeat itself counts as output


def test_heartbeat_prints_a_held_back_status_as_is() -> None:
    clock, out = Clock(), []
    p = Progress(out.append, every=5, clock=clock)
    p("training: step 1/9")
    clock.now += 2
    p("training: step 2/9")                       # held back (2 s)
    clock.now += 4
    assert p.beat() is True
    assert out == ["training: step 1/9", "training: step 2/9"]


def test_heartbeat_thread_speaks_during_a_silent_call_and_stops() -> None:
    out: list[str] = []
    spoke = threading.Event()

    def emit(line: str) -> None:
        out.append(line)
        if "in this step" in line:
            spoke.set()

    with Progress(emit, every=0.05) as p:
        p.say("quantizing")
        assert spoke.wait(5), "no heartbeat within 5 s"
    n = len(out)
    spoke.clear()
    assert not spoke.wait(0.2)                    # thread stopped with the block
    assert len(out) == n


def test_format_seconds_and_bad_interval() -> None:
    assert [format_seconds(s) for s in (0, 9.6, 65, 600)] == ["0 s", "10 s", "1 min 05 s", "10 min 00 s"]
    with pytest.raises(ValueError, match="every"):
        Progress(print, every=0)


def test_pull_progress_fits_80_columns() -> None:
    import io

    from rich.console import Console

    from smart_model_manager.cli.artifacts import _RichProgress

    console = Console(width=80, color_system=None, record=True, file=io.StringIO())
    bars = _RichProgress(console)
    bars.start("sentence-transformers/all-MiniLM-L6-v2/onnx/model.int8.onnx", 23_000_000)
    bars.start("ProsusAI/finbert/config.json", 758)
    bars.advance("sentence-transformers/all-MiniLM-L6-v2/onnx/model.int8.onnx", 5_000_000)
    bars.close()
    lines = [line for line in console.export_text().splitlines() if line.strip()]
    assert len(lines) == 2 and all(len(line) <= 80 for line in lines)  # one line per file, no wrap
    assert "5.0/23.0 MB" in lines[0] and lines[0].startswith("sentence-transformers/all-MiniLM")
