"""The JSONL view of :class:`~oracles.verdicts.records.Record`: an append-only, fsynced writer and a reader
tolerant of a torn last line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from oracles.verdicts.records import CATEGORIES, SCHEMA_VERSION, VERDICTS, Record

__all__ = [
    "CATEGORIES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "Record",
    "RecordWriter",
    "jsonl_lines",
    "parse_line",
    "read_records",
]


class RecordWriter:
    """Append-only JSONL writer that flushes every write, so a killed process (even ``kill -9``) loses nothing.

    ``sync_seconds`` bounds what a power cut or an OS crash may lose: an fsync follows a write whenever
    that long has passed since the last one (0: after every write), and closing always syncs.  An fsync
    costs milliseconds on a real disk (~4-9 ms measured here), more than checking a small case, so a
    campaign syncs once a second rather than once per case; a resumed campaign redoes what was lost.
    """

    def __init__(self, path: str | Path, sync_seconds: float = 0.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _repair_truncated_tail(self.path)
        self._file: IO[str] = self.path.open("a", encoding="utf-8")
        self.sync_seconds = sync_seconds
        self._last_sync = time.monotonic()

    def _flush(self) -> None:
        self._file.flush()
        now = time.monotonic()
        if now - self._last_sync >= self.sync_seconds:
            os.fsync(self._file.fileno())
            self._last_sync = now

    def write(self, record: Record) -> None:
        self._file.write(record.to_json() + "\n")
        self._flush()

    def write_all(self, records: Iterable[Record]) -> None:
        """Several records (a campaign's case) in one write: resume treats a case as a whole anyway."""
        self._file.write("".join(record.to_json() + "\n" for record in records))
        self._flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _repair_truncated_tail(path: Path) -> None:
    """Drop a half-written last line (a kill mid-write) so appends start on a clean line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    cut = data.rfind(b"\n")
    path.write_bytes(data[: cut + 1] if cut >= 0 else b"")


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every non-blank line; a torn *last* line (a kill mid-write) is dropped."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    last = max((n for n, line in enumerate(lines, start=1) if line.strip()), default=0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if number == last:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                return
        yield number, line


# Fields without a default in Record: a line lacking one is not a record (some other JSON file).
REQUIRED_FIELDS = ("case_id", "case", "spec", "subject", "oracle", "check", "verdict")


def parse_line(path: str | Path, number: int, line: str) -> dict[str, Any]:
    """One JSONL line as a record dict; a corrupt line, or JSON that is not a record, is an error naming its place."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"{path}:{number}: corrupt JSONL line") from None
    if not isinstance(data, dict) or any(key not in data for key in REQUIRED_FIELDS):
        raise ValueError(f"{path}:{number}: not a backprop-check record ({type(data).__name__} without its fields)")
    return data


def read_records(path: str | Path) -> Iterator[Record]:
    """Yield records; a truncated or corrupt *last* line is skipped, a corrupt earlier line is an error."""
    for number, line in jsonl_lines(path):
        yield Record.from_dict(parse_line(path, number, line))
