"""The self-contained HTML report: one file, no network, light at 100,000 cases.

The JSONL holds everything; the page embeds aggregates (summary, agreement matrix, histograms, error by
architecture feature), the worst ``MAX_ROWS`` failing records (worst first) and the ``CLOSEST_PASSES``
passing records closest to their tolerance, with per-layer detail (|Δ| heatmaps, every oracle's value
at the worst entry, the replay command) for the first ``DETAIL_ROWS`` rows.  Plots are static inline SVG;
sorting, filtering and expanding rows is a few lines of inline JavaScript.

Other features add sections: when ``DIR/audit.json`` (``reports.audit.view.render_section``) or
``DIR/mutants.json`` (``reports.mutation_view.render_section``) or ``DIR/generated.json``
(``reports.generated_view.render_section``) exist and their renderer imports, their HTML
fragment is included.  :func:`page` is the shared shell (CSS, layout) for standalone pages.
"""

from __future__ import annotations

import gc
import heapq
import importlib
import json
import math
import shlex
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from reports import plots
from reports.heatmap import block_heatmaps
from reports.records import Record
from reports.resultfile import (
    BadLine,
    LeanRow,
    is_lean,
    lean_record,
    parse_lean,
    parse_line,
    record_problem,
    stream_lines,
)

HeapEntry = tuple[float, int, Record, str | None]

TEMPLATES = Path(__file__).with_name("templates")
REPORT_FILE = "report.html"
MAX_ROWS = 500
CLOSEST_PASSES = 25
DETAIL_ROWS = 50
# (file in the campaign directory, module, section title): optional sections written by other features.
EXTRA_SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("audit.json", "reports.audit.view", "Article audit"),
    ("mutants.json", "reports.mutation_view", "Mutation kill matrix"),
    ("generated.json", "reports.generated_view", "Generated mutants"),
    ("verify.json", "reports.verify_view", "Verify"),
)

_ENV = Environment(
    loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(default=True, default_for_string=True)
)


def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def page(title: str, body_html: str, *, script: str = "") -> str:
    """A complete standalone page with the report's CSS around ``body_html`` (trusted, already-escaped HTML).

    ``script`` is optional trusted inline JavaScript.  The page loads nothing from anywhere.
    """
    return _ENV.get_template("page.html.j2").render(
        title=title, body=Markup(body_html), css=Markup(_asset("style.css")), script=Markup(script)
    )


# --- aggregation --------------------------------------------------------------------------------------


def ratio_of(record: Record) -> float:
    """How far outside (> 1) or inside (< 1) its tolerance a record's worst entry is; protocol failures: inf."""
    if record.abs_err is None:
        return math.inf if record.failed else 0.0
    if not record.tolerance:
        return math.inf if record.abs_err > 0 else 0.0
    return record.abs_err / record.tolerance


