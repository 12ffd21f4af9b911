"""Every fenced command and Python snippet of README.md, run as a newcomer would: in order, in a fresh copy.

The copy holds the project files (as a clone would) plus the README's placeholders made real:
``mypkg/mymod.py`` and ``mypkg/mymodule.py`` (the reference behind a user's module name) and
``my_backprop.py`` (a stand-in for "your program" answering the fixtures).  Commands run one by one in
README order with the copy as working directory, so later commands see what earlier ones wrote (``verify
--out results`` lands in the campaign's directory, as it would for a user).  Python snippets run in order
in one namespace (later snippets use names earlier ones defined); every ``test_*`` function a snippet
defines is then called, as pytest would.

To keep this honest and cheap, three explicit tables, each entry with its reason:

- ``NOT_RUN``: commands that cannot run inside the suite, replaced by ``true``.  Keep it tiny.
- ``CAPS``/``SMALLER``: sizes shrunk (``--examples 500`` -> 6); the command is otherwise the README's.
- ``PYTHON_PLACEHOLDERS``: the body a user writes (``...  # your backprop``) -> a call of the reference.

Every command must exit 0 with no ``error[`` line, unless its README comment says ``exit N`` (``# a
planted bug: exit 1``): the README states what each command's exit code is.

A block that only illustrates (not meant to be typed) is marked in the README on the line before its
fence with ``<!-- readme-test: skip: REASON -->``; :func:`test_the_skip_lists_stay_tiny_and_explained`
keeps both kinds few and each one matched.  To add a README command: just write it; if it needs a new
placeholder, add the module to ``PLACEHOLDER_FILES``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a clone holds, when git cannot list it (caches and results are never copied).
PROJECT_ENTRIES = (
    "README.md",
    "pyproject.toml",
    ".ci",
    "benchmarks",
    "oracles",
    "property_tests",
    "reference_impl",
    "reports",
)
MARKER = re.compile(r"<!--\s*readme-test:\s*skip:\s*(?P<reason>.+?)\s*-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
MAX_SKIPPED_BLOCKS = 2
MAX_NOT_RUN = 3

NOT_RUN: dict[str, str] = {
    "bash .ci/install": "installs packages over the network; the suite already runs in an installed environment",
    "python -m pytest": "the suite itself: running it from inside would recurse",
}
# Sizes capped: the commands, not their statistics, are tested here.
CAPS: dict[str, int] = {"--examples": 6, "--count": 3, "--cases": 20, "--shrink-examples": 20}
SMALLER: tuple[tuple[str, str, str], ...] = (
    (r"HYPOTHESIS_PROFILE=thorough", "HYPOTHESIS_PROFILE=ci", "2,500 examples per property take minutes"),
)
# Commands whose defaults are large, given small explicit sizes when the README leaves them out.
DEFAULT_SIZED: tuple[tuple[str, str, str], ...] = (
    ("backprop-check run ", "--examples", "--examples 6"),  # 500 cases by default
    ("backprop-check audit ", "--examples", "--examples 1"),  # 6 instances per setting and reading
    # the whole catalogue, 150 shrinking examples each: a bug and the kink mutant show the same output
    ("backprop-check mutants ", "--mutants", "--mutants transpose_W,relu_prime_at_zero_one --examples 2"),
)
PYTHON_PLACEHOLDERS: dict[str, str] = {
    "...  # your backprop": "from reference_impl import gradients as reference; return reference(spec, params, X, Y)",
}
PLACEHOLDER_FILES: dict[str, str] = {
    "mypkg/__init__.py": '"""A user\'s package (placeholder for the README)."""\n',
    "mypkg/mymod.py": '"""A user\'s module (placeholder): the reference under another name."""\n\n'
    "from reference_impl.mlp import gradients, loss\n\n"
    '__all__ = ["gradients", "loss"]\n',
    "mypkg/mymodule.py": '"""A user\'s module (placeholder): the reference under another name."""\n\n'
    "from reference_impl.mlp import gradients\n\n"
    '__all__ = ["gradients"]\n',
    "my_backprop.py": '"""Stands in for a program in another language answering the fixtures (placeholder)."""\n\n'
    "import json\n"
    "import sys\n"
    "from pathlib import Path\n\n"
    "import numpy as np\n\n"
    "from reference_impl.mlp import gradients\n\n"
    "fixtures, answers = Path(sys.argv[1]), Path(sys.argv[2])\n"
    "answers.mkdir(parents=True, exist_ok=True)\n"
    'for entry in json.loads((fixtures / "index.json").read_text())["cases"]:\n'
    '    with np.load(fixtures / entry["file"]) as data:\n'
    '        params = {name: data[name] for name in entry["parameters"]}\n'
    '        grads = gradients(entry["spec"], params, data["X"], data["Y"])\n'
    '    np.savez(answers / entry["file"], **{f"grad_{name}": value for name, value in grads.items()})\n',
}
PYTHON_EXAMPLES = 8  # Hypothesis examples per snippet test: the default deadline stays on, on purpose


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # README line of the opening fence
    code: str
    skip_reason: str | None


