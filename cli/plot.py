"""A terminal line chart in braille dots: one series against its steps, no dependency.

Each character cell holds 2 x 4 dots, so a 60 x 8 chart draws 120 x 32 points.
The y axis is labelled with the series' maximum (top) and minimum (bottom),
formatted with :func:`label`; the x axis with the first and last step. A
positive series spanning more than two decades is drawn on a log scale. A series of fewer
than :data:`SPARSE` points is drawn as markers joined by dotted straight lines.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

# The braille dot bits by (column, row) inside a cell: U+2800 + the sum of the dots set.
_DOTS = ((0x01, 0x02, 0x04, 0x40), (0x08, 0x10, 0x20, 0x80))
BRAILLE = 0x2800
#: Below this many points, markers (a full cell each) joined by dotted lines instead of a solid
#: line. With fewer than 8, each segment spans an eighth of the chart or more and a solid line is
#: mostly drawn by us, not logged: two points read as a measured, smooth descent. From 8 on, a
#: 60-column chart has a point every ~8 columns or closer, and the line follows the data.
SPARSE = 8
MARKER = chr(BRAILLE + 0xFF)  # all 8 dots


def label(value: float) -> str:
    """How an axis value is printed: 4 significant digits."""
    return f"{value:.4g}"


def log_scale(values: Sequence[float]) -> bool:
    """Whether to draw ``values`` on a log scale: all positive, max/min > 100."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


class _Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.cells = [[0] * width for _ in range(height)]
        self.marks: set[tuple[int, int]] = set()  # (row, column) of the cells that are markers

    def dot(self, x: int, y: int) -> None:
        """Sets dot (x, y); y counts from the top, both in dots."""
        x = min(max(x, 0), self.width * 2 - 1)
        y = min(max(y, 0), self.height * 4 - 1)
        self.cells[y // 4][x // 2] |= _DOTS[x % 2][y % 4]

    def mark(self, x: int, y: int) -> None:
        """Fills the cell that holds dot (x, y)."""
        self.dot(x, y)
        x, y = min(max(x, 0), self.width * 2 - 1), min(max(y, 0), self.height * 4 - 1)
        self.marks.add((y // 4, x // 2))

    def line(self, x0: int, y0: int, x1: int, y1: int, every: int = 1) -> None:
        """Dots from (x0, y0) to (x1, y1): each one, or ``every`` n-th (a dotted line)."""
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(0, steps + 1, every):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps))

    def rows(self) -> list[str]:
        return [
            "".join(
                MARKER if (r, c) in self.marks else chr(BRAILLE + bits) if bits else " "
                for c, bits in enumerate(row)
            )
            for r, row in enumerate(self.cells)
        ]


def chart(
    steps: Sequence[int], values: Sequence[float], width: int = 60, height: int = 8, log: bool | None = None
) -> list[str]:
    """The chart as lines of text: y labels and braille rows, then the x axis and its step range.

    Non-finite values are left out. ``log`` None picks the scale with :func:`log_scale`.

    Returns:
        The lines; ``[]`` when no value is finite.
    """
    points = [(s, v) for s, v in zip(steps, values, strict=False) if math.isfinite(v)]
    height, width = max(height, 2), max(width, 8)
    if not points:
        return []
    if log is None:
        log = log_scale([v for _, v in points])
    ys = [math.log10(v) if log else v for _, v in points]
    low, high = min(ys), max(ys)
    first, last = points[0][0], points[-1][0]
    canvas = _Canvas(width, height)
    span_x = (last - first) or 1
    span_y = high / 2 - low / 2  # halves: high - low may overflow (1e308 and -1e308)
    dots_x, dots_y = width * 2 - 1, height * 4 - 1

    def place(step: int, y: float) -> tuple[int, int]:
        px = round((step - first) / span_x * dots_x) if last != first else dots_x // 2
        py = round((high / 2 - y / 2) / span_y * dots_y) if span_y > 0 else dots_y // 2
        return px, py

    placed = [place(step, y) for (step, _), y in zip(points, ys, strict=True)]
    if len(placed) < SPARSE:
        for (x0, y0), (x1, y1) in itertools.pairwise(placed):
            canvas.line(x0, y0, x1, y1, every=4)
        for x, y in placed:
            canvas.mark(x, y)
    else:
        _solid(canvas, placed)

    top, bottom = label(max(v for _, v in points)), label(min(v for _, v in points))
    pad = max(len(top), len(bottom))
    lines = []
    for row, cells in enumerate(canvas.rows()):
        text = top if row == 0 else bottom if row == height - 1 else ""
        tick = "┤" if row in (0, height - 1) else "│"
        lines.append(f"{text:>{pad}} {tick}{cells}".rstrip())
    lines.append(" " * pad + " └" + "─" * width)
    left, right = f"{first}", f"{last}" if last != first else ""
    gap = max(width - len(left) - len(right), 1)
    lines.append(" " * (pad + 2) + left + " " * gap + right)
    return lines


def _solid(canvas: _Canvas, placed: list[tuple[int, int]]) -> None:
    """A solid line through the points, in dots: many points per dot column draw that column's
    range, joined to the next, in O(n)."""
    columns: list[tuple[int, int, int, int, int]] = []  # x, first y, last y, min y, max y
    for px, py in placed:
        if columns and columns[-1][0] == px:
            x, y0, _, lo, hi = columns[-1]
            columns[-1] = (x, y0, py, min(lo, py), max(hi, py))
        else:
            columns.append((px, py, py, py, py))
    for i, (x, y0, _, lo, hi) in enumerate(columns):
        canvas.line(x, lo, x, hi)
        if i:
            previous = columns[i - 1]
            canvas.line(previous[0], previous[2], x, y0)