@dataclass
class ReportData:
    """Everything the page shows, accumulated in one pass over the records."""

    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # case id -> {"spec", "failed"}
    records: int = 0
    verdicts: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    log_errors: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    case_worst: dict[str, float] = field(default_factory=dict)  # case id -> max relative error
    case_oracle_failed: dict[str, dict[str, bool]] = field(default_factory=lambda: defaultdict(dict))
    failing_blocks: Counter[str] = field(default_factory=Counter)
    first_wrong: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    worst: Record | None = None
    failures: int = 0
    # min-heaps of (ratio, sequence, record, JSON line of a light record): the top MAX_ROWS failures and
    # CLOSEST_PASSES passes
    _failing: list[HeapEntry] = field(default_factory=list)
    _passing: list[HeapEntry] = field(default_factory=list)
    # case id -> δ first wrong (from "delta" records): small, only failing cases
    delta_first_wrong: dict[str, int] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)  # "path:line: corrupt line (why)", skipped

    def add(self, record: Record, line: str | None = None) -> None:
        """Count one record; ``line`` is its JSON when ``record`` is a light copy (no blocks, no case text)."""
        self.records += 1
        info = self.cases.setdefault(record.case_id, {"spec": record.spec, "failed": False})
        self.verdicts[(record.subject, record.oracle)][record.verdict] += 1
        if record.verdict == "skip":
            return
        rel = record.rel_err if record.rel_err is not None else (math.inf if record.failed else 0.0)
        self.log_errors[record.oracle].append(rel)
        self.case_worst[record.case_id] = max(self.case_worst.get(record.case_id, 0.0), rel)
        oracle_map = self.case_oracle_failed[record.case_id]
        oracle_map[record.oracle] = oracle_map.get(record.oracle, False) or record.failed
        if self.worst is None or rel > (self.worst.rel_err if self.worst.rel_err is not None else -1.0):
            self.worst = record
        ratio = ratio_of(record)
        entry = (ratio, self.records, record, line)
        if record.failed:
            self.failures += 1
            info["failed"] = True
            self.categories[record.category or "?"] += 1
            for name, block in record.blocks.items():
                if block.get("verdict") == "fail":
                    self.failing_blocks[name] += 1
            layer = record.extra.get("first_wrong_layer")
            if layer is not None:
                kind = "δ" if record.check == "delta" else "∂W/∂b"
                self.first_wrong[f"{kind} layer {layer}"] += 1
                if record.check == "delta":
                    self.delta_first_wrong[record.case_id] = int(layer)
            _push(self._failing, entry, MAX_ROWS)
        else:
            _push(self._passing, entry, CLOSEST_PASSES)

    def add_lean(self, line: dict[str, Any], rows: Sequence[LeanRow]) -> None:
        """Count a lean line's passes exactly as :meth:`add` would, building a Record only for the few kept.

        Written for speed (a 10^5-case report passes 7·10^5 rows through here): attribute lookups are
        hoisted, and a Record is made only for a row that becomes the worst or one of the closest passes.
        """
        cid, subject = line["case_id"], line["subject"]
        self.cases.setdefault(cid, {"spec": line["spec"], "failed": False})
        case_worst = self.case_worst.get(cid, 0.0)
        oracle_map = self.case_oracle_failed[cid]
        verdicts, log_errors, passing = self.verdicts, self.log_errors, self._passing
        worst_rel = -1.0 if self.worst is None or self.worst.rel_err is None else self.worst.rel_err
        sequence = self.records
        for row in rows:
            oracle, rel, absolute, tolerance = row[0], row[4], row[5], row[6]
            sequence += 1
            verdicts[(subject, oracle)]["pass"] += 1
            log_errors[oracle].append(rel)
            if rel > case_worst:
                case_worst = rel
            if oracle not in oracle_map:
                oracle_map[oracle] = False
            if self.worst is None or rel > worst_rel:
                self.worst, worst_rel = lean_record(line, row), rel
            ratio = absolute / tolerance if tolerance else (math.inf if absolute > 0 else 0.0)
            if len(passing) < CLOSEST_PASSES or ratio > passing[0][0]:
                _push(passing, (ratio, sequence, lean_record(line, row), None), CLOSEST_PASSES)
        self.records = sequence
        self.case_worst[cid] = case_worst

    def rows(self) -> list[Record]:
        ordered = sorted(self._failing, key=_worst_first) + sorted(self._passing, key=_worst_first)
        return [record if line is None else Record.from_dict(json.loads(line)) for _, _, record, line in ordered]

    @property
    def failed_cases(self) -> int:
        return sum(1 for info in self.cases.values() if info["failed"])


def _worst_first(entry: HeapEntry) -> tuple[float, int]:
    return (-entry[0], entry[1])


def _push(heap: list[HeapEntry], entry: HeapEntry, limit: int) -> None:
    if len(heap) < limit:
        heapq.heappush(heap, entry)
    elif entry[0] > heap[0][0]:
        heapq.heapreplace(heap, entry)


def aggregate(records: Iterable[Record]) -> ReportData:
    data = ReportData()
    for record in records:
        data.add(record)
    return data


# Records are written with sorted keys, so ``"abs_err"`` comes first, then the bulky ``"blocks"`` and
# ``"case"``, then ``"case_id"`` and everything the aggregates need.  A passing record is read from
# ``"case_id"`` on (and its abs_err from the head): about a third of the JSON, three times faster, which is
# what keeps a 100,000-record report within seconds.  Failing records, and any line not laid out this way,
# are parsed in full.
_FLOAT_FIELDS = ("subject_value", "oracle_value", "rel_err", "tolerance")
_HEAD = '{"abs_err": '
_BLOCKS_KEY = ', "blocks": '
_CASE_ID_KEY = ', "case_id": '