@dataclass(frozen=True)
class Command:
    line: int
    text: str  # as written in the README (continuations joined)
    run: str  # what is executed after the tables above


@dataclass(frozen=True)
class Outcome:
    command: Command
    returncode: int
    stdout: str
    stderr: str


def readme_blocks(text: str) -> list[Block]:
    """Fenced blocks with their language, first line and the skip marker just above them (if any)."""
    blocks: list[Block] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number])
        if opening is None:
            number += 1
            continue
        above = next((lines[k] for k in range(number - 1, -1, -1) if lines[k].strip()), "")
        marker = MARKER.search(above)
        end = next(k for k in range(number + 1, len(lines)) if lines[k].startswith("```"))
        code = "\n".join(lines[number + 1 : end]) + "\n"
        blocks.append(Block(opening["lang"], number + 1, code, marker["reason"] if marker else None))
        number = end + 1
    return blocks


def _capped(cap: int) -> Callable[[re.Match[str]], str]:
    return lambda found: f"{found[1]}{found[2]}{min(int(found[3]), cap)}"


def shrink(text: str) -> str:
    for flag, cap in CAPS.items():
        text = re.sub(rf"({flag})(=| +)(\d+)", _capped(cap), text)
    for pattern, replacement, _ in SMALLER:
        text = re.sub(pattern, replacement, text)
    for prefix, flag, added in DEFAULT_SIZED:
        code, sep, comment = text.partition(" #")
        if code.startswith(prefix) and flag not in code:
            text = f"{code.rstrip()} {added}" + (f"  #{comment}" if sep else "")
    for command, _ in NOT_RUN.items():
        text = re.sub(rf"(^|&& |; ){re.escape(command)}(?=\s*($|&&|;|#))", r"\1true", text)
    return text


def bash_commands(block: Block) -> list[Command]:
    """One command per logical line (``\\`` continuations joined); comment-only lines dropped."""
    commands: list[Command] = []
    pending, start = "", block.line
    for offset, raw in enumerate(block.code.splitlines(), start=1):
        if not pending:
            start = block.line + offset
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        logical = (pending + raw).strip()
        pending = ""
        if logical and not logical.startswith("#"):
            commands.append(Command(start, logical, shrink(logical)))
    return commands


