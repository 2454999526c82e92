"""Server-side SVG charts for the console and the PDF reports: no JavaScript, no vendored library.

Each function returns an ``<svg>`` string with a ``<title>`` and ``role="img"`` (screen readers
read the title; the console shows the same figures in a table beside the chart). Every label
is escaped: organisation and rule names are user input.
"""

from __future__ import annotations

from html import escape

GRADE_COLOURS = {"A": "#1b7f3b", "B": "#b36b00", "C": "#b3261e"}
FONT = 'font-family="Noto Sans CJK SC, Noto Sans SC, PingFang SC, Microsoft YaHei, sans-serif"'


def donut(values: dict[str, int], title: str, size: int = 180) -> str:
    """Grade distribution as a ring with the total in the middle."""
    total = sum(values.values())
    r, cx, cy, width = size * 0.38, size / 2, size / 2, size * 0.16
    circ = 2 * 3.14159265 * r
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
        f'role="img" {FONT}><title>{escape(title)}</title>',
        f'<circle cx="{cx}" cy="{cy}" r="{r:.1f}" fill="none" stroke="#e6e6e6" stroke-width="{width:.1f}"/>',
    ]
    offset = 0.0
    for grade, n in values.items():
        if total == 0 or n == 0:
            continue
        length = circ * n / total
        parts.append(
            f'<circle cx="{cx}" cy="{cy}" r="{r:.1f}" fill="none" stroke="{GRADE_COLOURS.get(grade, "#666")}" '
            f'stroke-width="{width:.1f}" stroke-dasharray="{length:.2f} {circ - length:.2f}" '
            f'stroke-dashoffset="{-offset:.2f}" transform="rotate(-90 {cx} {cy})"/>'
        )
        offset += length
    parts.append(
        f'<text x="{cx}" y="{cy + 7}" text-anchor="middle" font-size="{size * 0.14:.0f}" font-weight="700" '
        f'fill="#1a1a1a">{total}</text></svg>'
    )
    return "".join(parts)


def stacked_bars(
    rows: list[tuple[str, dict[str, int]]],
    title: str,
    width: int = 560,
    bar: int = 22,
    links: list[str] | None = None,
) -> str:
    """Horizontal bars, one per row (region, institution), stacked by grade.

    ``links``: one URL per row; each row (label and bar) becomes a link (SVG ``<a>``), which
    keyboard users reach with Tab like any other link (the drill-down of the console)."""
    label_w = 170
    height = max(1, len(rows)) * (bar + 8) + 10
    top = max((sum(v.values()) for _, v in rows), default=0) or 1
    scale = (width - label_w - 50) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" {FONT}><title>{escape(title)}</title>'
    ]
    for i, (label, values) in enumerate(rows):
        y = 5 + i * (bar + 8)
        short = label if len(label) <= 14 else label[:13] + "…"
        href = links[i] if links and i < len(links) else None
        if href:
            parts.append(f'<a href="{escape(href)}" class="bar-link"><title>{escape(label)}</title>')
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar * 0.7:.1f}" text-anchor="end" font-size="12" fill="#1a1a1a">'
            f"{escape(short)}</text>"
        )
        x = float(label_w)
        for grade in ("A", "B", "C"):
            w = values.get(grade, 0) * scale
            if w > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}" fill="{GRADE_COLOURS[grade]}">'
                    f"<title>{escape(label)} {grade}: {values.get(grade, 0)}</title></rect>"
                )
                x += w
        parts.append(
            f'<text x="{x + 5:.1f}" y="{y + bar * 0.7:.1f}" font-size="12" fill="#333">{sum(values.values())}</text>'
        )
        if href:
            parts.append("</a>")
    parts.append("</svg>")
    return "".join(parts)


def trend_lines(points: list[tuple[str, dict[str, int]]], title: str, width: int = 560, height: int = 200) -> str:
    """One line per grade over the months."""
    left, bottom, right, top_pad = 40, 28, 30, 10  # room for the last month's label
    plot_w, plot_h = width - left - right, height - bottom - top_pad
    peak = max((max(v.values(), default=0) for _, v in points), default=0) or 1
    n = max(1, len(points) - 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" {FONT}><title>{escape(title)}</title>',
        f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#999"/>',
        f'<text x="{left - 4}" y="{top_pad + 10}" text-anchor="end" font-size="11" fill="#555">{peak}</text>',
        f'<text x="{left - 4}" y="{top_pad + plot_h}" text-anchor="end" font-size="11" fill="#555">0</text>',
    ]
    for i, (month, _) in enumerate(points):
        if i % max(1, len(points) // 6) == 0 or i == len(points) - 1:
            x = left + plot_w * i / n
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" font-size="11" fill="#555">'
                f"{escape(month)}</text>"
            )
    for grade in ("A", "B", "C"):
        coords = [
            f"{left + plot_w * i / n:.1f},{top_pad + plot_h - plot_h * v.get(grade, 0) / peak:.1f}"
            for i, (_, v) in enumerate(points)
        ]
        if coords:
            parts.append(
                f'<polyline fill="none" stroke="{GRADE_COLOURS[grade]}" stroke-width="2.5" points="{" ".join(coords)}">'
                f"<title>{grade}</title></polyline>"
            )
    parts.append("</svg>")
    return "".join(parts)


def bars(rows: list[tuple[str, int]], title: str, width: int = 560, bar: int = 18, colour: str = "#3d6fb3") -> str:
    """Plain horizontal bars (top failing rules, categories)."""
    label_w = 200
    height = max(1, len(rows)) * (bar + 6) + 8
    top = max((v for _, v in rows), default=0) or 1
    scale = (width - label_w - 50) / top
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'preserveAspectRatio="xMinYMin meet" role="img" {FONT}><title>{escape(title)}</title>'
    ]
    for i, (label, v) in enumerate(rows):
        y = 4 + i * (bar + 6)
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar * 0.75:.1f}" text-anchor="end" font-size="12">{escape(short)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{max(1.0, v * scale):.1f}" height="{bar}" fill="{colour}"/>'
            f'<text x="{label_w + v * scale + 5:.1f}" y="{y + bar * 0.75:.1f}" font-size="12">{v}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