def _light_record(line: str) -> Record | None:
    """A passing record without ``blocks`` and ``case``, or None when the line must be parsed in full."""
    head_end = line.find(_BLOCKS_KEY)
    tail_start = line.find(_CASE_ID_KEY)
    if not line.startswith(_HEAD) or head_end < 0 or tail_start < head_end:
        return None
    try:
        tail = json.loads("{" + line[tail_start + 2 :])
    except json.JSONDecodeError:
        return None
    if tail.get("verdict") == "fail" or "subject" not in tail:
        return None
    head = line[len(_HEAD) : head_end]
    try:
        tail["abs_err"] = None if head == "null" else float(head.strip('"'))  # a number, null or "inf"
    except ValueError:
        return None
    tail["case"] = ""
    tail.pop("schema", None)
    if record_problem(tail) is not None:
        return None  # parsed in full, and reported as corrupt there
    for key in _FLOAT_FIELDS:
        if isinstance(tail.get(key), str):  # inf/nan travel as strings
            tail[key] = float(tail[key])
    try:
        return Record(**tail)  # what to_json wrote, so the keys are the fields: skip from_dict's filtering
    except TypeError:  # a field this version does not know (a newer writer): filter the slow way
        return Record.from_dict(tail)


def aggregate_file(path: Path) -> ReportData:
    """Aggregate DIR/results.jsonl, streamed; a torn last line is skipped, a corrupt one listed in ``corrupt``."""
    data = ReportData()
    # Nothing built here is cyclic, and the collector's passes over hundreds of thousands of live objects
    # cost a third of the time at 10^5 cases.
    collecting = gc.isenabled()
    gc.disable()
    try:
        _aggregate_lines(path, data)
    finally:
        if collecting:
            gc.enable()
    return data


def _aggregate_lines(path: Path, data: ReportData) -> None:
    for number, raw in stream_lines(path):
        if is_lean(raw):
            try:
                line_data, rows = parse_lean(number, raw)
            except BadLine as exc:
                data.corrupt.append(exc.corrupt.describe(path))
                continue
            data.add_lean(line_data, rows)
            continue
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            line = ""
        light = _light_record(line) if line else None
        if light is not None:
            data.add(light, line)
            continue
        try:
            records = parse_line(number, raw)
        except BadLine as exc:
            data.corrupt.append(exc.corrupt.describe(path))
            continue
        for record in records:
            data.add(record)


# --- views --------------------------------------------------------------------------------------------


def agreement_matrix(data: ReportData) -> tuple[list[str], list[list[dict[str, Any]]]]:
    """For each pair of oracles: over cases both checked, the share where they reached the same verdict.

    The diagonal is each oracle's pass rate against the subject.  Two independent oracles that disagree
    about the same subject point at an oracle (or tolerance) problem rather than at the subject.
    """
    oracles = sorted({o for per_case in data.case_oracle_failed.values() for o in per_case})
    index = {o: i for i, o in enumerate(oracles)}
    n = len(oracles)
    same = np.zeros((n, n), dtype=np.int64)
    both = np.zeros((n, n), dtype=np.int64)
    passes = np.zeros(n, dtype=np.int64)
    # Cases fall into few patterns (which oracles checked them, which failed): count each pattern once.
    patterns = Counter(tuple(sorted(per_case.items())) for per_case in data.case_oracle_failed.values())
    for pattern, weight in patterns.items():
        items = [(index[o], failed) for o, failed in pattern]
        for i, failed_i in items:
            passes[i] += weight * (not failed_i)
            for j, failed_j in items:
                both[i, j] += weight
                same[i, j] += weight * (failed_i == failed_j)
    matrix: list[list[dict[str, Any]]] = []
    for i in range(n):
        row: list[dict[str, Any]] = []
        for j in range(n):
            if both[i, j] == 0:
                row.append({"text": "–", "share": None, "title": "no case checked by both"})
                continue
            share = (passes[i] / both[i, i]) if i == j else same[i, j] / both[i, j]
            label = "pass rate" if i == j else "same verdict"
            row.append(
                {
                    "text": f"{share:.1%}",
                    "share": float(share),
                    "title": f"{label}: {passes[i] if i == j else same[i, j]} of {both[i, j]} cases",
                }
            )
        matrix.append(row)
    return oracles, matrix


