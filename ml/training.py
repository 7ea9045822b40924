"""Fine-tune (or train from scratch) a CNN backbone on labelled images; register it as an embedder.

``train_backbone`` trains ``arch`` with a linear classification head on the train split using
class-balanced sampling and augmentation (flip, small rotation and shear, colour jitter, random
resized crop, white fill), keeps the checkpoint with the best validation accuracy, and writes the
feature extractor (head dropped) plus a manifest under ``<cache>/backbones/``.
``register_trained_backbones`` adds every manifest to the ``ml.embedders`` registry, so
``reembed --model <name>`` can embed with it and activate it. It runs on CPU and uses CUDA when
present. Never downloads anything: ``--pretrained`` goes through the registry's loaders, which raise
``WeightsMissing`` when the weights file is absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ARCHS = ("resnet18", "efficientnet-lite0")
MANIFEST_DIR = "backbones"
# Images are padded to a white square this large before the random resized crop to the input size.
PAD_SIZE = 256

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "resnet18"
    pretrained: bool = False
    epochs: int = 1
    batch_size: int = 32
    learning_rate: float | None = None  # default: 1e-3 fine-tuning, 3e-3 from scratch
    seed: int = 0
    input_size: int = 224


@dataclass
class EpochStats:
    epoch: int
    train_loss: float
    train_accuracy: float
    val_accuracy: float
    seconds: float


@dataclass
class TrainResult:
    name: str
    version: str
    dimension: int
    best_epoch: int
    best_val_accuracy: float
    device: str
    history: list[EpochStats] = field(default_factory=list)
    checkpoint: str = ""


def _backbone(arch: str, pretrained: bool):
    """(feature extractor returning pooled features, its dimension, mean, std)."""
    import torch
    import torchvision

    from ml import embedders

    if arch == "resnet18":
        if pretrained:
            model = embedders.torch_model("resnet18")  # raises WeightsMissing, naming the file
            model.train()
        else:
            model = torchvision.models.resnet18(weights=None)
            model.fc = torch.nn.Identity()
            _kaiming(model)
        return model, 512, embedders.IMAGENET_MEAN, embedders.IMAGENET_STD
    if arch == "efficientnet-lite0":
        model = embedders.build_efficientnet_lite0(pretrained=pretrained)
        if not pretrained:
            _kaiming(model)
        return model, 1280, embedders.LITE_MEAN, embedders.LITE_STD
    raise ValueError(f"unknown architecture {arch!r}; use one of {', '.join(ARCHS)}")


def _kaiming(model) -> None:
    from torch import nn

    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.Linear):
            nn.init.kaiming_uniform_(module.weight, nonlinearity="relu")
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


def _transforms(input_size: int, mean: Sequence[float], std: Sequence[float], train: bool):
    from torchvision import transforms as T

    white = (255, 255, 255)
    normalise = [T.ToTensor(), T.Normalize(mean, std)]
    if not train:
        return T.Compose([T.Resize(input_size), *normalise])
    return T.Compose([
        T.RandomResizedCrop(input_size, scale=(0.7, 1.0), ratio=(0.85, 1.18)),
        T.RandomHorizontalFlip(),
        T.RandomAffine(degrees=10, shear=8, fill=white),
        T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
        *normalise,
    ])


class _Images:
    """(path, class index) pairs read as white-padded squares, then transformed."""

    def __init__(self, rows: Sequence[tuple[str, int]], transform):
        self.rows, self.transform = list(rows), transform

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        from ml.images import decode_image, subject_crop

        path, label = self.rows[i]
        with open(path, "rb") as handle:
            img = decode_image(handle.read(), max_pixels=40_000_000, draft_size=PAD_SIZE * 2)
        return self.transform(subject_crop(img.convert("RGB"), None, size=PAD_SIZE)), label


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))


def train_backbone(
    train: Sequence[tuple[str, str]], val: Sequence[tuple[str, str]], config: TrainConfig, name: str,
    cache_dir: Path, progress: Progress = lambda f, m: None,
) -> TrainResult:
    """Train on (image path, label) rows; keep the best validation epoch; write checkpoint + manifest."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, WeightedRandomSampler

    if config.arch not in ARCHS:
        raise ValueError(f"unknown architecture {config.arch!r}; use one of {', '.join(ARCHS)}")
    classes = sorted({label for _, label in train})
    if len(classes) < 2:
        raise ValueError("need images of at least two labels in the train split")
    if not val:
        raise ValueError("need a validation split to choose the best epoch")
    _seed_everything(config.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    features, dimension, mean, std = _backbone(config.arch, config.pretrained)
    net = nn.Sequential(features, nn.Linear(dimension, len(classes))).to(device)
    index = {c: i for i, c in enumerate(classes)}
    train_rows = [(p, index[c]) for p, c in train]
    val_rows = [(p, index[c]) for p, c in val if c in index]
    counts = np.bincount([c for _, c in train_rows], minlength=len(classes))
    weights = torch.tensor([1.0 / counts[c] for _, c in train_rows], dtype=torch.double)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = WeightedRandomSampler(weights, num_samples=len(train_rows), replacement=True, generator=generator)
    workers = min(4, os.cpu_count() or 1) if device == "cuda" else 0
    train_loader = DataLoader(_Images(train_rows, _transforms(config.input_size, mean, std, True)),
                              batch_size=config.batch_size, sampler=sampler, num_workers=workers)
    val_loader = DataLoader(_Images(val_rows, _transforms(config.input_size, mean, std, False)),
                            batch_size=config.batch_size * 2, num_workers=workers)
    lr = config.learning_rate or (1e-3 if config.pretrained else 3e-3)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, epochs=config.epochs,
                                                    steps_per_epoch=max(1, len(train_loader)))
    loss_fn = nn.CrossEntropyLoss()  # the sampler balances the classes already
    history: list[EpochStats] = []
    best_state, best_acc, best_epoch = None, -1.0, 0
    steps_total = config.epochs * (len(train_loader) + len(val_loader))
    step = 0
    for epoch in range(1, config.epochs + 1):
        started = time.monotonic()
        net.train()
        seen = correct = 0
        loss_sum = 0.0
        for x, y in train_loader:
            x, y = x.to(device), y.to(device)
            optimiser.zero_grad()
            logits = net(x)
            loss = loss_fn(logits, y)
            loss.backward()
            optimiser.step()
            scheduler.step()
            loss_sum += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            step += 1
            progress(step / steps_total, f"epoch {epoch}: train loss {loss_sum / seen:.3f}")
        net.eval()
        val_correct = val_seen = 0
        with torch.inference_mode():
            for x, y in val_loader:
                val_correct += int((net(x.to(device)).argmax(1).cpu() == y).sum())
                val_seen += len(y)
                step += 1
                progress(step / steps_total, f"epoch {epoch}: validating")
        stats = EpochStats(epoch, loss_sum / max(seen, 1), correct / max(seen, 1), val_correct / max(val_seen, 1),
                           time.monotonic() - started)
        history.append(stats)
        if stats.val_accuracy > best_acc:
            best_acc, best_epoch = stats.val_accuracy, epoch
            best_state = {k: v.detach().cpu().clone() for k, v in net[0].state_dict().items()}
    return _save(name, config, dimension, mean, std, classes, best_state, best_epoch, best_acc, history,
                 device, cache_dir)


