"""The offline demo model: a small FinBERT-shaped sentiment model built from the package's own headlines."""

from .build import build_demo_model

__all__ = ["build_demo_model"]
