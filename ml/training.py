"""Fine-tune (or train from scratch) a CNN backbone on labelled images; register it as an embedder.

``train_backbone`` trains ``arch`` with a linear classification head on the train split using
class-balanced sampling and augmentation (flip, small rotation and shear, colour jitter, random
resized crop, white fill), keeps the checkpoint with the best validation accuracy, and writes the
feature extractor (head dropped) plus a manifest under ``<cache>/backbones/``.
``register_trained_backbones`` adds every manifest to the ``ml.embedders`` registry, so
``reembed --model <name>`` can embed with it and activate it. ``train_top_blocks`` is the practical
way on CPU: it fine-tunes only the last blocks of the pretrained EfficientNet-Lite0 over cached
activations of the frozen lower ones, and saves the same manifest. It runs on CPU and uses CUDA when
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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

ARCHS = ("resnet18", "efficientnet-lite0")
MANIFEST_DIR = "backbones"
# Images are padded to a white square this large (at a 224-px input; in proportion at other sizes, so
# the crops keep the input's detail) before the random resized crop to the input size.
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
    val_p10: float | None = None  # validation precision@10 of the pooled features (top-block runs)


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


def _augmentation(input_size: int) -> list:
    """The train-time augmentation on PIL images (white fill), before tensor conversion."""
    from torchvision import transforms as T

    return [
        T.RandomResizedCrop(input_size, scale=(0.7, 1.0), ratio=(0.85, 1.18)),
        T.RandomHorizontalFlip(),
        T.RandomAffine(degrees=10, shear=8, fill=(255, 255, 255)),
        T.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2, hue=0.02),
    ]


def _transforms(input_size: int, mean: Sequence[float], std: Sequence[float], train: bool):
    from torchvision import transforms as T

    normalise = [T.ToTensor(), T.Normalize(mean, std)]
    if not train:
        return T.Compose([T.Resize(input_size), *normalise])
    return T.Compose([*_augmentation(input_size), *normalise])


class _Images:
    """(path, class index) pairs read as white-padded squares, then transformed."""

    def __init__(self, rows: Sequence[tuple[str, int]], transform, input_size: int):
        self.rows, self.transform, self.pad = list(rows), transform, _pad_size(input_size)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        from ml.images import decode_image, subject_crop

        path, label = self.rows[i]
        with open(path, "rb") as handle:
            img = decode_image(handle.read(), max_pixels=40_000_000, draft_size=self.pad * 2)
        return self.transform(subject_crop(img.convert("RGB"), None, size=self.pad)), label


def _pad_size(input_size: int) -> int:
    return PAD_SIZE * input_size // 224


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
    train_loader = DataLoader(_Images(train_rows, _transforms(config.input_size, mean, std, True), config.input_size),
                              batch_size=config.batch_size, sampler=sampler, num_workers=workers)
    val_loader = DataLoader(_Images(val_rows, _transforms(config.input_size, mean, std, False), config.input_size),
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


# --- top-block fine-tuning on CPU ---------------------------------------------------------------
#
# Training the whole net on 2 cores costs 50-170 s per epoch on 300 images: nearly all of it is the
# lower blocks, whose weights barely need to move for a new domain. So the frozen lower blocks run
# once per image and view (the plain, served preprocessing plus ``views`` augmented ones), their
# activations are cached memory-mapped as fp16 .npy under ``<cache>/topblocks/<key>/``, and each
# epoch trains only the last ``train_blocks`` MBConv blocks, the 1×1 head conv and a linear head
# over those cached inputs (class-balanced sampling over images, one random view each).

TOP_BLOCK_DIR = "topblocks"
SERVE_DRAFT = 448  # the decode size the serving path uses before its subject crop


@dataclass(frozen=True)
class TopBlockConfig:
    arch: str = "efficientnet-lite0"
    pretrained: bool = True
    train_blocks: int = 2  # the last MBConv blocks trained, with the head conv and its batch norm
    views: int = 6  # augmented views cached per train image (plus the plain one)
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    seed: int = 0
    # Trained and served at 288 px, not the backbone's 224: garment labels hinge on collars, buttons and
    # sleeves. On clothing-small's validation split (bench/finetune.py) 288 px with 6 views gave P@10
    # 0.917 and classifier macro-F1 0.931, against 0.893 and 0.910 at 224 px with 8 views, for 1.65× the
    # embedding cost of the fine-tuned model only.
    input_size: int = 288
    threads: int = 2


def _lite0_parts(train_blocks: int):
    """(whole pretrained feature extractor, frozen lower part, trainable tail) of EfficientNet-Lite0."""
    import torch
    from torch import nn

    from ml import embedders

    features = embedders.build_efficientnet_lite0(pretrained=True)
    net = features.net
    cut = len(net._blocks) - train_blocks
    if not 1 <= train_blocks < len(net._blocks):
        raise ValueError(f"train_blocks must be from 1 to {len(net._blocks) - 1}")

    class Lower(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_stem, self.bn0 = net._conv_stem, net._bn0
            self.blocks = nn.ModuleList(net._blocks[:cut])

        def forward(self, x):
            x = net._swish(self.bn0(self.conv_stem(x)))
            for block in self.blocks:
                x = block(x)
            return x

    class Tail(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList(net._blocks[cut:])
            self.conv_head, self.bn1 = net._conv_head, net._bn1

        def forward(self, x):
            rate = net._global_params.drop_connect_rate or 0.0
            for i, block in enumerate(self.blocks, start=cut):
                x = block(x, drop_connect_rate=rate * i / len(net._blocks))
            x = net._swish(self.bn1(self.conv_head(x)))
            return torch.flatten(net._avg_pooling(x), 1)

    return features, Lower().eval().requires_grad_(False), Tail()


def _cache_key(config: TopBlockConfig, paths: Sequence[str]) -> str:
    from ml import embedders

    digest = hashlib.sha256(json.dumps([
        embedders.get_spec(config.arch).version, config.train_blocks, config.views, config.seed, config.input_size,
        SERVE_DRAFT, PAD_SIZE,
    ]).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _eta(started: float, fraction: float) -> str:
    if fraction <= 0:
        return "ETA --"
    left = (time.monotonic() - started) * (1 - fraction) / fraction
    return f"ETA {int(left // 60)}:{int(left % 60):02d}"


def lower_activations(paths: Sequence[str], config: TopBlockConfig, views: int, folder: Path, name: str,
                      progress: Progress = lambda f, m: None) -> np.ndarray:
    """(n, 1 + views, C, H, W) fp16 inputs of the trainable blocks, memory-mapped from ``folder/name.npy``.

    View 0 is each image exactly as the serving path embeds it (``embedders.preprocess`` of the
    ``config.input_size`` subject crop); views 1.. are ``train_backbone``'s augmentation, seeded. Computed once: a
    complete file is reused, a partial one (``.tmp``) is recomputed.
    """
    import torch
    from torchvision import transforms as T

    from ml import embedders
    from ml.images import decode_image, subject_crop

    target = Path(folder) / f"{name}.npy"
    if target.is_file():
        return np.load(target, mmap_mode="r")
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    _seed_everything(config.seed)
    _features, lower, _tail = _lite0_parts(config.train_blocks)
    # ONNX Runtime runs the frozen part 2-3× faster than eager torch on this CPU (as for embedding).
    run = embedders.onnx_runner(embedders.export_module_onnx(lower, target.with_suffix(".lower.onnx"),
                                                             config.input_size), config.threads)
    spec = replace(embedders.get_spec(config.arch), input_size=config.input_size)
    augment = T.Compose(_augmentation(config.input_size))
    probe = run(np.zeros((1, 3, config.input_size, config.input_size), dtype=np.float32))
    shape = (len(paths), 1 + views, *probe.shape[1:])
    tmp = target.with_suffix(".tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=shape)
    started = time.monotonic()
    per_batch = max(1, 64 // (1 + views))
    for start in range(0, len(paths), per_batch):
        crops = []
        for path in paths[start:start + per_batch]:
            with open(path, "rb") as handle:
                img = decode_image(handle.read(), max_pixels=40_000_000, draft_size=SERVE_DRAFT).convert("RGB")
            padded = subject_crop(img, None, size=_pad_size(config.input_size))
            crops += [subject_crop(img, None, spec.input_size), *(augment(padded) for _ in range(views))]
        acts = run(embedders.preprocess(crops, spec)).astype(np.float16)
        end = min(start + per_batch, len(paths))
        out[start:end] = acts.reshape(end - start, 1 + views, *acts.shape[1:])
        done = end / len(paths)
        progress(done, f"caching {name}: {end}/{len(paths)} images × {1 + views} views, {_eta(started, done)}")
    out.flush()
    del out
    os.replace(tmp, target)
    target.with_suffix(".lower.onnx").unlink()
    return np.load(target, mmap_mode="r")


def _tail_features(tail, acts: np.ndarray, batch_size: int = 128) -> np.ndarray:
    """Pooled features of the tail (eval mode) over cached fp16 inputs, as float32."""
    import torch

    tail.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(acts), batch_size):
            x = torch.from_numpy(np.asarray(acts[i:i + batch_size], dtype=np.float32))
            out.append(tail(x.contiguous(memory_format=torch.channels_last)).numpy())
    return np.concatenate(out) if out else np.zeros((0, 1280), dtype=np.float32)


@dataclass
class TopBlockResult(TrainResult):
    cache_seconds: float = 0.0
    train_seconds: float = 0.0
    best_val_p10: float = 0.0


def train_top_blocks(
    train: Sequence[tuple[str, str]], val: Sequence[tuple[str, str]], config: TopBlockConfig, name: str,
    cache_dir: Path, progress: Progress = lambda f, m: None,
) -> TopBlockResult:
    """Fine-tune the last ``config.train_blocks`` blocks of EfficientNet-Lite0 over cached activations.

    Keeps the epoch with the best validation precision@10 (validation images querying the train
    images, cosine on the pooled features: what the embedding is served for) and registers the whole
    backbone under ``name`` through the same manifest as ``train_backbone``.
    """
    import torch
    from torch import nn

    from ml.metrics import top_k
    from ml.vectors import l2_normalise

    if config.arch != "efficientnet-lite0" or not config.pretrained:
        raise ValueError("top-block fine-tuning starts from the pretrained efficientnet-lite0")
    classes = sorted({label for _, label in train})
    if len(classes) < 2:
        raise ValueError("need images of at least two labels in the train split")
    index = {c: i for i, c in enumerate(classes)}
    val = [(p, c) for p, c in val if c in index]
    if not val:
        raise ValueError("need a validation split to choose the best epoch")
    if config.epochs < 1 or config.views < 0 or config.batch_size < 2:
        raise ValueError("need epochs ≥ 1, views ≥ 0 and a batch size of at least 2")
    torch.set_num_threads(config.threads)
    folder = Path(cache_dir) / TOP_BLOCK_DIR / _cache_key(config, [p for p, _ in [*train, *val]])
    started = time.monotonic()
    train_acts = lower_activations([p for p, _ in train], config, config.views, folder, "train",
                                   lambda f, m: progress(0.5 * f, m))
    val_acts = lower_activations([p for p, _ in val], config, 0, folder, "validation",
                                 lambda f, m: progress(0.5 + 0.02 * f, m))
    cache_seconds = time.monotonic() - started

    _seed_everything(config.seed)
    features, _lower, tail = _lite0_parts(config.train_blocks)
    tail = tail.to(memory_format=torch.channels_last)
    head = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, len(classes)))
    y = np.array([index[c] for _, c in train], dtype=np.int64)
    val_y = np.array([index[c] for _, c in val], dtype=np.int64)
    counts = np.bincount(y, minlength=len(classes))
    weights = torch.tensor(1.0 / counts[y], dtype=torch.double)
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    steps_per_epoch = max(1, len(train) // config.batch_size)
    params = [*tail.parameters(), *head.parameters()]
    optimiser = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.learning_rate, epochs=config.epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)  # the sampler balances classes
    history: list[EpochStats] = []
    best_state, best_p10, best_acc, best_epoch = None, -1.0, 0.0, 0
    train_started = time.monotonic()
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.monotonic()
        tail.train()
        head.train()
        order = torch.multinomial(weights, steps_per_epoch * config.batch_size, replacement=True,
                                  generator=generator).numpy()
        loss_sum = 0.0
        correct = seen = 0
        for step in range(steps_per_epoch):
            rows = np.sort(order[step * config.batch_size:(step + 1) * config.batch_size])
            picked = rng.integers(0, config.views + 1, size=len(rows))
            x = torch.from_numpy(np.asarray(train_acts[rows, picked], dtype=np.float32))
            target = torch.from_numpy(y[rows])
            optimiser.zero_grad()
            logits = head(tail(x.contiguous(memory_format=torch.channels_last)))
            loss = loss_fn(logits, target)
            loss.backward()
            optimiser.step()
            scheduler.step()
            loss_sum += loss.item() * len(rows)
            correct += int((logits.argmax(1) == target).sum())
            seen += len(rows)
            done = ((epoch - 1) * steps_per_epoch + step + 1) / (config.epochs * steps_per_epoch)
            progress(0.52 + 0.48 * done, f"epoch {epoch}/{config.epochs}: train loss {loss_sum / seen:.3f}, "
                                         f"{_eta(train_started, done)}")
        gallery = _tail_features(tail, train_acts[:, 0])
        queries = _tail_features(tail, val_acts[:, 0])
        head.eval()
        with torch.inference_mode():
            val_acc = float((head(torch.from_numpy(queries)).argmax(1).numpy() == val_y).mean())
        neighbours = top_k(l2_normalise(queries), l2_normalise(gallery), 10)
        p10 = float((y[neighbours] == val_y[:, None]).mean())
        stats = EpochStats(epoch, loss_sum / seen, correct / seen, val_acc, time.monotonic() - epoch_started, p10)
        history.append(stats)
        if p10 > best_p10:
            best_p10, best_acc, best_epoch = p10, val_acc, epoch
            best_state = {k: v.detach().clone() for k, v in tail.state_dict().items()}
    tail.load_state_dict(best_state)
    train_seconds = time.monotonic() - train_started
    state = {k: v.detach().cpu().contiguous().clone() for k, v in features.state_dict().items()}
    from ml import embedders

    saved = _save(name, config, 1280, embedders.LITE_MEAN, embedders.LITE_STD, classes, state, best_epoch, best_acc, history, "cpu",
                  cache_dir)
    return TopBlockResult(**asdict(saved) | {"history": history}, cache_seconds=cache_seconds,
                          train_seconds=train_seconds, best_val_p10=best_p10)



def top_block_features(acts: np.ndarray, config: TopBlockConfig, checkpoint: Path | None = None) -> np.ndarray:
    """Pooled features of the cached plain views (view 0) through the tail: the pretrained tail, or
    the fine-tuned one of ``checkpoint`` (a saved backbone). Equal, up to the cache's fp16 rounding,
    to embedding the same photos with the registered model: for benches that score many spaces."""
    import torch

    torch.set_num_threads(config.threads)
    features, _lower, tail = _lite0_parts(config.train_blocks)
    if checkpoint is not None:
        features.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return _tail_features(tail.to(memory_format=torch.channels_last), acts[:, 0])
