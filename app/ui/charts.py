"""Geometry of the dashboard's charts, drawn as inline SVG by the templates.

Server-rendered SVG needs no script and no network: the numbers here become
attributes in `ui/_bar_chart.html` and `ui/_line_chart.html`, escaped by Jinja.
"""

from dataclasses import dataclass

WIDTH = 640
LABEL_WIDTH = 160
BAR_HEIGHT = 18
BAR_GAP = 8
LINE_HEIGHT = 220
PLOT_LEFT = 48
PLOT_BOTTOM = 24
TICKS = 4


@dataclass
class Segment:
    series: str
    value: int
    x: float
    width: float


@dataclass
class Bar:
    label: str
    total: int
    y: float
    segments: list


def stacked_bars(rows, series):
    """rows: [(label, {series: value})] -> Bars scaled so the largest total fills the width."""
    largest = max([sum(values.get(name, 0) for name in series) for _, values in rows] + [1])
    scale = (WIDTH - LABEL_WIDTH - 40) / largest
    bars = []
    for index, (label, values) in enumerate(rows):
        x, segments = LABEL_WIDTH, []
        for name in series:
            value = values.get(name, 0)
            if value:
                segments.append(Segment(name, value, x, value * scale))
                x += value * scale
        bars.append(Bar(label, sum(s.value for s in segments), index * (BAR_HEIGHT + BAR_GAP), segments))
    return bars


def bars_height(bars):
    return max(1, len(bars)) * (BAR_HEIGHT + BAR_GAP)


@dataclass
class Line:
    series: str
    points: str      # the polyline's "x,y x,y ..." attribute
    last: int


@dataclass
class LineChart:
    lines: list
    y_ticks: list    # [(y, value)]
    x_ticks: list    # [(x, label)]


def line_chart(series_points, labels):
    """series_points: {series: [count per point]}, labels: one text per point -> LineChart."""
    largest = max([max(values, default=0) for values in series_points.values()] + [1])
    top = _round_up(largest)
    height = LINE_HEIGHT - PLOT_BOTTOM
    step = (WIDTH - PLOT_LEFT - 10) / max(1, len(labels) - 1)

    def y(value):
        return round(height - value * (height - 10) / top, 1)

    lines = [Line(name, " ".join(f"{round(PLOT_LEFT + i * step, 1)},{y(v)}" for i, v in enumerate(values)),
                  values[-1] if values else 0)
             for name, values in series_points.items()]
    # Whole numbers only: a small maximum gets fewer ticks rather than repeated labels.
    values = sorted({round(top * i / TICKS) for i in range(TICKS + 1)})
    y_ticks = [(y(value), value) for value in values]
    x_ticks = [(round(PLOT_LEFT + i * step, 1), label) for i, label in enumerate(labels)]
    return LineChart(lines, y_ticks, x_ticks)


def _round_up(value):
    """A tidy axis maximum at or above `value` (1, 2 or 5 times a power of ten)."""
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= value:
                return factor * magnitude
        magnitude *= 10
