"""The `smm` command line. One module per command group; `main.py` maps names to modules lazily."""
