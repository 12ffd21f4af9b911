"""The report's two static plots (error histogram, error by architecture) as inline SVG written here.

No plotting library on purpose: the report is written at the end of every campaign, on the critical path
of the main command, and importing matplotlib (~0.5 s CPU) then drawing these two figures (~0.4 s) was the
largest part of that.  The plots need only lines, boxes and text, so, as ``reports/heatmap.py`` does, this
module writes the ``<svg>`` itself: text stays ``<text>`` in the reader's own sans-serif (no font embedded
or fetched), there is no script and no external reference, user-provided names are escaped, and every
number is rounded to 0.1 px so the same data gives the same bytes.

Errors are shown as log10 of the relative error; an exact match (0) is drawn at ``EXACT_FLOOR`` and an
infinite one at ``INF_CEILING``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

EXACT_FLOOR = -18.0
INF_CEILING = 3.0
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
BIN_WIDTH = 0.5
FAIL_COLOUR = "#b00020"
MEDIAN_COLOUR = "#ff7f0e"
INK = "#222222"
TICK = 4.0  # length of a tick mark, px
FONT = 11.0  # px: tick labels, legend, failure marks; axis labels one size up, the title two
# A sans-serif character's average advance, in font sizes.  Only used to reserve room for labels (legend
# width, rotated tick labels): the browser sets the text, so a generous estimate beats a measured one.
CHAR = 0.62

_Y_LABEL_X = 6 + FONT + 1  # baseline of the rotated y label: its glyphs reach left to about x = 6
_EDGES = np.arange(EXACT_FLOOR, INF_CEILING + BIN_WIDTH / 2, BIN_WIDTH)


def log10_relative(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """log10 of relative errors with 0 -> EXACT_FLOOR and inf/NaN -> INF_CEILING."""
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.log10(array)
    logged = np.where(np.isfinite(logged), logged, np.where(array == 0, EXACT_FLOOR, INF_CEILING))
    return np.clip(logged, EXACT_FLOOR, INF_CEILING)


def _n(value: float) -> str:
    """A coordinate to 0.1 px, without ``.0`` or a negative zero: short, and the same bytes every run."""
    text = f"{value:.1f}"
    if text.endswith(".0"):
        text = text[:-2]
    return "0" if text == "-0" else text


def _text_width(label: str, size: float = FONT) -> float:
    return len(label) * size * CHAR


def _text(x: float, y: float, label: str, *, size: float = FONT, anchor: str = "middle", attrs: str = "") -> str:
    return f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" text-anchor="{anchor}"{attrs}>{escape(label)}</text>'


def _open(width: float, height: float, description: str) -> str:
    width, height = math.ceil(width), math.ceil(height)
    # The namespace lets the same text stand alone as an .svg file; inline in HTML it is harmless.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" font-family="sans-serif" fill="{INK}"><title>{escape(description)}</title>'
    )


def _plot_area(x: float, y: float, width: float, height: float) -> str:
    """The plotting area's extent, unpainted: what is inside it is data, so a legend must stay outside."""
    return f'<rect class="plot-area" x="{_n(x)}" y="{_n(y)}" width="{_n(width)}" height="{_n(height)}" fill="none"/>'


