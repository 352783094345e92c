"""`import smart_model_manager` (and the pytest plugin, and `smm --help`) stay light."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

HEAVY = ["torch", "transformers", "onnxruntime", "huggingface_hub", "numpy", "tokenizers", "fastapi"]


def _loaded_after(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_import_package_imports_nothing_heavy():
    assert _loaded_after("import smart_model_manager") == []


def test_mock_load_imports_nothing_heavy():
    code = ("import os; os.environ['TESTING'] = 'true'\n"
            "from smart_model_manager import get_model_manager\n"
            "get_model_manager().load_model('ProsusAI/finbert', 'sentiment')('BTC up')")
    assert _loaded_after(code) == []


def test_compat_module_and_a_mock_load_through_it_import_nothing_heavy():
    assert _loaded_after("import smart_model_manager.compat") == []
    code = ("import os; os.environ['TESTING'] = 'true'\n"
            "from smart_model_manager.compat import get_model_manager\n"
            "get_model_manager().load_model('ProsusAI/finbert', 'sentiment')('BTC up', truncation=True, max_length=512)")
    assert _loaded_after(code) == []


def test_mock_start_defers_what_only_writes_and_real_loads_need():
    """A mock start (bench/bench_mock.py) pays only for what it runs: no copying (shutil and its
    compressors), no temp names (uuid -> platform), no hashing (OpenSSL's _hashlib), no config.json
    parsing (json), no device probing. Each is imported inside the function that needs it."""
    code = ("import os, sys; os.environ['TESTING'] = 'true'\n"
            "from smart_model_manager import get_model_manager\n"
            "get_model_manager().load_model('ProsusAI/finbert', 'sentiment')('BTC up')\n"
            "deferred = ['shutil', 'uuid', 'platform', '_hashlib', 'hashlib', 'json', 'bz2', 'lzma',\n"
            "            'smart_model_manager.loaders.device', 'smart_model_manager.store.hashing']\n"
            "print(sorted(m for m in deferred if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_pytest_plugin_imports_nothing_heavy():
    assert _loaded_after("import smart_model_manager.pytest_plugin") == []


def test_cli_help_imports_nothing_heavy():
    code = "from smart_model_manager.cli.main import main\nmain(['--help'])"
    assert _loaded_after(code) == []


def test_service_package_and_symbols_import_no_fastapi():
    assert _loaded_after("import smart_model_manager.service.symbols") == []
