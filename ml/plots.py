"""Small self-contained SVG charts for the admin and report pages (no plotting library).

Every name in a chart is HTML-escaped here, so callers may mark the SVG safe.
"""
from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # ml.classifier re-exports confusion_svg, so importing it at run time would be circular
    from ml.classifier import Report


def confusion_svg(report: Report, cell: int = 34) -> str:
    """The confusion matrix as a standalone SVG heat map (rows: true label, columns: predicted)."""
    classes = report.classes
    n = len(classes)
    margin = 10 + 7 * max((len(c) for c in classes), default=4)
    size = margin + n * cell + 10
    rows = np.asarray(report.confusion, dtype=float).reshape(n, n)
    totals = rows.sum(axis=1, keepdims=True)
    shares = np.divide(rows, totals, out=np.zeros_like(rows), where=totals > 0)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" '
             f'height="{size}" font-family="sans-serif" font-size="11" role="img" '
             f'aria-label="confusion matrix">']
    for i, name in enumerate(classes):
        y = margin + i * cell + cell / 2 + 4
        parts.append(f'<text x="{margin - 6}" y="{y}" text-anchor="end">{escape(name)}</text>')
        x = margin + i * cell + cell / 2
        parts.append(f'<text x="{x}" y="{margin - 6}" text-anchor="start" '
                     f'transform="rotate(-60 {x} {margin - 6})">{escape(name)}</text>')
    for i in range(n):
        for j in range(n):
            share = shares[i, j]
            colour = f"rgba(37,99,235,{0.04 + 0.96 * share:.2f})"
            x, y = margin + j * cell, margin + i * cell
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{colour}" '
                         f'stroke="#fff"><title>{escape(classes[i])} → {escape(classes[j])}: '
                         f'{int(rows[i, j])}</title></rect>')
            if rows[i, j]:
                fill = "#fff" if share > 0.5 else "#222"
                parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" '
                             f'fill="{fill}">{int(rows[i, j])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def roc_svg(curves: dict[str, tuple[np.ndarray, np.ndarray]], width: int = 420, height: int = 420) -> str:
    """ROC curves as a small self-contained SVG (no plotting library): ``{name: (y_true, score)}``.

    Each curve is labelled with its AUC; the diagonal is chance.
    """
    from sklearn.metrics import roc_auc_score, roc_curve

    pad, size = 40, min(width, height) - 60
    colours = ["#868e96", "#f08c00", "#3b5bdb", "#2b8a3e", "#c92a2a", "#862e9c"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="ROC curves" font-family="sans-serif" font-size="12">',
             f'<rect x="{pad}" y="10" width="{size}" height="{size}" fill="#fff" stroke="#adb5bd"/>',
             f'<line x1="{pad}" y1="{10 + size}" x2="{pad + size}" y2="10" stroke="#dee2e6" stroke-dasharray="4 4"/>',
             f'<text x="{pad + size / 2}" y="{size + 42}" text-anchor="middle">false positive rate</text>',
             f'<text x="12" y="{10 + size / 2}" text-anchor="middle" transform="rotate(-90 12 {10 + size / 2})">'
             'true positive rate</text>']
    for t in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{pad + t * size}" y="{size + 22}" text-anchor="middle" fill="#868e96">{t:g}</text>')
        parts.append(f'<text x="{pad - 4}" y="{14 + (1 - t) * size}" text-anchor="end" fill="#868e96">{t:g}</text>')
    for k, (name, (y, s)) in enumerate(curves.items()):
        y = np.asarray(y, dtype=bool)
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, s)
        points = " ".join(f"{pad + f * size:.1f},{10 + (1 - t) * size:.1f}" for f, t in zip(fpr, tpr))
        colour = colours[k % len(colours)]
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{pad + size - 8}" y="{size - 8 - 16 * k}" text-anchor="end" fill="{colour}">'
                     f'{escape(name)} AUC {roc_auc_score(y, s):.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


BAR_COLOURS = ("#3b5bdb", "#f08c00", "#2b8a3e", "#adb5bd", "#c92a2a", "#862e9c")


