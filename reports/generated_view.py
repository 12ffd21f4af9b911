"""Views of the generated-mutant measurement (:mod:`property_tests.mutation.generated`): the figures as
text for the terminal, an escaped HTML section for the campaign report, and a standalone page."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from reports.html import page

KILL_TARGET = 99.0  # % of non-equivalent mutants killed (held-out split)
PRECISION_TARGET = 98.0  # % of specific diagnoses that are right (held-out split)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def figure_line(summary: Mapping[str, Any], split: str) -> str:
    s = summary
    return (
        f"{split}: {s['non_equivalent']} non-equivalent mutants of {s['generated']} "
        f"({s['equivalent']} equivalent, {s['kink']} kink-only set aside); killed {s['killed']}/{s['non_equivalent']} "
        f"({_pct(s['kill_rate'])}); diagnosis precision {s['right']}/{s['specific']} ({_pct(s['precision'])}), "
        f"recall {s['right']}/{s['killed']} ({_pct(s['recall'])}); {s['unexplained']} unexplained, "
        f"{s['protocol']} protocol faults"
    )


def targets_met(data: Mapping[str, Any]) -> bool:
    held = data["summary"]["held_out"]
    kill = held["kill_rate"] if held["kill_rate"] is not None else 100.0
    precision = held["precision"] if held["precision"] is not None else 100.0
    return kill >= KILL_TARGET and precision >= PRECISION_TARGET


def _listed(records: Sequence[Mapping[str, Any]], status: str, verdict: str | None = None) -> list[Mapping[str, Any]]:
    return [r for r in records if r["status"] == status and (verdict is None or r.get("verdict") == verdict)]


def render_text(data: Mapping[str, Any]) -> str:
    """Per-split figures, the wrong diagnoses and the survivors; the held-out figure last."""
    lines = [
        f"bases tuned on: {', '.join(data['tune'])}; held out: {', '.join(data['held_out'])}",
        f"settings: {dict(data['settings'])}",
        "",
    ]
    records = data["mutants"]
    for label, status, verdict in (("wrong diagnosis", "killed", "wrong"), ("survived", "survived", None)):
        for record in _listed(records, status, verdict):
            head = f" -> {record.get('headline', '')[:160]}" if verdict else ""
            lines.append(f"{label}: {record['label']}{head}")
    summary = data["summary"]
    lines += ["", "by role (held out): " + _table(summary["held_out"]["by_role"])]
    lines += ["by operator (held out): " + _table(summary["held_out"]["by_operator"]), ""]
    lines += [figure_line(summary["tune"], "tuning split"), figure_line(summary["held_out"], "held-out split")]
    verdict_text = "targets met" if targets_met(data) else "targets NOT met"
    lines.append(f"{verdict_text} (held out: kill rate ≥ {KILL_TARGET:g} %, precision ≥ {PRECISION_TARGET:g} %)")
    return "\n".join(lines)


def _table(table: Mapping[str, Mapping[str, int]]) -> str:
    return "; ".join(
        f"{name} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) for name, counts in table.items()
    )


_CSS = """
.bpc-generated table{border-collapse:collapse;font-size:12px}
.bpc-generated th,.bpc-generated td{border:1px solid #ccc;padding:2px 6px;text-align:right}
.bpc-generated td.l{text-align:left}.bpc-generated .figure{font-size:15px;font-weight:bold}
.bpc-generated .wrong{background:#f4b6b6}.bpc-generated .survived{background:#fde2b0}
"""


def _summary_rows(summary: Mapping[str, Any]) -> str:
    esc = html.escape
    columns = (
        *("generated", "equivalent", "kink", "non_equivalent", "killed", "kill_rate", "specific", "right"),
        *("precision", "recall", "unexplained", "protocol"),
    )
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in columns)
    rows = []
    for split in ("held_out", "tune", "all"):
        cells = "".join(f"<td>{esc(str(summary[split][c]))}</td>" for c in columns)
        rows.append(f'<tr><td class="l">{esc(split.replace("_", "-"))}</td>{cells}</tr>')
    return f"<table><thead><tr><th>split</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_section(data: dict[str, Any]) -> str:
    """A self-contained, escaped HTML fragment (inline CSS scoped to ``.bpc-generated``, no script)."""
    esc = html.escape
    summary = data["summary"]
    notable = [r for r in data["mutants"] if r.get("verdict") == "wrong" or r["status"] == "survived"]
    rows = "".join(
        f'<tr class="{"wrong" if r.get("verdict") == "wrong" else "survived"}"><td class="l">{esc(r["label"])}</td>'
        f'<td class="l">{esc(r["status"])}</td><td class="l">{esc(str(r.get("headline", ""))[:300])}</td></tr>'
        for r in notable
    )
    notable_html = (
        f"<table><thead><tr><th>mutant</th><th>status</th><th>first line of the diagnosis</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if notable
        else "<p>No survivor and no wrong diagnosis.</p>"
    )
    return (
        f'<section class="bpc-generated"><style>{_CSS}</style>'
        f'<p class="figure">{esc(figure_line(summary["held_out"], "held-out split"))}</p>'
        f"<p>Mutants generated from correct implementations by AST operators; bases tuned on: "
        f"{esc(', '.join(data['tune']))}; held out: {esc(', '.join(data['held_out']))}. Equivalent mutants "
        f"(complex-step truth on every equivalence case) and kink-only ones are set aside.</p>"
        f"{_summary_rows(summary)}{notable_html}</section>"
    )


def render_page(data: dict[str, Any]) -> str:
    return page("Generated mutants", render_section(data))
