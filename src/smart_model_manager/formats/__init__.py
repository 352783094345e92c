"""Our files: `models.yaml` (`spec`), `models.lock` (`lockfile`), `model-metadata.yaml` (`manifest`), the pins
check between a lock and a manifest (`pins`), field rules, YAML with line numbers, the `id2label` parser.
Internal: see docs/design.md."""
