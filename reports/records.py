"""The JSONL view of :class:`~oracles.verdicts.records.Record`: an append-only, fsynced writer and a reader
tolerant of a torn last line (line formats, lean lines and corrupt lines: :mod:`reports.resultfile`).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from oracles.verdicts.records import CATEGORIES, SCHEMA_VERSION, VERDICTS, Record
from reports.resultfile import CorruptLine, CorruptLineError, case_lines, stream_lines
from reports.resultfile import read_records as read_result_lines

__all__ = [
    "CATEGORIES",
    "SCHEMA_VERSION",
    "VERDICTS",
    "CorruptLine",
    "CorruptLineError",
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

    def write_case(self, records: list[Record]) -> None:
        """One case's records in one write (plain passes in a lean line), flushed, synced as ``write`` is."""
        self._file.write("".join(line + "\n" for line in case_lines(records)))
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
    with path.open("rb+") as handle:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(end - 1)
        if handle.read(1) == b"\n":
            return
        # Walk back in chunks to the last newline: the file may be hundreds of megabytes.
        position = end
        while position > 0:
            start = max(0, position - 65536)
            handle.seek(start)
            cut = handle.read(position - start).rfind(b"\n")
            if cut >= 0:
                handle.truncate(start + cut + 1)
                return
            position = start
        handle.truncate(0)


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every non-blank line, streamed; a torn *last* line (a kill mid-write) is dropped."""
    for number, raw in stream_lines(path):
        yield number, raw.decode("utf-8", errors="replace")


def parse_line(path: str | Path, number: int, line: str) -> dict[str, Any]:
    """One JSONL line as a dict; a corrupt line before the last is an error naming its place."""
    try:
        data: dict[str, Any] = json.loads(line)
    except json.JSONDecodeError:
        raise ValueError(f"{path}:{number}: corrupt JSONL line") from None
    return data


def read_records(path: str | Path, corrupt: list[CorruptLine] | None = None) -> Iterator[Record]:
    """Yield records (a lean line yields each of its passes), streamed; a torn last line is skipped.

    A corrupt line before the last raises :class:`CorruptLineError` naming it, unless ``corrupt`` is
    given: then it is appended there and reading goes on.
    """
    return read_result_lines(path, corrupt)
