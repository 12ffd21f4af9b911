"""The audit's HTML view: ``audit.json`` as a self-contained table fragment, and as a standalone page."""

from __future__ import annotations

import html
import importlib
from collections.abc import Mapping
from typing import Any

from jinja2 import Environment

from reports.audit.core import AMBIGUOUS, CONDITIONS, HOLDS, VERDICTS, WRONG
from reports.mathml import math_text

_BADGE_CLASS = {HOLDS: "holds", CONDITIONS: "conditions", WRONG: "wrong", AMBIGUOUS: "ambiguous"}

_SECTION = """\
<section class="audit-section">
<style>
.audit-section table{border-collapse:collapse;width:100%;table-layout:fixed}
.audit-section col.key{width:7em}.audit-section col.statement{width:32%}.audit-section col.verdict{width:12.5em}
.audit-section td.verdict .badge{white-space:normal}
.audit-section th,.audit-section td{border:1px solid #ccc;padding:4px 6px;vertical-align:top;text-align:left}
.audit-section .badge{display:inline-block;padding:1px 6px;border-radius:8px;font-size:90%;white-space:nowrap}
.audit-section .holds{background:#d8f5d8}.audit-section .conditions{background:#fff1c2}
.audit-section .wrong{background:#f8cfcf}.audit-section .ambiguous{background:#dcdcf8}
.audit-section pre{white-space:pre-wrap;overflow-wrap:anywhere;margin:2px 0;font-size:90%}
.audit-section .quote{white-space:pre-wrap;margin:4px 0}
.audit-section math[display="block"]{margin:4px 0}
.audit-section .gloss{color:#555}
</style>
<p>{{ counts_line }} ({{ n_claims }} claims; {{ examples }} Hypothesis instances per setting and reading;
oracle values from torch autograd).</p>
<table>
<colgroup><col class="key"><col class="statement"><col class="verdict"><col class="evidence"></colgroup>
<thead><tr><th>§</th><th>statement</th><th>verdict</th><th>readings and evidence</th></tr></thead>
<tbody>
{% for c in claims %}
<tr id="audit-{{ loop.index }}">
<td>{{ c.key }}<br><small>{{ c.kind }}</small></td>
<td><b>{{ c.title }}</b>
{% if "$" in c.quote %}<div class="quote">{{ math(c.quote) }}</div>{% else %}<pre>{{ c.quote }}</pre>{% endif %}
<div class="gloss">{{ c.gloss }}</div></td>
<td class="verdict"><span class="badge {{ badge[c.verdict] }}">{{ c.verdict }}</span>
{% if c.condition %}<div><small>{{ c.condition }}</small></div>{% endif %}
<div><small>oracle: {{ c.oracle }}</small></div></td>
<td>
{% for r in c.readings %}
<div><span class="badge {{ badge[r.verdict] }}">{{ r.verdict }}</span>
{% if not r.literal %}<i>(intended meaning)</i>{% endif %} {{ r.name }}
{% if r.verdict == "holds under conditions" %}<small>— {{ r.condition }}</small>{% endif %}
<pre>{{ r.encoding }}</pre>
{% if r.symbolic %}<small>SymPy: {{ r.symbolic.statement }} — residual {{ r.symbolic.residual }}</small>{% endif %}
</div>
{% endfor %}
{% if c.note %}<div><small>{{ c.note }}</small></div>{% endif %}
{% if c.verdict != "holds" %}
<details><summary>counterexample{{ "s" if c.readings|length > 1 }} and correction</summary>
{% for r in c.readings if r.counterexample %}
<div><b>{{ r.name }}</b> — {{ "shrunk minimal" if r.counterexample.shrunk else "first" }} counterexample
({{ r.counterexample.setting }}{% if r.counterexample.label %}; {{ r.counterexample.label }}{% endif %}):
<pre>{{ show(r.counterexample) }}</pre>
{% if r.observations %}<small>per setting (first note):</small>
<pre>{{ r.observations[:12]|join("\n") }}{% if r.observations|length > 12 %}
… {{ r.observations|length - 12 }} more in audit.json{% endif %}</pre>{% endif %}</div>
{% endfor %}
{% if c.correction %}<div><b>Correction:</b> <pre>{{ c.correction }}</pre></div>{% endif %}
</details>
{% endif %}
</td></tr>
{% endfor %}
</tbody></table>
</section>
"""


def show_counterexample(example: Mapping[str, Any]) -> str:
    """A compact plain-text view of a counterexample (escaped by the template, never trusted)."""
    lines = [f"spec   {example['spec']}"]
    lines += [f"{name:<6} {value}" for name, value in example["params"].items()]
    lines += [f"X      {example['X']}", f"Y      {example['Y']}"]
    lines += [f"{name:<6} {value}" for name, value in example.get("extra", {}).items()]
    lines += [f"claimed {example['claimed']}", f"oracle  {example['oracle']}"]
    if example.get("note"):
        lines.append(f"note    {example['note']}")
    return "\n".join(lines)


_ENV = Environment(autoescape=True)
_ENV.globals["show"] = show_counterexample
_ENV.globals["math"] = math_text  # the article's $$…$$ as MathML: typeset by the browser, no script, no network
_TEMPLATE = _ENV.from_string(_SECTION)


def render_section(data: Mapping[str, Any]) -> str:
    """The audit table as a self-contained, escaped HTML fragment (styles scoped to ``.audit-section``)."""
    counts = data.get("counts", {})
    counts_line = ", ".join(f"{counts.get(v, 0)} {v}" for v in VERDICTS)
    return str(
        _TEMPLATE.render(
            claims=data.get("claims", []),
            counts_line=counts_line,
            n_claims=len(data.get("claims", [])),
            examples=data.get("examples_per_setting", "?"),
            badge=_BADGE_CLASS,
        )
    )


def render_page(data: Mapping[str, Any]) -> str:
    """A standalone page: the report's shared shell when ``reports.html.page`` exists, else a minimal one."""
    fragment = render_section(data)
    title = "Article audit"
    try:
        shell = getattr(importlib.import_module("reports.html"), "page", None)
    except ImportError:
        shell = None
    if callable(shell):
        return str(shell(title, f"<h1>{html.escape(title)}</h1>\n{fragment}"))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        f"<body><h1>{html.escape(title)}</h1>\n{fragment}\n</body></html>\n"
    )
