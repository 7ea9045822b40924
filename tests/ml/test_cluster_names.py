"""Automatic cluster names from the members' labels, and the stacked bar chart (no database)."""
from ml.clustering import default_name
from ml.plots import stacked_bars_svg


def test_name_lists_the_dominant_labels_with_their_shares():
    assert default_name(["dress"] * 62 + ["skirt"] * 21 + ["pants"] * 17, 0) == "dress 62% · skirt 21%"


def test_a_pure_cluster_and_a_stray_label_give_one_label():
    assert default_name(["shoes"] * 10, 1) == "shoes 100%"
    assert default_name(["dress"] * 9 + ["skirt"], 2) == "dress 90%"  # 10% is a stray, under the 15% bar


def test_unlabelled_members_count_in_the_shares_and_ties_go_by_name():
    assert default_name(["", "", "hat", "cap"], 3) == "cap 25% · hat 25%"
    assert default_name([], 5) == "style 5"


def test_bars_share_one_scale_and_escape_names():
    svg = stacked_bars_svg([("<big>", [6, 2]), ("small", [0, 1])], ["train", "test"], title="items", plot=300)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "&lt;big&gt;" in svg and "<big>" not in svg
    # The largest total (8) fills the plot: 6 of 8 is 225 px, 2 of 8 is 75 px; a zero draws nothing.
    assert 'width="225.0" height="18" fill="#3b5bdb"><title>&lt;big&gt; · train: 6</title>' in svg
    assert 'width="75.0" height="18" fill="#f08c00"><title>&lt;big&gt; · test: 2</title>' in svg
    assert "small · train" not in svg and "<title>small · test: 1</title>" in svg
