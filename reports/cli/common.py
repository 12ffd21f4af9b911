"""What every subcommand shares: exit codes, the one-line categorised usage error, list options, output,
the stress options."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from reference_impl.stress import STRESS_SHARE, check_share

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


def add_stress_options(parser: Any) -> None:
    """``--stress SHARE`` and ``--strict``, the same for ``run`` and ``verify``."""
    parser.add_argument(
        "--stress",
        type=float,
        default=None,
        metavar="SHARE",
        help=f"share of stress cases: saturated layers, logits near ±1000, larger m (default {STRESS_SHARE}; 0: none)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="precision findings (right but less precise than float64 allows) fail"
    )


def stress_share(value: float | None) -> float:
    if value is None:
        return STRESS_SHARE
    try:
        return check_share(value)
    except ValueError as exc:
        raise UsageError(f"--stress: {exc}", "usage") from None


LIST_HELP = "A,B or A B"


def add_list_option(parser: argparse.ArgumentParser, flag: str, *, metavar: str, help: str) -> None:
    """A list option taking ``a,b``, ``a b`` or both (``a,b c``): one syntax for every command."""
    parser.add_argument(flag, nargs="+", default=None, metavar=metavar, help=f"{help} ({LIST_HELP})")


def listed(values: Sequence[str] | str | None) -> list[str] | None:
    """``["a,b", "c"]`` or ``"a,b"`` -> ``["a", "b", "c"]``; None stays None (the option was not given)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def joined(values: Sequence[str] | str | None) -> str | None:
    """A list option as one comma-separated string (what the older ``A,B`` parsers take)."""
    names = listed(values)
    return None if names is None else ",".join(names)


def quiet(args: Any) -> bool:
    return bool(getattr(args, "quiet", False))


def say(args: Any, line: str) -> None:
    """An informational line on stdout, suppressed by ``--quiet``; the final verdict line uses ``print``."""
    if not quiet(args):
        print(line, file=sys.stdout)
