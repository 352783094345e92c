"""sentiment-analyzer: the crypto-news sentiment service under the name deployments know.

The same file runs unchanged in tests (mock model), dev (local HF cache), CI (download on demand)
and K3s (read-only verified volume): ``get_model_manager()`` picks the source from the environment.

    uvicorn services.enhanced_sentiment_ml_analysis:app --host 0.0.0.0 --port 8000
    python services/enhanced_sentiment_ml_analysis.py --host 0.0.0.0 --port 8000   # = smm serve sentiment

Configuration: SMM_SERVICE_* (see docs/service.md) and the usual SMM_ENV / SMM_VOLUME_DIR.
The original ran a crypto and a stock pipeline and routed articles by keywords; the same here is
SMM_SERVICE_MODELS=crypto=kk08/CryptoBERT,stock=finbert (routed per item by the original's keyword
rule, crypto when tied; docs/migrating.md).
"""

from __future__ import annotations

from smart_model_manager.service.app import create_app

# Building the app reads SMM_SERVICE_* and starts nothing: the model loads at server startup.
app = create_app()

__all__ = ["app", "create_app"]


if __name__ == "__main__":
    from smart_model_manager.cli.serve import sentiment

    sentiment.main(prog_name="enhanced_sentiment_ml_analysis")
