"""Views of the kill matrix (:mod:`property_tests.mutation.killmatrix`): a fixed-width table for the
terminal, an escaped HTML section for the campaign report, and a standalone page.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from property_tests.mutation.outcomes import KILLED, KINK, NOT_APPLICABLE, SURVIVED
from reports.html import page

_SYMBOL = {KILLED: "X", KINK: "k", SURVIVED: ".", NOT_APPLICABLE: "-"}


def figure_line(data: Mapping[str, Any]) -> str:
    s = data["summary"]
    percent = 100.0 * s["bug_killed"] / s["bug_total"] if s["bug_total"] else 100.0
    named = (
        f"; the diagnosis names {s['diagnosed_correctly']}/{s['diagnosed']}"
        if s.get("diagnosed")
        else "; diagnosis not run"
    )
    return (
        f"killed {s['bug_killed']}/{s['bug_total']} bug mutants ({percent:.1f} %); "
        f"{s['kink_classified']}/{s['kink_total']} kink mutants classified as kinks{named}"
    )


def render_text(data: Mapping[str, Any]) -> str:
    """The kill matrix as a fixed-width table, legend and figure last."""
    columns: list[str] = list(data["columns"])
    names = [m["name"] for m in data["mutants"]]
    width = max(len(n) for n in names) if names else 10
    header_rows = [" " * (width + 2) + " ".join(f"{i:>2}" for i in range(1, len(columns) + 1))]
    lines = [f"{i:>2} = {c}" for i, c in enumerate(columns, start=1)]
    body = []
    for m in data["mutants"]:
        cells = " ".join(f"{_SYMBOL[m['cells'][c]['state']]:>2}" for c in columns)
        smallest = m.get("smallest")
        arch = f"{smallest['spec']['widths']} m={smallest['batch']}" if smallest else "-"
        diag = m["diagnosis"].get("status", NOT_APPLICABLE)
        body.append(f"{m['name']:<{width}}  {cells}  {'ok ' if m['ok'] else 'BAD'} smallest={arch} diagnosis={diag}")
    legend = "X killed   k kink   . survived   - not applicable"
    return "\n".join([*lines, "", *header_rows, *body, "", legend, figure_line(data)])


_CSS = """
.bpc-mutation table{border-collapse:collapse;font-size:12px}
.bpc-mutation th,.bpc-mutation td{border:1px solid #ccc;padding:2px 5px;text-align:center}
.bpc-mutation td.name{text-align:left;white-space:nowrap}
.bpc-mutation .scroll{overflow-x:auto;max-width:100%}
.bpc-mutation td.desc{text-align:left;min-width:12em;max-width:22em}
.bpc-mutation td.arch{text-align:left;min-width:9em;max-width:14em}
.bpc-mutation th.col{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap}
.bpc-mutation .killed{background:#b7e1b1}.bpc-mutation .kink{background:#c9d7f2}
.bpc-mutation .survived{background:#fff;color:#555}.bpc-mutation .na{background:#eee;color:#888}
.bpc-mutation tr.notok td.name{background:#f4b6b6}
.bpc-mutation .bad{color:#a00;font-weight:bold}.bpc-mutation .figure{font-size:15px;font-weight:bold}
"""


def render_section(data: dict[str, Any]) -> str:
    """A self-contained, escaped HTML fragment (inline CSS scoped to ``.bpc-mutation``, no script)."""
    esc = html.escape
    columns: list[str] = [str(c) for c in data.get("columns", [])]
    head = "".join(f'<th class="col">{esc(c)}</th>' for c in columns)
    rows = []
    for m in data.get("mutants", []):
        cells = []
        for c in columns:
            cell = m["cells"].get(c, {"state": NOT_APPLICABLE})
            state = str(cell.get("state", NOT_APPLICABLE))
            css = "na" if state == NOT_APPLICABLE else esc(state)
            title = esc(f"{cell.get('case_id') or ''} {cell.get('detail') or ''}".strip(), quote=True)
            cells.append(f'<td class="{css}" title="{title}">{esc(state)}</td>')
        smallest = m.get("smallest")
        arch = (
            f"{esc(str(smallest['spec']['widths']))} {esc(' '.join(smallest['spec']['activations']))} "
            f"{esc(smallest['spec']['loss'])}, m={int(smallest['batch'])}"
            if smallest
            else "—"
        )
        diag = m.get("diagnosis", {})
        diag_text = esc(str(diag.get("status", NOT_APPLICABLE)))
        if diag.get("top") is not None:
            diag_text += f" ({esc(str(diag['top']))})"
        verdict = "ok" if m.get("ok") else '<span class="bad">NOT OK</span>'
        row_class = "ok" if m.get("ok") else "notok"
        rows.append(
            f'<tr class="{row_class}"><td class="name">{esc(m["name"])}</td>'
            f'<td class="desc">{esc(m["description"])}</td>'
            f"<td>{esc(m['kind'])}</td>{''.join(cells)}<td>{verdict}</td><td class='arch'>{arch}</td>"
            f"<td>{esc(m['expected'])}</td><td>{diag_text}</td></tr>"
        )
    coverage = data.get("coverage") or {}
    uncovered = coverage.get("uncovered") or []
    coverage_text = f"Term coverage over the {int(coverage.get('n_cases', 0))} cases: " + (
        f"uncovered: {esc(', '.join(uncovered))}" if uncovered else "every term exercised."
    )
    n_cases = len(data.get("cases", []))
    return (
        f'<section class="bpc-mutation"><style>{_CSS}</style>'
        f'<p class="figure">{esc(figure_line(data))}</p>'
        f"<p>{n_cases} cases (seed {int(data.get('seed', 0))}); each cell: killed / kink / survived / n/a "
        f"(hover for the case and the record).</p>"
        f'<div class="scroll"><table><thead>'
        f"<tr><th>mutant</th><th>bug</th><th>kind</th>{head}<th>verdict</th>"
        f"<th>smallest exposing architecture</th><th>expected diagnosis</th><th>diagnosis</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div><p>{coverage_text}</p></section>"
    )


def render_page(data: dict[str, Any]) -> str:
    """A standalone page around :func:`render_section`."""
    return page("Mutation kill matrix", render_section(data))
