"""Static SVG plots for the HTML report, drawn by matplotlib's Agg backend and inlined as text.

Text stays ``<text>`` (``svg.fonttype = none``), so no font is embedded or fetched: the browser draws
it with its own sans-serif.  The SVG carries no date and a fixed hash salt, so the same data gives the
same bytes.  Errors are shown as log10 of the relative error; an exact match (0) is drawn at
``EXACT_FLOOR`` and an infinite one at ``INF_CEILING``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
from matplotlib import pyplot as plt

EXACT_FLOOR = -18.0
INF_CEILING = 3.0
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
_RC: dict[Any, Any] = {  # matplotlib types its keys as a Literal of every rc name
    "svg.fonttype": "none",
    "svg.hashsalt": "backprop-check",
    "font.family": "sans-serif",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def log10_relative(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """log10 of relative errors with 0 -> EXACT_FLOOR and inf/NaN -> INF_CEILING."""
    array = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.log10(array)
    logged = np.where(np.isfinite(logged), logged, np.where(array == 0, EXACT_FLOOR, INF_CEILING))
    return np.clip(logged, EXACT_FLOOR, INF_CEILING)


def _svg(figure: plt.Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    # Inline SVG inside HTML needs neither the XML declaration nor the DOCTYPE.
    # nor the RDF metadata block, whose only content is namespace URLs and the generator's name.
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def histogram_svg(log_errors: Mapping[str, np.ndarray], title: str = "") -> str:
    """One step histogram per oracle of log10 relative error (values already passed through log10_relative)."""
    with plt.rc_context(_RC):
        figure, axes = plt.subplots(figsize=(7.0, 2.8))
        bins = [float(edge) for edge in np.arange(EXACT_FLOOR, INF_CEILING + 0.5, 0.5)]
        for colour, (name, values) in zip(COLOURS * 4, sorted(log_errors.items()), strict=False):
            if len(values):
                axes.hist(
                    values, bins=bins, histtype="step", linewidth=1.6, color=colour, label=f"{name} ({len(values)})"
                )
        axes.set_xlabel("log10 relative error at the worst entry (exact = -18)")
        axes.set_ylabel("records")
        axes.set_yscale("symlog", linthresh=1)
        if title:
            axes.set_title(title)
        if log_errors:
            # Outside the axes, on the right: inside, it covered the bars it labels.
            axes.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        return _svg(figure)


def error_by_feature_svg(
    features: Mapping[str, Mapping[str, np.ndarray]], failures: Mapping[str, Mapping[str, int]]
) -> str:
    """A panel per feature (depth, width, activation, loss): per group, the spread of log10 relative error.

    Boxes span the quartiles, whiskers min to max; the number of failing cases is written above each group.
    """
    names = list(features)
    with plt.rc_context(_RC):
        figure, axes_grid = plt.subplots(1, max(1, len(names)), figsize=(3.0 * max(1, len(names)), 2.8), sharey=True)
        axes_list = np.atleast_1d(axes_grid)
        for axes, feature in zip(axes_list, names, strict=False):
            groups = features[feature]
            labels = list(groups)
            data = [groups[label] if len(groups[label]) else np.array([np.nan]) for label in labels]
            if labels:
                axes.boxplot(data, whis=(0, 100), showfliers=False, widths=0.6)
                if feature == "activation":
                    axes.set_xticks(range(1, len(labels) + 1), labels, rotation=40, ha="right")
                else:
                    axes.set_xticks(range(1, len(labels) + 1), labels)
                for position, label in enumerate(labels, start=1):
                    failing = failures.get(feature, {}).get(label, 0)
                    if failing:
                        axes.annotate(
                            f"{failing}✗",
                            (position, 1.0),
                            xycoords=("data", "axes fraction"),
                            ha="center",
                            va="bottom",
                            color="#b00020",
                            fontsize=8,
                        )
            axes.set_xlabel(feature)
        axes_list[0].set_ylabel("log10 relative error")
        return _svg(figure)
