"""The report's hand-written SVG plots draw what the data says: step heights, quartile boxes, failure marks,
escaped names, well-formed and byte-identical output for any input, and no plotting library loaded."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from reports import plots

ROOT = Path(__file__).resolve().parent.parent
TOLERANCE = 0.21  # coordinates are written to 0.1 px; a height is a difference of two


def parse(svg: str) -> ET.Element:
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    return ET.fromstring(svg)


def local(element: ET.Element) -> str:
    return element.tag.rpartition("}")[2]


def of_class(root: ET.Element, name: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == name]


def texts(root: ET.Element) -> dict[str, ET.Element]:
    """Text elements by their content (the first of equal ones)."""
    found: dict[str, ET.Element] = {}
    for element in root.iter():
        if local(element) == "text" and element.text is not None:
            found.setdefault(element.text, element)
    return found


def horizontal_segments(d: str) -> list[tuple[float, float, float]]:
    """(x from, x to, y) of every H command of an absolute M/V/H path."""
    x = y = 0.0
    segments = []
    for command, numbers in re.findall(r"([MVH])([-\d.,]+)", d):
        if command == "M":
            x, y = (float(v) for v in numbers.split(","))
        elif command == "V":
            y = float(numbers)
        else:
            segments.append((min(x, float(numbers)), max(x, float(numbers)), y))
            x = float(numbers)
    return segments


def height_over(segments: list[tuple[float, float, float]], x0: float, x1: float) -> float:
    (y,) = {y for a, b, y in segments if a <= x0 + TOLERANCE and b >= x1 - TOLERANCE}
    return y


def test_each_step_reaches_its_bins_count_on_the_count_axis() -> None:
    values = np.array([-8.75] * 10 + [-2.75] + [-14.75] * 100 + [plots.EXACT_FLOOR] * 2)
    root = parse(plots.histogram_svg({"oracle": values}))
    (series,) = of_class(root, "series")
    steps = horizontal_segments(series.attrib["d"])
    labels = texts(root)
    x = {v: float(labels[str(v)].attrib["x"]) for v in (-18, -15, -9, -6, -3)}
    y = {c: float(labels[str(c)].attrib["y"]) for c in (0, 1, 10, 100)}
    bin_px = (x[-6] - x[-9]) / 6  # bins are 0.5 wide, ticks 3 apart
    assert height_over(steps, x[-9], x[-9] + bin_px) == pytest.approx(y[10], abs=TOLERANCE)
    assert height_over(steps, x[-3], x[-3] + bin_px) == pytest.approx(y[1], abs=TOLERANCE)
    assert height_over(steps, x[-15], x[-15] + bin_px) == pytest.approx(y[100], abs=TOLERANCE)
    assert height_over(steps, x[-9] + bin_px, x[-9] + 2 * bin_px) == pytest.approx(y[0], abs=TOLERANCE)
    two = height_over(steps, x[-18], x[-18] + bin_px)  # exact matches: the first bin, between the 1 and 10 ticks
    assert y[10] < two < y[1]
    assert y[0] > y[1] > y[10] > y[100]  # the count axis goes up, one decade per tick above 1


def test_oracles_are_drawn_in_name_order_with_the_palette_in_order() -> None:
    errors = {"zeta": np.array([-10.0]), "alpha": np.array([-12.0, -11.0]), "none": np.array([])}
    root = parse(plots.histogram_svg(errors, title="run 1"))
    strokes = [path.attrib["stroke"] for path in of_class(root, "series")]
    assert strokes == [plots.COLOURS[0], plots.COLOURS[2]]  # "none" keeps its colour slot but draws nothing
    (legend,) = of_class(root, "legend")
    assert [t.text for t in legend.iter() if local(t) == "text"] == ["alpha (2)", "zeta (1)"]
    assert "run 1" in texts(root)
    many = parse(plots.histogram_svg({f"o{i:02}": np.array([-9.0]) for i in range(40)}))
    strokes = [path.attrib["stroke"] for path in of_class(many, "series")]
    assert len(strokes) == 40 and strokes[len(plots.COLOURS)] == plots.COLOURS[0]  # cycled, none left out


def box_geometry(box: ET.Element) -> tuple[float, float, float]:
    """(top, bottom, centre x) of a box's quartile rectangle."""
    (rect,) = [e for e in box if local(e) == "rect"]
    top, height = float(rect.attrib["y"]), float(rect.attrib["height"])
    return top, top + height, float(rect.attrib["x"]) + float(rect.attrib["width"]) / 2


