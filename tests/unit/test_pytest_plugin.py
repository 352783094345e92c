"""The plugin, tested with pytester: markers, fixtures, --smm-env, skip-with-reason for real models."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit
pytest_plugins = ["pytester"]


def test_markers_are_registered(pytester: pytest.Pytester):
    result = pytester.runpytest("--markers")
    for name in ("unit", "integration", "real_models", "ml_models", "slow"):
        result.stdout.fnmatch_lines([f"@pytest.mark.{name}:*"])


def test_model_manager_fixture_is_mock_by_default(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest, sys
        @pytest.mark.unit
        def test_it(model_manager):
            m = model_manager.load_model("ProsusAI/finbert", "sentiment")
            assert m.info.source == "mock" and m.labels == ("positive", "negative", "neutral")
            assert "torch" not in sys.modules
    """)
    # a subprocess: this process may already hold torch from other tests
    pytester.runpytest_subprocess("--strict-markers", "-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_smm_env_option_forces_the_environment(pytester: pytest.Pytester):
    pytester.makepyfile("""
        def test_it(model_manager):
            assert model_manager.environment == "production"
            assert model_manager.sources == ["volume"]
    """)
    pytester.runpytest("--smm-env", "production").assert_outcomes(passed=1)


def test_real_model_missing_is_skipped_with_how_to_fix(pytester: pytest.Pytester, tmp_path):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.real_models
        def test_real(real_model):
            real_model("ProsusAI/finbert")
            raise AssertionError("must not get here")
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*real model 'ProsusAI/finbert' is not available locally*", "*To fix:*smm pull*"])


def test_smm_cache_fixture_is_isolated(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import os
        def test_it(smm_cache):
            assert os.environ["MODEL_CACHE_DIR"] == str(smm_cache)
            assert list(smm_cache.iterdir()) == []
    """)
    pytester.runpytest().assert_outcomes(passed=1)


def test_unknown_marker_fails_under_strict_markers(pytester: pytest.Pytester):
    pytester.makepyfile("""
        import pytest
        @pytest.mark.unitt
        def test_it():
            pass
    """)
    result = pytester.runpytest("--strict-markers")
    assert result.ret != 0
