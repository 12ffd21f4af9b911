"""Resuming a campaign: which cases are complete on disk, with the results file cleaned of the rest.

A case is complete when all the records its lines announce (``extra["campaign"]["records"]``) are there.
Partial cases (a kill mid-case), corrupt lines and a torn tail are removed from the file; corrupt lines
are first appended, byte for byte, to ``QUARANTINE_FILE`` beside it, so nothing is thrown away, and the
cases they belonged to run again.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from reports.resultfile import CorruptLine, read_lines

QUARANTINE_FILE = "results.quarantine.jsonl"


@dataclass
class StoredCase:
    """What resuming needs to know of a case already on disk."""

    records: int
    failed: bool
    index: int | None = None  # extra["campaign"]["index"], when tagged
    checks: frozenset[tuple[str, str]] = frozenset()  # (oracle, check) pairs: for the coverage count
    imprecise: bool = False  # right, with a precision finding (oracles.verdicts.precision)


def completed_cases(results: Path) -> tuple[dict[str, StoredCase], list[CorruptLine]]:
    """Cases whose records are all on disk, and the corrupt lines found.

    Rewrites the file without any partially written case, corrupt line or torn tail; corrupt lines are
    appended, byte for byte, to ``QUARANTINE_FILE`` beside it first, so nothing is thrown away.  The
    cases they belonged to are then incomplete, and run again.  Streams: memory stays flat at any size.
    """
    if not results.exists():
        return {}, []
    corrupt: list[CorruptLine] = []
    counts: dict[str, int] = defaultdict(int)
    expected: dict[str, int | None] = {}
    failed: dict[str, bool] = defaultdict(bool)
    imprecise: dict[str, bool] = defaultdict(bool)
    index: dict[str, int | None] = {}
    checks: dict[str, set[tuple[str, str]]] = defaultdict(set)
    lines_of: dict[str, list[int]] = defaultdict(list)
    torn: list[int] = []
    drop: set[int] = set()
    for number, records in read_lines(results, corrupt, torn):
        if not records:
            drop.add(number)
            continue
        cid = records[0].case_id
        lines_of[cid].append(number)
        counts[cid] += len(records)
        failed[cid] = failed[cid] or any(r.failed for r in records)
        imprecise[cid] = imprecise[cid] or any(r.category == "precision" for r in records)
        checks[cid].update((r.oracle, r.check) for r in records)
        if cid not in expected:
            tag = records[0].extra.get("campaign", {})
            expected[cid] = tag.get("records") if isinstance(tag.get("records"), int) else None
            index[cid] = tag.get("index") if isinstance(tag.get("index"), int) else None
    complete = {
        cid: StoredCase(
            counts[cid], failed[cid], index[cid], frozenset(checks[cid]), imprecise[cid] and not failed[cid]
        )
        for cid in lines_of
        if expected[cid] in (None, counts[cid])
    }
    drop |= {number for cid, numbers in lines_of.items() if cid not in complete for number in numbers}
    drop |= {c.number for c in corrupt} | set(torn)
    if drop:
        if corrupt:
            with (results.parent / QUARANTINE_FILE).open("ab") as side:
                side.write(b"".join(c.raw + b"\n" for c in corrupt))
                side.flush()
                os.fsync(side.fileno())
        tmp = results.with_suffix(".jsonl.tmp")
        with results.open("rb") as source, tmp.open("wb") as handle:
            for number, raw in enumerate(source, start=1):
                if number not in drop and raw.strip():
                    handle.write(raw if raw.endswith(b"\n") else raw + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, results)
    return complete, corrupt
