"""SVG charts (no database)."""
import numpy as np

from ml.plots import grouped_bars_svg, roc_svg


def test_roc_svg_labels_each_curve_and_escapes_names():
    y = np.array([True, False, True, False])
    svg = roc_svg({"<perfect>": (y, np.array([0.9, 0.1, 0.8, 0.2])),
                   "one class": (np.ones(4, bool), np.arange(4.0))})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    # Every positive outscores every negative: AUC 1. A one-class curve has no ROC and is left out.
    assert "&lt;perfect&gt; AUC 1.000" in svg
    assert "one class" not in svg and svg.count("<polyline") == 1


def test_grouped_bars_scale_each_value_on_zero_to_one_and_escape_names():
    svg = grouped_bars_svg([("<raw>", [0.5, 1.0]), ("served", [1.5, -0.2])], ["P@1", "P@10"], title="t", plot=200)
    widths = [float(part.split('"')[0]) for part in svg.split('width="')[2:]]  # after the svg's own width
    # Legend swatches are 10 wide; bars are plot × value, clipped to [0, 1] (a 0 bar still shows 1 px).
    assert widths == [10, 10, 100.0, 200.0, 200.0, 1.0]
    assert "&lt;raw&gt; · P@1: 0.500" in svg and "<raw>" not in svg
