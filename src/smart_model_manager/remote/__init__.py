"""The remote a model is fetched from: its contracts (`base`: `Remote` for metadata, `Downloader` for bytes), the
Hub client (`hub`), and an in-memory fake beside them (`fake`). Internal: see docs/design.md."""