def _feature_groups(data: ReportData) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, dict[str, int]]]:
    raw: dict[str, dict[str, list[float]]] = {f: defaultdict(list) for f in ("depth", "width", "activation", "loss")}
    fails: dict[str, Counter[str]] = {f: Counter() for f in raw}
    ids = [cid for cid in data.cases if cid in data.case_worst]
    logged = plots.log10_relative([data.case_worst[cid] for cid in ids]).tolist()
    # Many cases share a (depth, width, activations, loss) summary: work out each one's groups once.
    groups_of: dict[tuple[Any, ...], list[tuple[str, str]]] = {}
    for cid, value in zip(ids, logged, strict=True):
        info = data.cases[cid]
        spec = info["spec"]
        summary = (len(spec["activations"]), max(spec["widths"]), frozenset(spec["activations"]), spec["loss"])
        labelled = groups_of.get(summary)
        if labelled is None:
            labelled = [("depth", str(summary[0])), ("width", str(summary[1]))]
            labelled += [("activation", name) for name in sorted(summary[2])] + [("loss", summary[3])]
            groups_of[summary] = labelled
        for feature, label in labelled:
            raw[feature][label].append(value)
            fails[feature][label] += info["failed"]
    ordered: dict[str, dict[str, np.ndarray]] = {}
    for feature, groups in raw.items():
        labels = sorted(groups, key=lambda s: (len(s), s)) if feature in ("depth", "width") else sorted(groups)
        ordered[feature] = {label: np.asarray(groups[label]) for label in labels}
    return ordered, {f: dict(c) for f, c in fails.items()}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"
    return str(value)


def _exact(value: Any) -> str:
    """Values a reader compares digit by digit: every digit of the float (repr round-trips)."""
    return repr(float(value)) if isinstance(value, (int, float)) else _fmt(value)


def _replay_command(record: Record, campaign: dict[str, Any] | None) -> str:
    """A command that runs as shown: ``replay_options`` (a verify page's ``--subject … --out …``) when given."""
    options = (campaign or {}).get("replay_options")
    if options is not None:
        return f"backprop-check replay {shlex.quote(record.case_id)}{options}"
    subject_target = (campaign or {}).get("config", {}).get("subject")
    command = f"backprop-check replay {record.case_id}"
    if subject_target and subject_target != "reference":
        command += f" --subject {shlex.quote(subject_target)}"
    return command


def _row(record: Record, position: int, data: ReportData, campaign: dict[str, Any] | None) -> dict[str, Any]:
    spec = record.spec
    ratio = ratio_of(record)
    where = record.parameter or "–"
    if record.index:
        where += "[" + ",".join(str(i) for i in record.index) + "]"
    row: dict[str, Any] = {
        "case_id": record.case_id,
        "subject": record.subject,
        "oracle": record.oracle,
        "check": record.check,
        "verdict": record.verdict,
        "category": record.category or "",
        "where": where,
        "layer": record.layer if record.layer is not None else "",
        "rel_err": record.rel_err if record.rel_err is not None else math.inf,
        "rel_text": _fmt(record.rel_err),
        "abs_text": _fmt(record.abs_err),
        "tol_text": _fmt(record.tolerance),
        "ratio": ratio,
        "ratio_text": _fmt(ratio),
        "depth": len(spec.get("activations", [])),
        "widths": "-".join(str(w) for w in spec.get("widths", [])),
        "activations": ", ".join(spec.get("activations", [])),
        "loss": spec.get("loss", ""),
        "summary": record.summary(),
        "message": record.message,
        "case_repr": record.case,
        "replay": _replay_command(record, campaign),
        "detailed": position < DETAIL_ROWS,
        "first_wrong": record.extra.get("first_wrong_layer"),
        "delta_first_wrong": data.delta_first_wrong.get(record.case_id),
        "blocks": [
            {
                "name": name,
                "verdict": block.get("verdict", ""),
                "index": ",".join(str(i) for i in block.get("index", [])),
                "subject": _exact(block.get("subject")),
                "oracle": _exact(block.get("oracle")),
                "rel_err": _fmt(block.get("rel_err")),
                "ratio": _fmt(block.get("ratio")),
                "tolerance": _fmt(block.get("tolerance")),
                "estimate": _fmt(block.get("estimate")),
            }
            for name, block in record.blocks.items()
            # rows past the detailed ones list only their failing blocks: the report stays small
            if position < DETAIL_ROWS or block.get("verdict") == "fail"
        ],
        "entry_values": None,
        "heatmaps": [],
    }
    entry = record.extra.get("entry_values")
    if isinstance(entry, dict):
        row["entry_values"] = {
            "entry": entry.get("entry", ""),
            "subject": _exact(entry.get("subject")),
            "oracles": [(name, _exact(v)) for name, v in sorted((entry.get("oracles") or {}).items())],
        }
    heat = record.extra.get("abs_diff")
    if row["detailed"] and isinstance(heat, dict) and heat:
        try:
            row["heat_range"], row["heatmaps"] = block_heatmaps(record, heat)
        except (TypeError, ValueError):  # a damaged heatmap costs the picture, not the report
            row["heatmaps"] = []
    return row