def clone_files() -> list[str] | None:
    """What a fresh clone holds: tracked files plus new ones not ignored (None when git cannot say)."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [name for name in listed.stdout.decode().split("\0") if name]
    return names or None


def project_copy(target: Path) -> Path:
    """The project files (what a fresh clone holds), plus the placeholder modules, under ``target``."""
    names = clone_files()
    if names is not None:
        for name in names:
            source = ROOT / name
            if source.is_file():  # a tracked file deleted in the working tree is not in a clone either
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
    else:
        ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".mypy_cache", ".ruff_cache", "*.egg-info")
        for entry in PROJECT_ENTRIES:
            source = ROOT / entry
            if source.is_dir():
                shutil.copytree(source, target / entry, ignore=ignore)
            elif source.is_file():
                shutil.copy2(source, target / entry)
    for relative, content in PLACEHOLDER_FILES.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return target


def _environment(clone: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy's code, whatever is installed: a user runs the code they cloned.
    env["PYTHONPATH"] = str(clone)
    env.pop("HYPOTHESIS_PROFILE", None)
    env["COLUMNS"] = "120"
    return env


@pytest.fixture(scope="module")
def blocks() -> list[Block]:
    return readme_blocks(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return project_copy(tmp_path_factory.mktemp("readme-clone"))


@pytest.fixture(scope="module")
def command_outcomes(blocks: list[Block], clone: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    env = _environment(clone)
    for block in blocks:
        if block.lang not in ("bash", "sh", "shell") or block.skip_reason:
            continue
        for command in bash_commands(block):
            done = subprocess.run(
                ["bash", "-c", command.run], cwd=clone, env=env, capture_output=True, text=True, timeout=900
            )
            outcomes.append(Outcome(command, done.returncode, done.stdout, done.stderr))
    return outcomes


EXIT_COMMENT = re.compile(r"#.*\bexit (?P<code>\d+)\b")


def _expected_exit(command: Command) -> int:
    """0, unless the README's own comment on the command says ``# … exit N``."""
    said = EXIT_COMMENT.search(command.text)
    return int(said["code"]) if said is not None else 0


def test_the_readme_has_commands_and_snippets_to_run(blocks: list[Block]) -> None:
    langs = {b.lang for b in blocks}
    assert {"bash", "python"} <= langs, langs
    assert all(b.lang in ("bash", "python", "") for b in blocks), "a fence language this test does not run"
    unlabelled = [b.line for b in blocks if b.lang == "" and not b.skip_reason]
    assert not unlabelled, f"README fences without a language (bash/python) and without a skip marker: {unlabelled}"


def test_the_skip_lists_stay_tiny_and_explained(blocks: list[Block]) -> None:
    skipped = [b for b in blocks if b.skip_reason]
    assert len(skipped) <= MAX_SKIPPED_BLOCKS, [b.line for b in skipped]
    assert all(len(b.skip_reason or "") > 10 for b in skipped)
    assert len(NOT_RUN) <= MAX_NOT_RUN
    written = [c.text for b in blocks if b.lang == "bash" and not b.skip_reason for c in bash_commands(b)]
    for command in NOT_RUN:
        assert any(command in text for text in written), f"NOT_RUN lists {command!r}, which the README no longer has"
    for pattern, _, reason in SMALLER:
        assert reason and any(re.search(pattern, text) for text in written), f"SMALLER {pattern!r} matches nothing"
    python = "".join(b.code for b in blocks if b.lang == "python" and not b.skip_reason)
    for placeholder in PYTHON_PLACEHOLDERS:
        assert placeholder in python, f"PYTHON_PLACEHOLDERS has {placeholder!r}, which the README no longer has"


def test_a_readme_comment_can_state_the_expected_exit_code() -> None:
    assert _expected_exit(Command(1, "backprop-check verify m:g   # exit 1, unstable", "")) == 1
    assert _expected_exit(Command(1, "backprop-check verify m:g --examples 3   # exit 0", "")) == 0
    assert _expected_exit(Command(1, "backprop-check run --subject p:x  # a planted bug: exit 1", "")) == 1
    assert _expected_exit(Command(1, "backprop-check run --out exit", "")) == 0


def test_shrinking_and_not_run_rewrite_only_what_they_name() -> None:
    assert shrink("backprop-check run --examples 500 --seed 1 --out results") == (
        "backprop-check run --examples 6 --seed 1 --out results"
    )
    assert (
        shrink("backprop-check verify m:g --examples 3 --count=40")
        == "backprop-check verify m:g --examples 3 --count=3"
    )
    assert shrink("backprop-check run --subject m:g --out mine      # yours") == (
        "backprop-check run --subject m:g --out mine --examples 6  # yours"
    )
    assert shrink("bash .ci/install && backprop-check run --out r --examples 3") == (
        "true && backprop-check run --out r --examples 3"
    )
    assert shrink("python -m pytest     # comment") == "true     # comment"
    assert shrink("python -m pytest property_tests/test_mlp.py") == "python -m pytest property_tests/test_mlp.py"


