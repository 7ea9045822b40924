"""train_backbone end to end on a tiny generated image set (no database, no weights needed)."""
import io

import numpy as np
import pytest
from PIL import Image

from ml import embedders
from ml.training import TrainConfig, register_trained_backbones, train_backbone


def photos(tmp_path, colour, n):
    paths = []
    for i in range(n):
        img = Image.new("RGB", (80, 100), (255, 255, 255))
        img.paste(colour, (10 + i, 15, 60 + i, 85))
        path = tmp_path / f"{colour[0]}-{i}.jpg"
        buf = io.BytesIO()
        img.save(buf, "JPEG")
        path.write_bytes(buf.getvalue())
        paths.append(str(path))
    return paths


def test_scratch_training_registers_an_embedder_with_its_best_epoch(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLESITE_MODEL_CACHE", str(tmp_path / "cache"))
    red, blue = photos(tmp_path, (220, 20, 20), 6), photos(tmp_path, (20, 20, 220), 3)
    train = [(p, "red") for p in red[:4]] + [(p, "blue") for p in blue[:2]]
    val = [(red[4], "red"), (blue[2], "blue")]
    config = TrainConfig(arch="resnet18", pretrained=False, epochs=2, batch_size=4, input_size=64)
    result = train_backbone(train, val, config, "test-scratch", tmp_path / "cache")
    assert [h.epoch for h in result.history] == [1, 2]
    assert result.best_val_accuracy == max(h.val_accuracy for h in result.history)
    assert (tmp_path / "cache" / "backbones" / "test-scratch.json").is_file()
    assert register_trained_backbones(tmp_path / "cache") == ["test-scratch"]
    spec = embedders.get_spec("test-scratch")
    assert spec.dimension == 512 and spec.version.startswith(result.version)
    vectors = embedders.get_embedder("test-scratch", backend="torch").embed([Image.open(red[5])])
    assert vectors.shape == (1, 512) and np.isclose(np.linalg.norm(vectors), 1, atol=1e-4)


def test_pretrained_without_weights_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    rows = [(p, "a") for p in photos(tmp_path, (200, 0, 0), 2)] + [(p, "b") for p in photos(tmp_path, (0, 0, 200), 2)]
    with pytest.raises(embedders.WeightsMissing, match="resnet18"):
        train_backbone(rows, rows, TrainConfig(arch="resnet18", pretrained=True), "x", tmp_path)
    with pytest.raises(ValueError, match="unknown architecture"):
        train_backbone(rows, rows, TrainConfig(arch="vgg"), "x", tmp_path)
