"""``model.Runner`` declares every attribute the code reads from a runner, every runner class has all of
them, and nothing in ``src`` reads a runner attribute through a ``getattr`` default any more."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import smart_model_manager
from smart_model_manager.loaders.mock import MockEmbeddingRunner, MockSentimentRunner, mock_runner
from smart_model_manager.loaders.onnx import OnnxRunner
from smart_model_manager.loaders.torch import TorchRunner
from smart_model_manager.model import Runner, RunnerDefaults

pytestmark = pytest.mark.unit

SRC = Path(smart_model_manager.__file__).parent
DECLARED = {n for n, v in vars(Runner).items() if isinstance(v, property)}


def test_the_protocol_declares_what_the_code_reads() -> None:
    assert DECLARED == {"backend", "device", "dtype", "supports_options", "max_length", "token_budget",
                        "int8_check"}
    assert DECLARED <= set(vars(RunnerDefaults))


@pytest.mark.parametrize("cls", [MockSentimentRunner, MockEmbeddingRunner, OnnxRunner, TorchRunner])
def test_every_runner_class_has_every_attribute(cls: type) -> None:
    missing = sorted(n for n in DECLARED if not hasattr(cls, n))
    assert not missing, f"{cls.__name__} lacks {missing}"


def test_the_mocks_say_what_they_are() -> None:
    for runner in (mock_runner("org/m", "sentiment"), mock_runner("org/e", "embeddings")):
        assert (runner.backend, runner.device, runner.dtype, runner.supports_options) == ("mock", "cpu", "fp32", True)
        assert runner.int8_check is None and runner.token_budget is None
    assert mock_runner("org/m", "sentiment").max_length == 512 and mock_runner("org/e", "embeddings").max_length is None


def test_no_runner_attribute_is_read_through_a_getattr_default() -> None:
    wanted = re.compile("|".join(DECLARED))
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" and len(node.args) == 3 \
                    and isinstance(node.args[1], ast.Constant) and wanted.fullmatch(str(node.args[1].value)) \
                    and "runner" in ast.unparse(node.args[0]).lower():
                raise AssertionError(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}; the Runner "
                                     "protocol guarantees the attribute")
