"""The discrepancy record: the one data type every verdict is.

One :class:`Record` per (case, subject, oracle, check).  Test messages, JSONL lines and the HTML report
are all views of it; nothing downstream recomputes a verdict.  It lives here, below everything that
makes one (the comparer, kinks, triangulation, the Taylor test), so that no layer imports upward.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any

VERDICTS = ("pass", "fail", "kink", "skip")
CATEGORIES = (
    "mismatch",
    "shape",
    "missing",
    "nonfinite",
    "unstable",
    "precision",
    "exception",
    "kink",
    "timeout",
    "crash",
    "loss",
    "mutation",
    "nondeterminism",
    "dtype",
    "convention",
    "import",
)
SCHEMA_VERSION = 1


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no inf/nan; keep them readable rather than dropping them
    return value


@dataclass
class Record:
    """What one comparison found.

    ``parameter`` names the worst block (``"W2"``, ``"b1"``, ``"delta3"`` or ``"loss"``) and ``index`` the
    worst entry in it; ``blocks`` summarises every block compared (name -> worst entry and errors), so
    the report can say which layer went wrong first.
    """

    case_id: str
    case: str  # repr of the Case: pasteable Python
    spec: dict[str, Any]
    subject: str
    oracle: str
    check: str  # "gradient", "delta", "loss", "projection", "protocol", ...
    verdict: str  # one of VERDICTS
    category: str | None = None  # one of CATEGORIES when verdict != "pass", or "precision" on a pass
    parameter: str | None = None
    index: list[int] | None = None
    subject_value: float | None = None
    oracle_value: float | None = None
    abs_err: float | None = None
    rel_err: float | None = None
    tolerance: float | None = None
    layer: int | None = None
    message: str = ""
    elapsed: float = 0.0
    blocks: dict[str, dict[str, Any]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.verdict == "fail"

    def to_json(self) -> str:
        # A shallow dict: json.dumps walks the nested blocks itself, and ``asdict``'s deep copy of them
        # cost a campaign's writer more than checking the case (~1 ms per record).
        data = {name: _finite_or_none(getattr(self, name)) for name in _field_order(type(self))}
        data["schema"] = SCHEMA_VERSION
        return json.dumps(data, sort_keys=True, default=_json_default)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        known = _field_names(cls)
        values = {k: v for k, v in data.items() if k in known}
        for key in ("subject_value", "oracle_value", "abs_err", "rel_err", "tolerance"):
            if isinstance(values.get(key), str):
                values[key] = float(values[key])
        return cls(**values)

    def summary(self) -> str:
        """One line: what disagreed with what, where, by how much."""
        where = self.parameter or "-"
        if self.index is not None:
            where += "[" + ",".join(str(i) for i in self.index) + "]"
        head = f"{self.verdict.upper()} {self.subject} vs {self.oracle} ({self.check})"
        if self.category:
            head += f" [{self.category}]"
        if self.abs_err is not None:
            # A lean record (a plain pass read back from a campaign file) keeps its errors, not its values.
            values = f" subject={self.subject_value!r} oracle={self.oracle_value!r}"
            if self.subject_value is None:
                values = ""
            head += (
                f" at {where}:{values}"
                f" abs_err={self.abs_err:.3g} rel_err={(self.rel_err or 0.0):.3g} tol={(self.tolerance or 0.0):.3g}"
            )
        elif self.parameter:
            head += f" at {where}"
        if self.message:
            head += f": {self.message}"
        return head

    def explain(self) -> str:
        """A multi-line message for test failures: the summary, the case to paste, the replay hint."""
        lines = [self.summary(), f"  case id: {self.case_id}", f"  spec: {self.spec}", f"  reproduce: {self.case}"]
        failing = [name for name, block in self.blocks.items() if block.get("verdict") == "fail"]
        if failing:
            lines.append(f"  failing blocks: {', '.join(failing)}")
        return "\n".join(lines)


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    # dataclasses.fields() rebuilds its tuple on every call; reading 100,000 records calls this 100,000 times.
    if cls not in _FIELD_NAMES:
        _FIELD_NAMES[cls] = frozenset(f.name for f in fields(cls))
    return _FIELD_NAMES[cls]


def _field_order(cls: type) -> tuple[str, ...]:
    if cls not in _FIELD_ORDER:
        _FIELD_ORDER[cls] = tuple(f.name for f in fields(cls))
    return _FIELD_ORDER[cls]


_FIELD_ORDER: dict[type, tuple[str, ...]] = {}


def _json_default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)  # what the deep copy used to do for a dataclass nested in blocks or extra
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
