"""The embedder registry on real photos and real weights (no Django, no database)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from ml import embedders
from ml.images import subject_crop
from tests.onnxgraph import assert_every_conv_reads_int8
from tests.photos import CLOTHING, clothing_photos


def photos(label: str, n: int) -> list[Image.Image]:
    paths = clothing_photos(label, n)
    assert len(paths) == n, f"demo photos missing under {CLOTHING}"
    return [subject_crop(Image.open(p), None, size=224) for p in paths]


def test_efficientnet_lite0_groups_same_class_photos_closer():
    embedder = embedders.get_embedder("efficientnet-lite0")
    labels = ["dress", "shoes", "hat", "pants"]
    vectors = {label: embedder.embed(photos(label, 5)) for label in labels}
    for v in vectors.values():
        assert v.shape == (5, embedders.get_spec("efficientnet-lite0").dimension) == (5, 1280)
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    within = np.mean([(v @ v.T)[np.triu_indices(5, 1)].mean() for v in vectors.values()])
    between = np.mean([(vectors[a] @ vectors[b].T).mean() for a, b in itertools.combinations(labels, 2)])
    assert within > between + 0.05, (within, between)


def test_onnx_matches_eager_torch():
    images = photos("skirt", 3)
    fast = embedders.get_embedder("efficientnet-lite0").embed(images)
    eager = embedders.get_embedder("efficientnet-lite0", backend="torch").embed(images)
    assert np.abs(fast - eager).max() < 1e-3


def test_the_int8_lite0_is_its_own_model_written_once_in_int8_and_keeps_the_fp32_neighbours(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLESITE_MODEL_CACHE", str(tmp_path))
    fp32, int8 = embedders.get_spec("efficientnet-lite0"), embedders.get_spec("efficientnet-lite0-int8")
    # Another space: vectors are keyed by (name, version), so the two are never mixed in one search.
    assert (int8.name, int8.version) != (fp32.name, fp32.version) and int8.dimension == fp32.dimension
    path = embedders.quantized_onnx("efficientnet-lite0-int8")
    written = path.stat().st_mtime_ns
    assert embedders.quantized_onnx("efficientnet-lite0-int8") == path and path.stat().st_mtime_ns == written
    assert_every_conv_reads_int8(path)
    with pytest.raises(ValueError, match="int8 copy of efficientnet-lite0"):
        embedders.torch_model("efficientnet-lite0-int8")

    images = [image for label in ("dress", "shoes", "hat", "pants") for image in photos(label, 4)]
    a = embedders.get_embedder("efficientnet-lite0").embed(images)
    b = embedders.get_embedder("efficientnet-lite0-int8").embed(images)
    # 7-bit weights (exact integer products on every x86 CPU) cost a little precision: on clothing-small
    # validation P@10 was 0.721 against float32's 0.714. Saturating 8-bit products on an AVX2-only CPU
    # gave cosines down to 0.65 (mean 0.92).
    cosines = (a * b).sum(axis=1)
    assert cosines.mean() > 0.95 and cosines.min() > 0.9, cosines
    # Each photo's nearest other photo in int8 is one of its three nearest in float32 for nearly all.
    kept = [np.argsort(-(b @ b[i]))[1] in np.argsort(-(a @ a[i]))[1:4] for i in range(len(images))]
    assert np.mean(kept) >= 0.9


def test_missing_resnet_weights_name_the_file_and_download_nothing(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("STYLESITE_MODEL_CACHE", str(tmp_path / "cache"))

    def no_download(*args, **kwargs):
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(embedders.WeightsMissing) as caught:
        embedders.get_embedder("resnet50")
    message = str(caught.value)
    assert "resnet50-0676ba61.pth" in message and str(tmp_path / "hub" / "checkpoints") in message


def test_resnet_weights_load_through_torchvision_when_the_file_is_present(tmp_path, monkeypatch):
    import torch
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    checkpoint = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    checkpoint.parent.mkdir(parents=True)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), checkpoint)
    model = embedders.torch_model("resnet18")
    with torch.inference_mode():
        assert model(torch.zeros(1, 3, 224, 224)).shape == (1, 512)


def test_unknown_model_lists_the_known_ones():
    with pytest.raises(embedders.UnknownModel, match="efficientnet-lite0"):
        embedders.get_spec("vgg99")
