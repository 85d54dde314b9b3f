"""The report's charts, read back by decoders we did not write: pypng for the PNG, ElementTree and
svgelements for the SVG."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

import png
import svgelements

from clearance.statistics import charts
from clearance.statistics.report import CountedRange, Month, StatisticsReport
from clearance.statistics.tally import MonthlyCounts
from tests.factories import LEVELS

SVG = "{http://www.w3.org/2000/svg}"
OPENED = charts.COLORS[0]


def report() -> StatisticsReport:
    counts = MonthlyCounts()
    counts.opened.update({"SECRET": 25, "CONFIDENTIAL": 13})
    counts.decided.update({("SECRET", "favorable"): 11, ("SECRET", "unfavorable"): 9})
    counts.appeals.update({"filed": 12})
    month = Month(2026, 11)
    return StatisticsReport.build(
        counts,
        issuer="https://registry.jp.example",
        issued_at=month.end,
        month=month,
        counted=CountedRange(1, 50, "0" * 64),
        levels=LEVELS,
    )


def scene() -> charts.Scene:
    return charts.layout(charts.charts_of(report()), heading="JP registry, 2026-11")


def test_the_png_decodes_to_the_scenes_size_with_the_bars_painted() -> None:
    drawn = scene()

    width, height, rows, info = png.Reader(bytes=charts.png(drawn)).asRGB8()

    assert (width, height) == (drawn.width, drawn.height)
    assert info["bitdepth"] == 8
    wanted = tuple(int(OPENED[i : i + 2], 16) for i in (1, 3, 5))
    pixels = {tuple(row[i : i + 3]) for row in rows for i in range(0, len(row), 3)}
    assert wanted in pixels


def test_the_svg_is_svg_that_two_parsers_read_with_every_bar_and_label() -> None:
    drawn = scene()
    text = charts.svg(drawn)

    root = ET.fromstring(text)  # noqa: S314  (our own output, not untrusted input)
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox") == f"0 0 {drawn.width} {drawn.height}"
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert "Assessments by level, 2026-11" in labels
    assert "25" in labels  # SECRET opened
    parsed = svgelements.SVG.parse(io.StringIO(text))
    bars = [
        e
        for e in parsed.elements()
        if isinstance(e, svgelements.Rect) and e.fill == svgelements.Color(OPENED)
    ]
    assert any(abs(bar.height - _height_of(drawn, 25)) < 0.5 for bar in bars)


def test_a_suppressed_cell_is_drawn_as_an_empty_marked_box_never_as_a_height() -> None:
    drawn = scene()

    root = ET.fromstring(charts.svg(drawn))  # noqa: S314  (our own output)

    dashed = [r for r in root.iter(f"{SVG}rect") if r.get("stroke-dasharray")]
    assert dashed
    assert all(r.get("fill") == "none" for r in dashed)
    marks = [t for t in root.iter(f"{SVG}text") if t.text == charts.SUPPRESSED]
    # SECRET unfavorable (9), favorable (11, which would give it away), and the two "all" cells
    # that would give those away (no other level decided anything).
    assert len(marks) == len(dashed) == 4


def _height_of(drawn: charts.Scene, value: int) -> float:
    """The height of the filled bar whose label is ``value`` (its label sits just above it)."""
    labels = [s for s in drawn.shapes if isinstance(s, charts.Text) and s.text == str(value)]
    bars = [s for s in drawn.shapes if isinstance(s, charts.Rect) and s.fill]
    for label in labels:
        for bar in bars:
            if abs(bar.y - 4 - label.y) < 0.01:
                return bar.height
    raise AssertionError(f"no bar labelled {value}")
