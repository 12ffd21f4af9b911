"""The report's |Δ| heatmaps: one inline SVG grid per parameter block, coloured from the tolerance up.

Colour starts at each block's tolerance (white below it: rounding noise within the tolerance is not a
discrepancy and must not look like one) and darkens up to the record's largest |Δ|; exactly 0 is grey.
One ``<title>`` per block, not per cell, so a report of many failures stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from markupsafe import Markup, escape

from reports.records import Record


def heatmap_svg(name: str, values: Sequence[Sequence[float]] | Sequence[float], lo: float, hi: float) -> Markup:
    """|Δ| of one block as a grid of cells, colour = log10 |Δ| on the scale [lo, hi].

    ``lo`` is where colour starts (the block's tolerance): a cell below it is white, since rounding noise
    within the tolerance is not a discrepancy and must not look like one.
    """
    grid = np.atleast_2d(np.asarray(values, dtype=np.float64))
    if grid.ndim > 2:
        grid = grid.reshape(grid.shape[0], -1)
    rows, cols = grid.shape
    cell = max(6, min(18, 180 // max(rows, cols, 1)))
    with np.errstate(divide="ignore"):
        logged = np.where(grid > 0, np.log10(np.where(grid > 0, grid, 1.0)), -np.inf)
    worst = np.unravel_index(int(np.argmax(grid)), grid.shape)
    # One title per block, not per cell: per-cell tooltips would make a report of many failures megabytes.
    parts = [
        f'<svg class="heat" width="{cols * cell + 2}" height="{rows * cell + 16}" role="img">'
        f"<title>|Δ| over {escape(name)}: largest {grid[worst]:.3g} at [{worst[0]},{worst[1]}]</title>"
        f'<text x="1" y="11" font-size="10">{escape(name)}</text>'
    ]
    span = max(hi - lo, 1e-9)
    for r in range(rows):
        for c in range(cols):
            value = logged[r, c]
            if np.isfinite(value) and value < lo:
                colour = "#ffffff"  # within the tolerance
            elif np.isfinite(value):
                t = min(1.0, max(0.0, (value - lo) / span))
                # white (tiny) -> amber -> dark red (largest |Δ| in the record)
                red, green, blue = 255 - int(80 * t), int(245 - 200 * t), int(235 - 235 * t)
                colour = f"#{red:02x}{green:02x}{blue:02x}"
            else:
                colour = "#f4f6f8"
            parts.append(
                f'<rect x="{1 + c * cell}" y="{14 + r * cell}" width="{cell - 1}" height="{cell - 1}" fill="{colour}"/>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def block_heatmaps(record: Record, heat: dict[str, Any]) -> tuple[str, list[Markup]]:
    """Heatmaps on one scale from each block's tolerance (white below it) to the record's largest |Δ|."""
    largest = max((float(np.max(np.asarray(block, float))) for block in heat.values() if np.size(block)), default=0.0)
    floors: dict[str, float] = {}
    for name in heat:
        tolerance = (record.blocks.get(name) or {}).get("tolerance") or record.tolerance
        floors[name] = float(np.log10(tolerance)) if tolerance and tolerance > 0 else -16.0
    lowest = min(floors.values())
    hi = max(float(np.log10(largest)) if largest > 0 else lowest, lowest + 1.0)
    text = (
        f"white: |Δ| within the block's tolerance (10^{lowest:.1f} at the least); from there, light to dark up to "
        f"the largest |Δ| = 10^{hi:.1f}; grey = exactly 0"
    )
    return text, [heatmap_svg(name, block, floors[name], hi) for name, block in heat.items()]
