"""``backprop-check``: one entry point, one subcommand module per concern.

Exit codes: 0 everything agrees (or the command ran), 1 problems found, 2 usage or input error.
Errors are one categorised line on stderr, never a traceback (``--debug`` shows it).  The global options
(``--debug``, ``--quiet``) are accepted before or after the subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from importlib import metadata

from oracles.subjects import SubjectLoadError
from reference_impl.spec import SpecError
from reports.cli.common import EXIT_USAGE, OneLineParser, UsageError

# Each module defines ``register(subparsers)``, adding its subcommands with ``func=handler``
# where ``handler(args) -> int``.
COMMAND_MODULES: tuple[str, ...] = (
    "reports.cli.run",
    "reports.cli.verify",
    "reports.cli.fixtures",
    "reports.cli.audit",
    "reports.cli.mutants",
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="backprop-check",
        description="Check backpropagation implementations against independent oracles.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version")
    _add_global_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    for command in _subcommand_parsers(parser):
        _add_global_options(command, top_level=False)
    return parser


def _version() -> str:
    try:
        return metadata.version("backprop-check")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


GLOBAL_OPTIONS = (
    ("--debug", "show tracebacks instead of one-line errors"),
    ("--quiet", "print only the final verdict line (no progress, no details); errors still go to stderr"),
)


def _add_global_options(parser: argparse.ArgumentParser, *, top_level: bool) -> None:
    """Global options on the main parser and again on each subcommand, so they may come after it.

    On a subcommand the default is SUPPRESS: an option not repeated there keeps the main parser's value.
    """
    for flag, text in GLOBAL_OPTIONS:
        if flag in parser._option_string_actions:
            continue
        parser.add_argument(flag, action="store_true", default=False if top_level else argparse.SUPPRESS, help=text)


def _subcommand_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """Every parser below ``parser`` (subcommands, and actions such as ``fixtures export``)."""
    found: list[argparse.ArgumentParser] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                found.append(child)
                found.extend(_subcommand_parsers(child))
    return found


def _fail(category: str, message: str) -> int:
    first_line = str(message).strip().splitlines()[0] if str(message).strip() else category
    print(f"backprop-check: error[{category}]: {first_line}", file=sys.stderr)
    return EXIT_USAGE


def _resume_hint(args: argparse.Namespace) -> str:
    """What to type next after Ctrl-C: a campaign continues where it stopped."""
    if getattr(args, "command", None) == "run":
        return f"every record written so far is kept; continue with: backprop-check run --out {args.out} --resume"
    return "nothing written so far is lost"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(args_list)
    except UsageError as exc:
        return _fail(exc.category, str(exc))
    except SystemExit as exc:  # --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except BrokenPipeError:
        # The reader went away (``| head``): stop quietly, the way shell tools do on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except KeyboardInterrupt:
        print(f"backprop-check: interrupted; {_resume_hint(args)}", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        if isinstance(exc, UsageError):
            return _fail(exc.category, str(exc))
        if isinstance(exc, SpecError):
            return _fail("input", str(exc))
        if isinstance(exc, SubjectLoadError):
            return _fail("import", str(exc))
        if isinstance(
            exc, (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
        ):
            return _fail("io", str(exc))
        return _fail("internal", f"{type(exc).__name__}: {exc} (rerun with --debug for the traceback)")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