def _extra_sections(directory: Path | None) -> list[dict[str, Any]]:
    """Sections other features contribute, when their data file and renderer both exist."""
    sections: list[dict[str, Any]] = []
    if directory is None:
        return sections
    for filename, module_name, title in EXTRA_SECTIONS:
        path = directory / filename
        if not path.exists():
            continue
        anchor = filename.split(".")[0]
        try:
            render = importlib.import_module(module_name).render_section
        except (ImportError, AttributeError):
            sections.append(
                {"id": anchor, "title": title, "html": None, "note": f"{filename} found, renderer not installed"}
            )
            continue
        try:
            fragment = render(json.loads(path.read_text(encoding="utf-8")))
            sections.append({"id": anchor, "title": title, "html": Markup(fragment), "note": None})
        except Exception as exc:  # one broken section must not cost the reader the rest of the report
            sections.append({"id": anchor, "title": title, "html": None, "note": f"could not render {filename}: {exc}"})
    return sections


def render_report(
    records: Iterable[Record] | ReportData,
    campaign: dict[str, Any] | None = None,
    directory: Path | None = None,
    *,
    lead: str | None = None,
    records_file: str = "results.jsonl",
    sections: bool = True,
) -> str:
    """The report page as a string; ``campaign`` is DIR/campaign.json (seed, config, versions), if any.

    ``lead`` (trusted HTML) is a section shown first, before the summary (the verify page's diagnosis);
    ``sections=False`` leaves out the other features' sections (a verify page is about one subject).
    """
    start = time.perf_counter()
    data = records if isinstance(records, ReportData) else aggregate(records)
    if campaign is None or "versions" not in campaign:
        from reports.campaign import environment_versions

        campaign = {**(campaign or {}), "versions": environment_versions()}
    oracles, matrix = agreement_matrix(data)
    log_errors = {name: plots.log10_relative(values) for name, values in data.log_errors.items()}
    features, feature_fails = _feature_groups(data)
    rows = [_row(r, i, data, campaign) for i, r in enumerate(data.rows())]
    config = campaign.get("config", {})
    by_pair = [
        {
            "subject": subject,
            "oracle": oracle,
            "pass": counts["pass"],
            "fail": counts["fail"],
            "kink": counts["kink"],
            "skip": counts["skip"],
        }
        for (subject, oracle), counts in sorted(data.verdicts.items())
    ]
    subject_name = (campaign.get("config") or {}).get("subject") or ", ".join(sorted({s for s, _ in data.verdicts}))
    html = _ENV.get_template("report.html.j2").render(
        title=f"backprop-check: {subject_name} ({data.failed_cases} of {len(data.cases)} cases disagree)",
        css=Markup(_asset("style.css")),
        script=Markup(_asset("report.js")),
        data=data,
        campaign=campaign,
        config=config,
        versions=campaign.get("versions", {}),
        by_pair=by_pair,
        worst=data.worst,
        worst_where=_row(data.worst, DETAIL_ROWS, data, campaign)["where"] if data.worst else "",
        fmt=_fmt,
        oracles=oracles,
        matrix=matrix,
        histogram=Markup(plots.histogram_svg(log_errors)) if log_errors else None,
        features=Markup(plots.error_by_feature_svg(features, feature_fails)) if data.case_worst else None,
        rows=rows,
        shown_failures=sum(1 for r in rows if r["verdict"] == "fail"),
        max_rows=MAX_ROWS,
        detail_rows=DETAIL_ROWS,
        oracle_names=sorted({r["oracle"] for r in rows}),
        failing_blocks=data.failing_blocks.most_common(12),
        first_wrong=data.first_wrong.most_common(8),
        categories=data.categories.most_common(),
        extra_sections=_extra_sections(directory) if sections else [],
        lead=Markup(lead) if lead else None,
        records_file=records_file,
        render_seconds=lambda: time.perf_counter() - start,
    )
    return html


def write_report(
    directory: str | Path, destination: str | Path | None = None, *, corrupt: list[str] | None = None
) -> Path:
    """Render DIR/report.html from DIR/results.jsonl (and DIR/campaign.json when present).

    Corrupt lines are skipped and flagged at the top of the page; their descriptions are appended to
    ``corrupt`` when given.
    """
    from reports.campaign import RESULTS_FILE, read_campaign

    directory = Path(directory)
    campaign = read_campaign(directory)
    data = aggregate_file(directory / RESULTS_FILE)
    if corrupt is not None:
        corrupt.extend(data.corrupt)
    html = render_report(data, campaign, directory)
    target = Path(destination) if destination else directory / REPORT_FILE
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(target)
    return target
