"""Background removal with the shared ISNet model on real garment photos (no Django)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml.background import (
    BackgroundModelMissing,
    flag_suspect_masks,
    foreground_share,
    get_session,
    remove_background,
)
from ml.images import composite_on_white
from tests.photos import clothing_photos


@pytest.mark.parametrize("label", ["dress", "shoes", "t-shirt"])
def test_mask_covers_a_sane_share_and_the_cutout_is_white_outside(label):
    photo = Image.open(clothing_photos(label, 1, "validation")[0]).convert("RGB")
    photo.thumbnail((512, 512))
    mask = remove_background(photo, model="isnet-general-use")
    assert mask.shape == (photo.height, photo.width) and mask.dtype == np.float32
    assert 0.05 < foreground_share(mask) < 0.95
    cut = np.asarray(composite_on_white(photo, mask))
    outside = mask < 0.02
    assert outside.any() and cut[outside].min() >= 250
    # The subject keeps its own pixels.
    inside = mask > 0.98
    assert np.abs(cut[inside].astype(int) - np.asarray(photo)[inside]).max() <= 6


def test_one_session_per_model_per_process():
    assert get_session("isnet-general-use") is get_session("isnet-general-use")


def test_a_model_whose_file_is_absent_is_refused_without_download(monkeypatch, tmp_path):
    monkeypatch.setenv("U2NET_HOME", str(tmp_path))
    with pytest.raises(BackgroundModelMissing, match="u2net_human_seg.*not found"):
        get_session("u2net_human_seg")


def test_outlier_and_empty_masks_are_suspect():
    shares = [0.30, 0.32, 0.35, 0.28, 0.31, 0.33, 0.29, 0.34, 0.90, 0.01]
    assert flag_suspect_masks(shares) == [False] * 8 + [True, True]
    assert flag_suspect_masks([0.9]) == [False]  # one mask alone is judged only by the absolute bounds
    assert flag_suspect_masks([0.995]) == [True]
