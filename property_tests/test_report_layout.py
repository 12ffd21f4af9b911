"""Report layout and wording: legend beside the data, heat from the tolerance, typeset formulas, CJK fonts,
readable audit settings and convention messages."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from reports import plots
from reports.heatmap import block_heatmaps
from reports.html import TEMPLATES
from reports.mathml import math_text, to_mathml
from reports.records import Record


def test_the_histogram_legend_sits_outside_the_data() -> None:
    errors = {name: plots.log10_relative(np.geomspace(1e-16, 1e-2, 200)) for name in ("a_long_oracle_name", "b", "c")}
    root = ET.fromstring(plots.histogram_svg(errors))
    (area,) = [e for e in root.iter() if e.get("class") == "plot-area"]
    (legend,) = [e for e in root.iter() if e.get("class") == "legend"]
    right_edge = float(area.attrib["x"]) + float(area.attrib["width"])
    texts = legend.findall("{*}text")
    assert [t.text for t in texts] == ["a_long_oracle_name (200)", "b (200)", "c (200)"]
    for text in texts:  # entirely to the right of the plotting area: starts past its edge, drawn rightwards
        assert float(text.attrib["x"]) > right_edge and text.attrib["text-anchor"] == "start", (text.attrib, right_edge)
    # and the picture is wide enough to show the longest entry
    width = float(root.attrib["viewBox"].split()[2])
    longest = max(float(t.attrib["x"]) + len(t.text or "") * 0.6 * float(t.attrib["font-size"]) for t in texts)
    assert width >= longest


def _record(abs_diff: dict[str, list[list[float]]], tolerance: float) -> Record:
    blocks = {name: {"tolerance": tolerance, "verdict": "fail"} for name in abs_diff}
    return Record("c", "", {}, "s", "o", "gradient", "fail", blocks=blocks, tolerance=tolerance)


def test_heatmaps_leave_differences_within_the_tolerance_white() -> None:
    heat = {"W1": [[1e-16, 3e-13], [0.0, 1e-3]]}
    text, maps = block_heatmaps(_record(heat, 1e-12), heat)
    fills = [part.split('"')[0] for part in str(maps[0]).split('fill="')[1:]]
    assert fills[0] == "#ffffff" and fills[1] == "#ffffff"  # rounding noise below the tolerance: no colour
    assert fills[2] == "#f4f6f8"  # exactly 0
    assert fills[3] not in ("#ffffff", "#f4f6f8")  # the real discrepancy is coloured
    assert "within the block's tolerance" in text


def test_the_page_font_stack_names_cjk_fonts_after_the_latin_ones() -> None:
    css = (TEMPLATES / "style.css").read_text(encoding="utf-8")
    body = css[css.index("body {") : css.index("}", css.index("body {"))]
    assert "Noto Sans CJK SC" in body and "Microsoft YaHei" in body and "PingFang SC" in body
    assert body.index("Arial") < body.index("Noto Sans CJK SC") < body.rindex("sans-serif")


@pytest.mark.parametrize(
    ("latex", "needles"),
    [
        (r"L = \frac{1}{2} \sum_{i=1}^{n} (y_i - \hat{y}_i)^2", ["<mfrac>", "<munderover>", "∑", 'accent="true"']),
        (r"\delta^{[l-1]} = (W^{[l]})^T \delta^{[l]} \odot g'^{[l-1]}(z^{[l-1]})", ["δ", "⊙", "′", "<msup>"]),
        (r"w = w - \eta \cdot \frac{\partial L}{\partial w}", ["η", "⋅", "∂", "−"]),
        (r"\unknown{x} } {", ["\\unknown"]),  # odd input: shown, never an exception
    ],
)
def test_latex_becomes_well_formed_mathml(latex: str, needles: list[str]) -> None:
    markup = str(to_mathml(latex, display=True))
    ET.fromstring(markup)
    assert markup.startswith('<math display="block">')
    for needle in needles:
        assert needle in markup


def test_text_around_formulas_is_escaped_and_dollars_are_gone() -> None:
    rendered = str(math_text("<b>例如</b>：$$a_1$$ and $x$"))
    assert "&lt;b&gt;例如&lt;/b&gt;" in rendered and "$" not in rendered
    assert rendered.count("<math") == 2


def test_audit_settings_read_as_comparisons() -> None:
    from reports.audit.core import setting, setting_label

    assert setting_label(setting(loss="bce", m=">1")) == "loss=bce, m>1"
    assert setting_label(setting(m="1")) == "m=1"


def test_a_convention_message_states_its_formula_once() -> None:
    from oracles.diagnosis import conventions

    for convention in conventions.CONVENTIONS.values():
        head = convention.formula.split("=", 1)[-1].strip()[:6]
        assert head not in convention.description, convention