@pytest.mark.slow
def test_every_readme_command_runs_in_order(command_outcomes: list[Outcome]) -> None:
    assert len(command_outcomes) >= 10
    problems = []
    for outcome in command_outcomes:
        expected = _expected_exit(outcome.command)
        error_line = "backprop-check: error[" in outcome.stderr or "Traceback" in outcome.stderr
        if outcome.returncode != expected or error_line:
            problems.append(
                f"README.md:{outcome.command.line}: {outcome.command.text}\n  ran: {outcome.command.run}\n"
                f"  exit {outcome.returncode} (expected {expected})\n"
                + textwrap.indent((outcome.stderr or outcome.stdout)[-2000:], "  | ")
            )
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_verify_beside_a_campaign_then_report_loses_nothing(command_outcomes: list[Outcome], clone: Path) -> None:
    """The README's order puts ``verify --out results`` into the campaign's directory: both stay readable."""
    from reports.records import read_records

    results = clone / "results"
    campaign_records = list(read_records(results / "results.jsonl"))
    verify_records = list(read_records(results / "verify.jsonl"))
    assert campaign_records and verify_records
    assert {r.subject for r in campaign_records} == {"reference"}
    assert {r.subject for r in verify_records} == {"mypkg.mymodule:gradients"}
    before = (results / "results.jsonl").read_bytes()
    done = subprocess.run(
        ["backprop-check", "report", "results"],
        cwd=clone,
        env=_environment(clone),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert (results / "results.jsonl").read_bytes() == before
    report = (results / "report.html").read_text(encoding="utf-8")
    page = (results / "verify.html").read_text(encoding="utf-8")
    assert 'id="verify"' in report and "verify.html" in report  # the campaign page points at the verify run
    assert "mypkg.mymodule:gradients" in page and 'id="diagnosis"' in page


RUNNER = """
import json
import sys
import traceback

from hypothesis import settings

# Fewer examples, but Hypothesis' own default deadline: a snippet that needs no deadline must say so.
# Derandomized: this checks that the README's snippets run as written; the properties themselves are
# searched at random by their own tests (a random draw here once found an oracle bug at an exact kink,
# which belongs to the oracle's tests, not to the README's).
settings.register_profile("readme", max_examples={examples}, derandomize=True)
settings.load_profile("readme")
namespace = {{"__name__": "readme_snippets"}}
for line, code in json.loads(open(sys.argv[1], encoding="utf-8").read()):
    before = set(namespace)
    try:
        exec(compile(code, f"README.md:{{line}}", "exec"), namespace)
        for name in sorted(set(namespace) - before):
            if name.startswith("test_") and callable(namespace[name]):
                namespace[name]()
    except BaseException:
        print(f"README.md:{{line}}: this snippet failed", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
print("ran", len(json.loads(open(sys.argv[1], encoding="utf-8").read())), "snippets")
"""


def python_snippets(blocks: list[Block]) -> Iterator[tuple[int, str]]:
    for block in blocks:
        if block.lang != "python" or block.skip_reason:
            continue
        code = block.code
        for placeholder, replacement in PYTHON_PLACEHOLDERS.items():
            code = code.replace(placeholder, replacement)
        yield block.line, code


@pytest.mark.slow
def test_every_readme_python_snippet_runs_in_order(blocks: list[Block], clone: Path, tmp_path: Path) -> None:
    snippets = list(python_snippets(blocks))
    assert len(snippets) >= 4
    listing = tmp_path / "snippets.json"
    listing.write_text(json.dumps(snippets), encoding="utf-8")
    runner = tmp_path / "run_snippets.py"
    runner.write_text(RUNNER.format(examples=PYTHON_EXAMPLES), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(runner), str(listing)],
        cwd=clone,
        env=_environment(clone),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"ran {len(snippets)} snippets" in done.stdout
