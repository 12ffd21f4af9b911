"""What every subcommand shares: exit codes and the one-line, categorised usage error."""

from __future__ import annotations

import argparse
from typing import NoReturn

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad flags or input; ``category`` says which kind (usage, input, import, io)."""

    def __init__(self, message: str, category: str = "usage") -> None:
        super().__init__(message)
        self.category = category


def positive_seconds(text: str) -> float:
    """argparse type for ``--timeout S``: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


class OneLineParser(argparse.ArgumentParser):
    """argparse prints the whole usage block before its error; we want the one categorised line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")