def _save(name, config, dimension, mean, std, classes, state, best_epoch, best_acc, history, device,
          cache_dir: Path) -> TrainResult:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    data = buffer.getvalue()
    version = hashlib.sha256(data).hexdigest()[:12]
    folder = Path(cache_dir) / MANIFEST_DIR
    folder.mkdir(parents=True, exist_ok=True)
    checkpoint = folder / f"{name}-{version}.pt"
    checkpoint.write_bytes(data)
    result = TrainResult(name=name, version=version, dimension=dimension, best_epoch=best_epoch,
                         best_val_accuracy=best_acc, device=device, history=history, checkpoint=checkpoint.name)
    manifest = {"name": name, "arch": config.arch, "version": version, "dimension": dimension,
                "input_size": config.input_size, "mean": list(mean), "std": list(std), "classes": classes,
                "checkpoint": checkpoint.name, "config": asdict(config),
                "history": [asdict(h) for h in history], "best_epoch": best_epoch, "best_val_accuracy": best_acc}
    tmp = folder / f"{name}.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(folder / f"{name}.json")
    register_trained_backbones(cache_dir)
    return result


def _loader(arch: str, checkpoint: Path) -> Callable[[], object]:
    def build():
        import torch

        model, _dimension, _mean, _std = _backbone_skeleton(arch)
        model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
        return model

    return build


def _backbone_skeleton(arch: str):
    """The architecture with no weights loaded (they come from the checkpoint)."""
    import torch
    import torchvision

    from ml import embedders

    if arch == "resnet18":
        model = torchvision.models.resnet18(weights=None)
        model.fc = torch.nn.Identity()
        return model, 512, embedders.IMAGENET_MEAN, embedders.IMAGENET_STD
    return embedders.build_efficientnet_lite0(pretrained=False), 1280, embedders.LITE_MEAN, embedders.LITE_STD


def register_trained_backbones(cache_dir: Path | None = None) -> list[str]:
    """Add every trained backbone's manifest under ``cache_dir`` to the embedder registry."""
    from ml import embedders

    folder = Path(cache_dir or embedders.cache_dir()) / MANIFEST_DIR
    names = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        manifest = json.loads(path.read_text())
        checkpoint = folder / manifest["checkpoint"]
        if manifest.get("arch") not in ARCHS or not checkpoint.is_file():
            continue
        spec = embedders.EmbedderSpec(
            name=manifest["name"], version=f"{manifest['version']}/{embedders.PREPROCESS_VERSION}",
            dimension=int(manifest["dimension"]), input_size=int(manifest["input_size"]),
            mean=tuple(manifest["mean"]), std=tuple(manifest["std"]),
            description=f"{manifest['arch']} trained on {len(manifest['classes'])} labels "
                        f"(best validation accuracy {manifest['best_val_accuracy']:.3f})",
        )
        embedders.register(spec, _loader(manifest["arch"], checkpoint))
        names.append(spec.name)
    return names
