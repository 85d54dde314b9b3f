"""The report's charts: one layout, drawn as SVG (written here) and as PNG (with Pillow).

Each chart is a panel of grouped bars with a scale, labelled categories and
a legend; a suppressed cell is drawn as an empty dashed box marked "s", so a
reader sees that something was hidden and never a made-up height. The layout
is computed once as a list of shapes (:class:`Scene`); :func:`svg` writes
them as SVG 1.1 text and :func:`png` rasterizes the same shapes, so both
pictures show the same thing.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from clearance.statistics.report import ALL, StatisticsReport
from clearance.statistics.tally import ITEMS, REVOCATION_CAUSES, SUSPENSION_CAUSES

WIDTH = 760
PANEL_HEIGHT = 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 24, 48, 56
COLORS = ("#3b6ea8", "#5aa469", "#d1603d", "#8e6bb3")
SUPPRESSED = "s"
ITEM_LABELS = {
    "family_and_cohabitants": "family",
    "criminal_and_disciplinary_history": "criminal record",
    "information_handling_violations": "info handling",
    "drug_abuse": "drugs",
    "mental_illness": "mental health",
    "alcohol_moderation": "alcohol",
    "financial_situation": "finances",
}


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int | None, ...]
    """One value per category; None where the cell was suppressed."""


@dataclass(frozen=True)
class Chart:
    title: str
    categories: tuple[str, ...]
    series: tuple[Series, ...]
    unit: str = "count"


@dataclass(frozen=True)
class Rect:
    x: float
    y: float
    width: float
    height: float
    fill: str | None
    stroke: str | None = None
    dashed: bool = False


@dataclass(frozen=True)
class Text:
    x: float
    y: float
    text: str
    size: int = 12
    anchor: str = "middle"
    """SVG ``text-anchor``: start, middle or end."""
    color: str = "#222222"
    bold: bool = False


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    color: str = "#999999"


Shape = Rect | Text | Line


@dataclass
class Scene:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)


def charts_of(report: StatisticsReport) -> list[Chart]:
    """The report's tables as the charts people read."""
    tables = report.tables
    assessments = tables["assessments"]
    levels = report.levels
    findings = tables["findings"]
    causes = tuple(dict.fromkeys((*SUSPENSION_CAUSES, *REVOCATION_CAUSES)))
    hours = tables["hours_to_decision"][ALL]
    return [
        Chart(
            f"Assessments by level, {report.month}",
            levels,
            tuple(
                Series(column, tuple(assessments[level][column] for level in levels))
                for column in ("opened", "favorable", "unfavorable")
            ),
        ),
        Chart(
            "Decisions in which an item raised a concern",
            tuple(ITEM_LABELS[item] for item in ITEMS),
            tuple(
                Series(d, tuple(findings[item][d] for item in ITEMS)) for d in ("favorable", "unfavorable")
            ),
        ),
        Chart(
            "Suspensions and revocations by cause",
            causes,
            (
                Series("suspensions", tuple(_cell(tables["suspensions"], cause) for cause in causes)),
                Series("revocations", tuple(_cell(tables["revocations"], cause) for cause in causes)),
            ),
        ),
        Chart(
            "Appeals",
            ("filed", "upheld", "dismissed"),
            (Series("appeals", tuple(tables["appeals"][ALL][c] for c in ("filed", "upheld", "dismissed"))),),
        ),
        Chart(
            "Hours from consent to decision",
            ("median", "90th percentile"),
            (Series("hours", (hours["median"], hours["p90"])),),
            unit="hours",
        ),
    ]


def _cell(table: dict[str, dict[str, int | None]], row: str) -> int | None:
    """A cause's count, or 0 for a cause the table does not have (no facility revocation by consent)."""
    return table[row]["count"] if row in table else 0


def layout(charts: Sequence[Chart], *, heading: str = "") -> Scene:
    """The shapes of ``charts`` stacked in one picture, under ``heading``."""
    top = 40 if heading else 0
    scene = Scene(WIDTH, top + PANEL_HEIGHT * len(charts) + 28)
    if heading:
        scene.shapes.append(Text(WIDTH / 2, 26, heading, size=16, bold=True))
    for number, chart in enumerate(charts):
        _panel(scene, chart, top + number * PANEL_HEIGHT)
    scene.shapes.append(
        Text(
            MARGIN_LEFT,
            scene.height - 10,
            f"{SUPPRESSED}: suppressed (under 10, or it would reveal a cell under 10)",
            size=11,
            anchor="start",
            color="#555555",
        )
    )
    return scene