def stacked_bars_svg(rows: list[tuple[str, list[int]]], series: list[str], *, title: str,
                     colours: tuple[str, ...] = BAR_COLOURS, plot: int = 240, bar: int = 18) -> str:
    """Horizontal stacked bars, one per ``(name, counts)`` row, with a legend of ``series``.

    Bars share one scale (the largest row total fills ``plot`` pixels), so unequal rows — class
    imbalance — read at a glance; each bar ends with its total. The chart is drawn at its natural
    size and shrinks with its container (``max-width: 100%`` in the page's CSS).
    """
    name_width = 14 + round(7.5 * max((len(name) for name, _ in rows), default=4))
    legend_width = sum(26 + round(7.5 * len(name)) for name in series)
    width = name_width + max(plot + 44, legend_width)
    top = 26
    height = top + len(rows) * (bar + 6) + 4
    largest = max((sum(counts) for _, counts in rows), default=0) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" font-family="sans-serif" font-size="12" role="img" '
             f'aria-label="{escape(title)}" class="bars">']
    x = name_width
    for i, name in enumerate(series):
        colour = colours[i % len(colours)]
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="15">{escape(name)}</text>')
        x += 26 + round(7.5 * len(name))
    for r, (name, counts) in enumerate(rows):
        y = top + r * (bar + 6)
        parts.append(f'<text x="{name_width - 6}" y="{y + bar - 5}" text-anchor="end">{escape(name)}</text>')
        x = float(name_width)
        for i, count in enumerate(counts):
            if not count:
                continue
            w = plot * count / largest
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar}" '
                         f'fill="{colours[i % len(colours)]}"><title>{escape(name)} · {escape(series[i])}: '
                         f'{count}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar - 5}" fill="#495057">{sum(counts)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def grouped_bars_svg(rows: list[tuple[str, list[float]]], series: list[str], *, title: str,
                     colours: tuple[str, ...] = BAR_COLOURS, plot: int = 240, bar: int = 10) -> str:
    """Horizontal grouped bars of scores in [0, 1]: one group per ``(name, values)`` row, one bar per
    ``series`` entry (e.g. P@1, P@5, P@10 per space of a retrieval report), each ending with its value.

    All bars share the 0–1 scale, so rows compare at a glance; a value outside it is clipped.
    """
    name_width = 14 + round(7.5 * max((len(name) for name, _ in rows), default=4))
    legend_width = sum(26 + round(7.5 * len(name)) for name in series)
    width = name_width + max(plot + 44, legend_width)
    top = 26
    group = len(series) * (bar + 2) + 8
    height = top + len(rows) * group + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" font-family="sans-serif" font-size="12" role="img" '
             f'aria-label="{escape(title)}" class="bars">']
    x = name_width
    for i, name in enumerate(series):
        parts.append(f'<rect x="{x}" y="6" width="10" height="10" fill="{colours[i % len(colours)]}"/>'
                     f'<text x="{x + 14}" y="15">{escape(name)}</text>')
        x += 26 + round(7.5 * len(name))
    for r, (name, values) in enumerate(rows):
        y0 = top + r * group
        parts.append(f'<text x="{name_width - 6}" y="{y0 + group / 2:.1f}" text-anchor="end">{escape(name)}</text>')
        for i, value in enumerate(values):
            y = y0 + i * (bar + 2)
            w = plot * min(max(float(value), 0.0), 1.0)
            parts.append(f'<rect x="{name_width}" y="{y}" width="{max(w, 1):.1f}" height="{bar}" '
                         f'fill="{colours[i % len(colours)]}"><title>{escape(name)} · {escape(series[i])}: '
                         f'{value:.3f}</title></rect>'
                         f'<text x="{name_width + w + 4:.1f}" y="{y + bar - 1}" font-size="10" '
                         f'fill="#495057">{value:.3f}</text>')
    parts.append("</svg>")
    return "".join(parts)


def lines_svg(series: dict[str, tuple[np.ndarray, np.ndarray]], x_label: str, y_label: str,
              y_range: tuple[float, float] = (0.5, 1.0), width: int = 520, height: int = 320) -> str:
    """Line chart of ``{name: (x, y)}`` (e.g. AUC after n votes, one line per strategy), points marked
    and the last value written at the end of each line (nudged apart so they never overlap)."""
    pad_l, pad_t, w, h = 46, 10, width - 230, height - 60
    x_all = np.concatenate([np.asarray(x, dtype=float) for x, _ in series.values()]) if series else np.zeros(1)
    x0, x1 = float(x_all.min()), float(max(x_all.max(), x_all.min() + 1))
    y0, y1 = y_range
    colours = ["#3b5bdb", "#868e96", "#f08c00", "#2b8a3e", "#c92a2a", "#862e9c"]

    def px(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return pad_t + (1 - (min(max(y, y0), y1) - y0) / (y1 - y0)) * h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(y_label)} by {escape(x_label)}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect x="{pad_l}" y="{pad_t}" width="{w}" height="{h}" fill="#fff" stroke="#adb5bd"/>',
             f'<text x="{pad_l + w / 2}" y="{height - 8}" text-anchor="middle">{escape(x_label)}</text>',
             f'<text x="12" y="{pad_t + h / 2}" text-anchor="middle" transform="rotate(-90 12 {pad_t + h / 2})">'
             f'{escape(y_label)}</text>']
    for t in np.linspace(y0, y1, 6):
        parts.append(f'<text x="{pad_l - 4}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#868e96">{t:.2f}</text>')
    for x in sorted(set(x_all.tolist())):
        parts.append(f'<text x="{px(x):.1f}" y="{pad_t + h + 16}" text-anchor="middle" fill="#868e96">{x:g}</text>')
    labels = []
    for k, (name, (x, y)) in enumerate(series.items()):
        colour = colours[k % len(colours)]
        points = [(px(float(a)), py(float(b))) for a, b in zip(x, y)]
        parts.append(f'<polyline points="{" ".join(f"{a:.1f},{b:.1f}" for a, b in points)}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts.extend(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{colour}"/>' for a, b in points)
        if points:
            labels.append([points[-1][1] + 4, points[-1][0] + 8, colour, f"{escape(name)} {float(y[-1]):.3f}"])
    labels.sort()
    for j in range(1, len(labels)):
        labels[j][0] = max(labels[j][0], labels[j - 1][0] + 14)
    parts.extend(f'<text x="{x:.1f}" y="{y:.1f}" fill="{colour}">{text}</text>' for y, x, colour, text in labels)
    parts.append("</svg>")
    return "".join(parts)