def _finite(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


def _path(d: str) -> str:
    return f'<path d="{d}" stroke="{INK}"/>' if d else ""


def _axes(left: float, top: float, right: float, bottom: float) -> str:
    """The left and bottom spines only, as the old figures had (no box around the data)."""
    return f'<path d="M{_n(left)},{_n(top)}V{_n(bottom)}H{_n(right)}" fill="none" stroke="{INK}"/>'


def _left_margin(tick_labels: Sequence[str]) -> float:
    """Room for the rotated axis label, the widest tick label and the tick marks."""
    return _Y_LABEL_X + 8 + max(_text_width(label) for label in tick_labels) + TICK + 2


def _y_label(y: float, label: str) -> str:
    x = _Y_LABEL_X
    return _text(x, y, label, size=FONT + 1, attrs=f' transform="rotate(-90 {_n(x)} {_n(y)})"')


def _y_ticks(ticks: Sequence[tuple[float, str]], x: float, labelled: bool) -> list[str]:
    """Tick marks left of ``x``; a label's ``y`` is its tick's own ``y`` (``dy`` centres it on the tick)."""
    parts = [_path("".join(f"M{_n(x - TICK)},{_n(y)}H{_n(x)}" for y, _ in ticks))]
    if labelled:
        parts += [_text(x - TICK - 2, y, label, anchor="end", attrs=' dy="0.32em"') for y, label in ticks]
    return parts


# ----------------------------------------------------------------------------------------------------------
# Histogram


def _counts_scale(count: float) -> float:
    """Like matplotlib's symlog (linthresh=1): 0 stays on the axis, 1 record shows, each decade above is a step."""
    return math.log10(1.0 + count)


def _count_label(count: int) -> str:
    return str(count) if count < 100_000 else f"1e{round(math.log10(count))}"


def _step_path(edges: Sequence[float], heights: Sequence[float], base: float) -> str:
    """The outline of one histogram (matplotlib's ``histtype="step"``): runs of equal height are one segment."""
    parts = [f"M{_n(edges[0])},{_n(base)}"]
    level, at = _n(base), _n(edges[0])
    for left, height in zip(edges, heights, strict=False):
        y = _n(height)
        if y != level:
            if _n(left) != at:
                parts.append(f"H{_n(left)}")
            parts.append(f"V{y}")
            level, at = y, _n(left)
    parts.append(f"H{_n(edges[-1])}")
    if level != _n(base):
        parts.append(f"V{_n(base)}")
    return "".join(parts)


def histogram_svg(log_errors: Mapping[str, np.ndarray], title: str = "") -> str:
    """One step histogram per oracle of log10 relative error (values already passed through log10_relative)."""
    series = []
    # Colours by position among all oracles, drawn or not, so an oracle keeps its colour across reports;
    # cycled rather than cut off, so a 33rd oracle is still drawn.
    for index, (name, values) in enumerate(sorted(log_errors.items())):
        if len(values):
            counts, _ = np.histogram(np.clip(_finite(values), EXACT_FLOOR, INF_CEILING), bins=_EDGES)
            series.append((COLOURS[index % len(COLOURS)], f"{name} ({len(values)})", counts))
    largest = max((int(counts.max()) for _, _, counts in series), default=0)
    # At least up to the "10" tick, so even a handful of records reads against a labelled scale.
    top_value = max(_counts_scale(largest) * 1.08, _counts_scale(10) * 1.02)
    ticks = [0]
    while _counts_scale(10 ** (len(ticks) - 1)) <= top_value:
        ticks.append(10 ** (len(ticks) - 1))
    tick_labels = [_count_label(t) for t in ticks]
    minor = [m * 10**k for k in range(len(ticks)) for m in range(2, 10) if _counts_scale(m * 10**k) <= top_value]

    left = _left_margin(tick_labels)
    top = 10 + (FONT + 10 if title else 0)
    width, height = 560.0, 200.0
    right, bottom = left + width, top + height
    x_lo, x_hi = EXACT_FLOOR - BIN_WIDTH, INF_CEILING + BIN_WIDTH

    def x_of(value: float) -> float:
        return left + (value - x_lo) / (x_hi - x_lo) * width

    def y_of(count: float) -> float:
        return bottom - _counts_scale(count) / top_value * height

    edges = [x_of(edge) for edge in _EDGES]
    body = [_plot_area(left, top, width, height)]
    for colour, label, counts in series:
        body.append(
            f'<path class="series" d="{_step_path(edges, [y_of(c) for c in counts], bottom)}" fill="none"'
            f' stroke="{colour}" stroke-width="1.6"><title>{escape(label)}</title></path>'
        )
    body.append(_axes(left, top, right, bottom))
    body.append(_path("".join(f"M{_n(left - TICK / 2)},{_n(y_of(m))}H{_n(left)}" for m in minor)))
    body += _y_ticks([(y_of(t), label) for t, label in zip(ticks, tick_labels, strict=True)], left, labelled=True)
    x_ticks = [float(v) for v in np.arange(EXACT_FLOOR, INF_CEILING + 1.0, 3.0)]
    body.append(_path("".join(f"M{_n(x_of(v))},{_n(bottom)}v{_n(TICK)}" for v in x_ticks)))
    body += [_text(x_of(v), bottom + TICK + FONT, f"{v:.0f}") for v in x_ticks]
    label_y = bottom + TICK + 2 * FONT + 8
    body.append(
        _text(left + width / 2, label_y, "log10 relative error at the worst entry (exact = -18)", size=FONT + 1)
    )
    body.append(_y_label(top + height / 2, "records"))
    if title:
        body.append(_text(left + width / 2, top - 8, title, size=FONT + 2))

    # Outside the plotting area, on the right: inside, it covered the bars it labels.
    legend_x, row = right + 16, FONT + 6
    legend = ['<g class="legend">']
    for i, (colour, label, _) in enumerate(series):
        y = top + FONT / 2 + i * row
        legend.append(f'<path d="M{_n(legend_x)},{_n(y)}h18" stroke="{colour}" stroke-width="1.6"/>')
        legend.append(_text(legend_x + 24, y, label, anchor="start", attrs=' dy="0.32em"'))
    legend.append("</g>")
    legend_width = max((_text_width(label) for _, label, _ in series), default=0.0)
    total_width = max(legend_x + 24 + legend_width + 8, right + 12)
    total_height = max(label_y + 6, top + len(series) * row + 4)
    head = _open(total_width, total_height, title or "log10 relative error per oracle")
    return "".join([head, *body, *legend, "</svg>"])


# ----------------------------------------------------------------------------------------------------------
# Error by feature


def _nice_ticks(lo: float, hi: float, most: int = 8) -> list[tuple[float, str]]:
    """Round values (1, 2 or 5 times a power of ten apart) covering [lo, hi], at most ``most`` of them."""
    exponent = math.floor(math.log10((hi - lo) / most))
    step = 10.0**exponent
    for multiple in (1, 2, 5, 10):
        step = multiple * 10.0**exponent
        if (hi - lo) / step <= most:
            break
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    for k in range(first, math.floor(hi / step + 1e-9) + 1):
        label = f"{k * step:.{decimals}f}"
        ticks.append((k * step, "0" if float(label) == 0 else label))
    return ticks


def _box(centre: float, half: float, ys: Sequence[float], title: str) -> str:
    """A box from the lower to the upper quartile, the median across it, whiskers to min and max (capped).

    ``ys`` are the drawn heights of min, lower quartile, median, upper quartile and max.
    """
    low, q1, median, q3, high = (_n(y) for y in ys)
    cap = half / 2
    whiskers = (
        f"M{_n(centre)},{high}V{q3}M{_n(centre)},{q1}V{low}"
        f"M{_n(centre - cap)},{high}H{_n(centre + cap)}M{_n(centre - cap)},{low}H{_n(centre + cap)}"
    )
    return (
        f'<g class="box"><title>{escape(title)}</title><path d="{whiskers}" fill="none" stroke="{INK}"/>'
        f'<rect x="{_n(centre - half)}" y="{q3}" width="{_n(2 * half)}" height="{_n(ys[1] - ys[3])}"'
        f' fill="none" stroke="{INK}"/>'
        f'<path d="M{_n(centre - half)},{median}H{_n(centre + half)}" stroke="{MEDIAN_COLOUR}" stroke-width="1.5"/></g>'
    )


def error_by_feature_svg(
    features: Mapping[str, Mapping[str, np.ndarray]], failures: Mapping[str, Mapping[str, int]]
) -> str:
    """A panel per feature (depth, width, activation, loss): per group, the spread of log10 relative error.

    Boxes span the quartiles, whiskers min to max; the number of failing cases is written above each group.
    A group with no data draws nothing but keeps its label, so the panels' groups read the same every run.
    """
    panels = {
        feature: {label: _finite(values) for label, values in groups.items()} for feature, groups in features.items()
    }
    everything = np.concatenate([np.empty(0)] + [values for groups in panels.values() for values in groups.values()])
    lo, hi = (float(everything.min()), float(everything.max())) if everything.size else (EXACT_FLOOR, INF_CEILING)
    if hi - lo < 1.0:  # a single value, or all equal: a unit span around them
        lo, hi = (lo + hi) / 2 - 0.5, (lo + hi) / 2 + 0.5
    lo, hi = lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)
    y_ticks = _nice_ticks(lo, hi)

    top, height, gap = FONT + 10, 190.0, 28.0
    bottom = top + height
    left = _left_margin([label for _, label in y_ticks])

    def y_of(value: float) -> float:
        return bottom - (value - lo) / (hi - lo) * height

    ticks = [(y_of(value), label) for value, label in y_ticks]
    body: list[str] = []
    x, lowest = left, bottom + TICK + 2 * FONT + 8
    for index, (feature, groups) in enumerate(panels.items() or [("", {})]):
        # Activation names are long and many: slanted, as matplotlib's rotation=40 with ha="right" drew them.
        slanted = feature == "activation"
        longest = max((_text_width(label) for label in groups), default=0.0)
        slot = 34.0 if slanted else max(34.0, longest + 10)
        width = max(150.0, slot * len(groups))
        slot = width / max(1, len(groups))
        body += ['<g class="panel">', _plot_area(x, top, width, height), _axes(x, top, x + width, bottom)]
        body += _y_ticks(ticks, x, labelled=index == 0)
        body.append(_path("".join(f"M{_n(x + slot * (i + 0.5))},{_n(bottom)}v{_n(TICK)}" for i in range(len(groups)))))
        for position, (label, values) in enumerate(groups.items()):
            centre = x + slot * (position + 0.5)
            if values.size:
                quartiles = [y_of(float(q)) for q in np.percentile(values, [0, 25, 50, 75, 100])]
                title = f"{feature} {label}: {values.size} cases, median {float(np.median(values)):.1f}"
                body.append(_box(centre, min(0.3 * slot, 20.0), quartiles, title))
            if slanted:
                anchor_x, anchor_y = centre + 3, bottom + TICK + FONT - 1
                rotate = f' transform="rotate(-40 {_n(anchor_x)} {_n(anchor_y)})"'
                body.append(_text(anchor_x, anchor_y, label, anchor="end", attrs=rotate))
            else:
                body.append(_text(centre, bottom + TICK + FONT, label))
            failing = failures.get(feature, {}).get(label, 0)
            if failing:
                mark = f' class="fail-mark" fill="{FAIL_COLOUR}"'
                body.append(_text(centre, top - 4, f"{failing}✗", attrs=mark))
        # Each panel's name just below its own tick labels, as matplotlib placed them.
        depth = longest * math.sin(math.radians(40)) if slanted else FONT
        if feature:
            body.append(_text(x + width / 2, bottom + TICK + depth + FONT + 8, feature, size=FONT + 1))
        lowest = max(lowest, bottom + TICK + depth + FONT + 8)
        body.append("</g>")
        x += width + gap
    body.append(_y_label(top + height / 2, "log10 relative error"))
    head = _open(x - gap + 10, lowest + 6, "log10 relative error by " + (", ".join(panels) or "feature"))
    return "".join([head, *body, "</svg>"])
