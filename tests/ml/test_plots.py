"""SVG charts (no database)."""
import numpy as np

from ml.plots import roc_svg


def test_roc_svg_labels_each_curve_and_escapes_names():
    y = np.array([True, False, True, False])
    svg = roc_svg({"<perfect>": (y, np.array([0.9, 0.1, 0.8, 0.2])),
                   "one class": (np.ones(4, bool), np.arange(4.0))})
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    # Every positive outscores every negative: AUC 1. A one-class curve has no ROC and is left out.
    assert "&lt;perfect&gt; AUC 1.000" in svg
    assert "one class" not in svg and svg.count("<polyline") == 1
