"""The command line's own contract: one categorised line and exit 2 for bad input, never a traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from reports.cli.app import EXIT_USAGE, main


@pytest.mark.parametrize(
    ("argv", "category", "fragment"),
    [
        (["frobnicate"], "usage", "invalid choice"),
        (["run", "--examples", "abc"], "usage", "invalid int value"),
        (["verify"], "usage", "MODULE:ATTR"),
        (["verify", "no_such_module_here:gradients"], "import", "cannot import"),
        (["replay", "garbage"], "input", "SEED-INDEX"),
    ],
)
def test_bad_input_is_one_categorised_line(
    argv: list[str], category: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"backprop-check: error[{category}]: ") and fragment in err[0]


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_USAGE
    assert "COMMAND" in capsys.readouterr().err


def test_a_closed_pipe_ends_quietly() -> None:
    """``backprop-check … | head -c 1``: no BrokenPipeError traceback, exit 128 + SIGPIPE like shell tools.

    A throwaway subcommand prints far more than a pipe buffer holds, so the write really fails.
    """
    code = (
        "import argparse, sys\n"
        "import reports.cli.app as cli\n"
        "original = cli.build_parser\n"
        "def build():\n"
        "    parser = original()\n"
        "    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))\n"
        "    spam = commands.add_parser('spam')\n"
        "    spam.set_defaults(func=lambda args: [print('x' * 100) for _ in range(100_000)] and 0)\n"
        "    return parser\n"
        "cli.build_parser = build\n"
        "sys.exit(cli.main(['spam']))\n"
    )
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    writer = subprocess.run(
        [sys.executable, "-c", code], stdout=reader.stdin, stderr=subprocess.PIPE, text=True, timeout=120
    )
    reader.stdin.close()
    reader.wait(timeout=30)
    assert "Traceback" not in writer.stderr, writer.stderr
    assert writer.returncode == 141, writer.stderr
