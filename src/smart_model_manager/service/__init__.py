"""The crypto-news sentiment service: FastAPI app, micro-batcher, symbol aggregation.

A consumer of the public API only (``get_model_manager().load_model(...)`` and the ``Model``
object), written as an outside user would. Importing this package imports no FastAPI: the app
lives in ``service.app`` (``create_app``), the plain functions ``detect_symbols`` and
``aggregate_symbols`` in ``service.symbols`` (used by ``smm analyze``).
"""
