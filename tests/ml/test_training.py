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


def test_top_block_fine_tuning_caches_once_trains_only_the_top_and_registers_the_served_model(tmp_path):
    import torch

    from ml.training import TOP_BLOCK_DIR, TopBlockConfig, top_block_features, train_top_blocks

    colours = {"red": (220, 20, 20), "green": (20, 200, 20), "blue": (20, 20, 220)}
    shots = {name: photos(tmp_path, colour, 5) for name, colour in colours.items()}
    train = [(p, name) for name, paths in shots.items() for p in paths[:4]]
    val = [(paths[4], name) for name, paths in shots.items()]
    config = TopBlockConfig(train_blocks=1, views=1, epochs=1, batch_size=4, input_size=256)
    cache = tmp_path / "cache"
    result = train_top_blocks(train, val, config, "test-top", cache)
    assert [h.epoch for h in result.history] == [1] and result.best_epoch == 1
    assert result.best_val_p10 == result.history[0].val_p10
    (folder,) = (cache / TOP_BLOCK_DIR).iterdir()
    cached = np.load(folder / "train.npy", mmap_mode="r")
    assert cached.dtype == np.float16 and cached.shape[:2] == (12, 2)  # plain view + one augmented view
    assert cached.shape[-2:] == (8, 8)  # both views at the configured 256 px (stride 32), not the base 224
    stamp = (folder / "train.npy").stat().st_mtime_ns
    train_top_blocks(train, val, config, "test-top", cache)
    assert (folder / "train.npy").stat().st_mtime_ns == stamp  # reused, not recomputed

    tuned = torch.load(cache / "backbones" / result.checkpoint, weights_only=True)
    pretrained = embedders.build_efficientnet_lite0().state_dict()
    assert torch.equal(tuned["net._blocks.0._depthwise_conv.weight"], pretrained["net._blocks.0._depthwise_conv.weight"])
    assert not torch.equal(tuned["net._conv_head.weight"], pretrained["net._conv_head.weight"])
    assert not torch.equal(tuned["net._blocks.15._project_conv.weight"], pretrained["net._blocks.15._project_conv.weight"])

    # The registered model embeds a photo as the cache's plain view does (up to fp16 rounding).
    from ml.images import decode_image, subject_crop
    from ml.vectors import l2_normalise

    served = embedders.get_embedder("test-top", backend="torch")
    assert served.spec.input_size == 256
    crop = subject_crop(decode_image(open(train[0][0], "rb").read(), max_pixels=10**7, draft_size=448), None, 256)
    from_cache = l2_normalise(top_block_features(cached[:1], config, cache / "backbones" / result.checkpoint))
    assert float(served.embed([crop])[0] @ from_cache[0]) > 0.999


def test_top_block_fine_tuning_rejects_what_it_cannot_do(tmp_path):
    from ml.training import TopBlockConfig, train_top_blocks

    rows = [(p, "a") for p in photos(tmp_path, (200, 0, 0), 2)] + [(p, "b") for p in photos(tmp_path, (0, 0, 200), 2)]
    with pytest.raises(ValueError, match="pretrained efficientnet-lite0"):
        train_top_blocks(rows, rows, TopBlockConfig(arch="resnet18"), "x", tmp_path)
    with pytest.raises(ValueError, match="at least two labels"):
        train_top_blocks(rows[:2], rows, TopBlockConfig(), "x", tmp_path)
    with pytest.raises(ValueError, match="train_blocks"):
        train_top_blocks(rows, rows, TopBlockConfig(train_blocks=0, epochs=1), "x", tmp_path)
    assert not (tmp_path / "backbones").exists()
