"""What the `smm` commands do: lock, pull/import, quickpull, migrate, validate, list/prune, signing. Internal:
see docs/design.md."""