def _panel(scene: Scene, chart: Chart, top: float) -> None:
    shapes = scene.shapes
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = top + MARGIN_TOP, top + PANEL_HEIGHT - MARGIN_BOTTOM
    shapes.append(Text(left, top + 24, chart.title, size=14, anchor="start", bold=True))
    shapes.append(Text(left - 8, plot_top - 12, chart.unit, size=10, anchor="end", color="#555555"))
    values = [v for s in chart.series for v in s.values if v is not None]
    scale_max = _nice_max(max(values, default=0))
    for tick in range(5):
        y = plot_bottom - (plot_bottom - plot_top) * tick / 4
        shapes.append(Line(left, y, right, y, "#e3e3e3" if tick else "#666666"))
        label = _number(scale_max * tick / 4)
        shapes.append(Text(left - 8, y + 4, label, size=11, anchor="end", color="#555555"))
    group = (right - left) / max(len(chart.categories), 1)
    bar = min(28.0, group * 0.8 / max(len(chart.series), 1))
    for index, category in enumerate(chart.categories):
        start = left + group * index + (group - bar * len(chart.series)) / 2
        for number, series in enumerate(chart.series):
            x = start + bar * number
            value = series.values[index]
            color = COLORS[number % len(COLORS)]
            if value is None:
                height = min(18.0, plot_bottom - plot_top)
                shapes.append(
                    Rect(x + 1, plot_bottom - height, bar - 2, height, None, "#888888", dashed=True)
                )
                shapes.append(
                    Text(x + bar / 2, plot_bottom - height - 4, SUPPRESSED, size=11, color="#555555")
                )
                continue
            height = (plot_bottom - plot_top) * value / scale_max if scale_max else 0
            shapes.append(Rect(x + 1, plot_bottom - height, bar - 2, height, color))
            shapes.append(Text(x + bar / 2, plot_bottom - height - 4, str(value), size=10, color="#333333"))
        shapes.append(Text(left + group * (index + 0.5), plot_bottom + 18, category, size=11))
    legend_x = right
    for number, series in reversed(list(enumerate(chart.series))):
        if len(chart.series) == 1:
            break
        width = 18 + 7 * len(series.name)
        legend_x -= width + 12
        shapes.append(Rect(legend_x, top + 14, 12, 12, COLORS[number % len(COLORS)]))
        shapes.append(Text(legend_x + 16, top + 24, series.name, size=11, anchor="start"))


def _nice_max(value: int) -> int:
    """The smallest of 4, 8, 10, 20, 40, 50, 100, ... times a power of ten at or above ``value``."""
    if value <= 4:
        return 4
    magnitude = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 4, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.1f}"


# -- SVG ------------------------------------------------------------------------------------


def svg(scene: Scene) -> str:
    """The scene as an SVG 1.1 document."""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{scene.width}" height="{scene.height}" '
        f'viewBox="0 0 {scene.width} {scene.height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        f'<rect x="0" y="0" width="{scene.width}" height="{scene.height}" fill="#ffffff"/>',
    ]
    for shape in scene.shapes:
        out.append(_svg_shape(shape))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _svg_shape(shape: Shape) -> str:
    if isinstance(shape, Rect):
        paint = f'fill="{shape.fill}"' if shape.fill else 'fill="none"'
        if shape.stroke:
            paint += f' stroke="{shape.stroke}"'
        if shape.dashed:
            paint += ' stroke-dasharray="3,2"'
        return (
            f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.width:.1f}" '
            f'height="{shape.height:.1f}" {paint}/>'
        )
    if isinstance(shape, Line):
        return (
            f'<line x1="{shape.x1:.1f}" y1="{shape.y1:.1f}" x2="{shape.x2:.1f}" y2="{shape.y2:.1f}" '
            f'stroke="{shape.color}" stroke-width="1"/>'
        )
    weight = ' font-weight="bold"' if shape.bold else ""
    return (
        f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
        f"text-anchor={quoteattr(shape.anchor)} fill={quoteattr(shape.color)}{weight}>{escape(shape.text)}</text>"
    )


# -- PNG ------------------------------------------------------------------------------------

_PIL_ANCHORS = {"start": "ls", "middle": "ms", "end": "rs"}
"""SVG text anchors as Pillow's: left, middle, right, all on the baseline."""


def png(scene: Scene) -> bytes:
    """The scene rasterized as a PNG (Pillow, its bundled FreeType font)."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (scene.width, scene.height), "#ffffff")
    draw = ImageDraw.Draw(image)
    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
    for shape in scene.shapes:
        if isinstance(shape, Rect):
            box = (shape.x, shape.y, shape.x + shape.width, shape.y + max(shape.height, 0))
            if shape.height > 0:
                draw.rectangle(box, fill=shape.fill, outline=shape.stroke)
        elif isinstance(shape, Line):
            draw.line((shape.x1, shape.y1, shape.x2, shape.y2), fill=shape.color, width=1)
        else:
            font = fonts.get(shape.size)
            if font is None:
                font = fonts[shape.size] = ImageFont.load_default(size=shape.size)
            draw.text(
                (shape.x, shape.y),
                shape.text,
                fill=shape.color,
                font=font,
                anchor=_PIL_ANCHORS[shape.anchor],
                stroke_width=0,
            )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
