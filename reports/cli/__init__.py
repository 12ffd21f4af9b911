"""The ``backprop-check`` command line: one module per subcommand, shared conventions in ``common``."""

from reports.cli.app import main

__all__ = ["main"]