def test_a_box_spans_the_quartiles_with_the_median_and_whiskers_at_the_extremes() -> None:
    root = parse(plots.error_by_feature_svg({"depth": {"3": np.array([-12.0, -11.0, -10.0, -9.0, -8.0])}}, {}))
    (box,) = of_class(root, "box")
    labels = texts(root)
    y = {v: float(labels[str(v)].attrib["y"]) for v in (-12, -11, -10, -9, -8)}
    top, bottom, centre = box_geometry(box)
    assert top == pytest.approx(y[-9], abs=TOLERANCE) and bottom == pytest.approx(y[-11], abs=TOLERANCE)
    assert centre == pytest.approx(float(labels["3"].attrib["x"]), abs=TOLERANCE)
    whiskers, median = [e for e in box if local(e) == "path"]
    ((_, _, median_y),) = horizontal_segments(median.attrib["d"])
    assert median_y == pytest.approx(y[-10], abs=TOLERANCE)
    assert median.attrib["stroke"] == plots.MEDIAN_COLOUR
    caps = sorted(y for _, _, y in horizontal_segments(whiskers.attrib["d"]))
    assert caps == [pytest.approx(y[-8], abs=TOLERANCE), pytest.approx(y[-12], abs=TOLERANCE)]


def test_an_empty_group_draws_no_box_but_keeps_its_label_and_failure_mark() -> None:
    features = {
        "depth": {"1": np.array([-10.0, -9.0]), "2": np.array([]), "3": np.array([-12.0])},
        "activation": {"relu": np.array([-9.5]), "tanh": np.array([math.nan])},
    }
    failures = {"depth": {"1": 3, "2": 4, "3": 0}, "activation": {"tanh": 7}}
    root = parse(plots.error_by_feature_svg(features, failures))
    labels = texts(root)
    boxes = of_class(root, "box")
    assert len(boxes) == 3  # depth 1, depth 3, relu; not depth 2 (empty) nor tanh (only NaN)
    centres = sorted(box_geometry(box)[2] for box in boxes)
    for empty in ("2", "tanh"):
        assert all(abs(c - float(labels[empty].attrib["x"])) > 5 for c in centres)
    marks = {mark.text: mark for mark in of_class(root, "fail-mark")}
    assert set(marks) == {"3✗", "4✗", "7✗"}
    assert all(mark.attrib["fill"] == "#b00020" for mark in marks.values())
    assert float(marks["4✗"].attrib["x"]) == pytest.approx(float(labels["2"].attrib["x"]), abs=TOLERANCE)
    for feature in ("depth", "activation", "log10 relative error"):
        assert feature in labels
    assert "rotate(-40" in labels["relu"].attrib["transform"] and "transform" not in labels["1"].attrib


def test_user_strings_are_escaped() -> None:
    name = "a<b&c"
    histogram = plots.histogram_svg({name: np.array([-9.0])}, title=f"{name} run")
    features = plots.error_by_feature_svg({name: {name: np.array([-9.0])}}, {name: {name: 2}})
    for svg in (histogram, features):
        assert "a&lt;b&amp;c" in svg and name not in svg
        assert parse(svg).find("{*}title") is not None
    assert "a<b&c (1)" in texts(parse(histogram)) and name in texts(parse(features))


CASES = {
    "empty": {},
    "one value": {"o": np.array([-9.0])},
    "all equal": {"o": np.array([-4.0] * 7), "p": np.array([-4.0] * 7)},
    "ends and empties": {"o": plots.log10_relative([0.0, math.inf, math.nan, 1e-40, 1.0]), "q": np.array([])},
    "raw non-finite": {"o": np.array([math.nan, math.inf, -math.inf, -3.0])},
    "many oracles": {f"oracle{i}": np.linspace(-18, 3, 20 + i) for i in range(11)},
}


@pytest.mark.parametrize("case", CASES)
def test_every_plot_is_well_formed_self_contained_and_deterministic(case: str) -> None:
    errors = CASES[case]
    features = {"depth": dict(errors), "activation": {name: values[:1] for name, values in errors.items()}}
    failures = {"depth": dict.fromkeys(errors, 1)}
    for draw in (
        lambda: plots.histogram_svg(errors),
        lambda: plots.histogram_svg(errors, title="t"),
        lambda: plots.error_by_feature_svg(features, failures),
        lambda: plots.error_by_feature_svg({}, {}),
        lambda: plots.error_by_feature_svg({"loss": {}}, {}),
    ):
        svg = draw()
        root = parse(svg)
        assert svg == draw()
        assert len(root.attrib["viewBox"].split()) == 4 and "font-family" in root.attrib
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<script" not in svg and 'href="http' not in svg
        assert not re.search(r"\d\.\d{2,}", svg.replace('dy="0.32em"', "")), "coordinates are to 0.1 px"
        for element in root.iter():
            for attribute in ("x", "y", "width", "height", "d", "transform"):
                value = element.get(attribute, "").lower()
                assert "nan" not in value and "inf" not in value, (element.tag, element.attrib)


def test_writing_a_report_loads_no_plotting_library() -> None:
    code = "import sys, reports.html; sys.exit('matplotlib' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=False, timeout=120).returncode == 0
