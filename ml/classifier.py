"""A style classifier head on embeddings: logistic regression or a small MLP, chosen on validation.

The trained head is kept as plain numpy layers (standardise, then affine/ReLU/.../softmax) so
predicting on an item page needs neither torch nor scikit-learn. The artifact carries a format
version and a fingerprint of its inputs (vectors, labels, splits), so a job whose inputs have not
changed can skip retraining. No Django here.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ml.npz import heads_read, heads_write

FORMAT_VERSION = 2
LOGREG_C = (0.1, 1.0)
MLP_HIDDEN = 512
MLP_MAX_EPOCHS = 80
MLP_PATIENCE = 12

Progress = Callable[[float, str], None]


def _noop(_fraction: float, _message: str) -> None:
    return None


def fingerprint(*parts: np.ndarray | Sequence[str] | str) -> str:
    """A sha256 over arrays (dtype, shape, bytes) and string lists, plus the artifact format."""
    digest = hashlib.sha256(f"style-head-v{FORMAT_VERSION}".encode())
    for part in parts:
        if isinstance(part, np.ndarray):
            arr = np.ascontiguousarray(part)
            digest.update(f"{arr.dtype}{arr.shape}".encode())
            digest.update(arr.tobytes())
        elif isinstance(part, str):
            digest.update(part.encode())
        else:
            digest.update("\x1f".join(part).encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


@dataclass
class StyleHead:
    """Standardisation plus affine layers with ReLU between them and softmax at the end."""

    kind: str
    classes: list[str]
    mean: np.ndarray
    scale: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]
    meta: dict = field(default_factory=dict)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        h = (np.asarray(x, dtype=np.float32) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            h = h @ w + b
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        h = h - h.max(axis=1, keepdims=True)
        e = np.exp(h)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: np.ndarray) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(x).argmax(axis=1)]

    def save(self, path: Path) -> None:
        """Write ``path`` (npz): arrays plus a JSON header with classes and metadata (callers write it atomically)."""
        heads_write(path, {"format": FORMAT_VERSION, "kind": self.kind, "classes": self.classes, "meta": self.meta},
                    self.layers, {"mean": self.mean, "scale": self.scale})

    @classmethod
    def load(cls, path: Path) -> StyleHead:
        header, layers, arrays = heads_read(path, FORMAT_VERSION)
        return cls(kind=header["kind"], classes=header["classes"], mean=arrays["mean"], scale=arrays["scale"],
                   layers=layers, meta=header["meta"])


@dataclass
class Report:
    classes: list[str]
    accuracy: float
    macro_f1: float
    per_class: list[dict]  # in class order: label, precision, recall (= per-class accuracy), f1, support
    confusion: list[list[int]]  # rows: true label, columns: predicted label
    n: int

    def as_dict(self) -> dict:
        return asdict(self)


def evaluate(head: StyleHead, x: np.ndarray, y: Sequence[str]) -> Report:
    """Overall and per-class accuracy, macro F1 and the confusion matrix over ``head.classes``."""
    classes = head.classes
    index = {c: i for i, c in enumerate(classes)}
    predicted = head.predict_proba(x).argmax(axis=1) if len(y) else np.zeros(0, dtype=int)
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true, pred in zip(y, predicted):
        if true in index:
            confusion[index[true], pred] += 1
    per_class: list[dict] = []
    f1s = []
    for i, c in enumerate(classes):
        tp = confusion[i, i]
        support = confusion[i].sum()
        predicted_as = confusion[:, i].sum()
        precision = tp / predicted_as if predicted_as else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"label": c, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                          "support": int(support)})
        if support:
            f1s.append(f1)
    total = confusion.sum()
    return Report(classes=list(classes), accuracy=float(np.trace(confusion) / total) if total else 0.0,
                  macro_f1=float(np.mean(f1s)) if f1s else 0.0, per_class=per_class,
                  confusion=confusion.tolist(), n=int(total))


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0).astype(np.float32)
    scale = x.std(axis=0).astype(np.float32)
    return mean, np.where(scale < 1e-6, 1.0, scale).astype(np.float32)


def _class_weights(y_idx: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(y_idx, minlength=n_classes).astype(np.float64)
    return np.where(counts > 0, len(y_idx) / (n_classes * np.maximum(counts, 1)), 0.0)


def _fit_logreg(xs: np.ndarray, y_idx: np.ndarray, n_classes: int, c: float, seed: int
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced", max_iter=300, random_state=seed)
    model.fit(xs, y_idx)
    coef = np.zeros((n_classes, xs.shape[1]), dtype=np.float32)
    bias = np.zeros(n_classes, dtype=np.float32)
    if len(model.classes_) == 2:  # scikit-learn keeps one row for two classes: softmax([0, z]) = sigmoid(z)
        coef[model.classes_[1]] = model.coef_[0]
        bias[model.classes_[1]] = model.intercept_[0]
    else:
        coef[model.classes_] = model.coef_
        bias[model.classes_] = model.intercept_
        bias[np.setdiff1d(np.arange(n_classes), model.classes_)] = -1e4  # classes absent from training
    return [(coef.T.copy(), bias)]


def _fit_mlp(xs: np.ndarray, y_idx: np.ndarray, xv: np.ndarray, yv_idx: np.ndarray, n_classes: int,
             seed: int, score: Callable[[list[tuple[np.ndarray, np.ndarray]]], float]
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """D-512-C with dropout and class-weighted cross-entropy; the best validation epoch is kept."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    net = nn.Sequential(nn.Dropout(0.2), nn.Linear(xs.shape[1], MLP_HIDDEN), nn.ReLU(), nn.Dropout(0.3),
                        nn.Linear(MLP_HIDDEN, n_classes))
    weights = torch.tensor(_class_weights(y_idx, n_classes), dtype=torch.float32)
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    xt, yt = torch.from_numpy(xs), torch.from_numpy(y_idx)
    generator = torch.Generator().manual_seed(seed)

    def export() -> list[tuple[np.ndarray, np.ndarray]]:
        linears = [m for m in net if isinstance(m, nn.Linear)]
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]

    best: tuple[float, list[tuple[np.ndarray, np.ndarray]]] = (-1.0, export())
    stale = 0
    for _epoch in range(MLP_MAX_EPOCHS):
        net.train()
        for batch in torch.randperm(len(xt), generator=generator).split(128):
            optimiser.zero_grad()
            loss_fn(net(xt[batch]), yt[batch]).backward()
            optimiser.step()
        net.eval()
        layers = export()
        current = score(layers)
        if current > best[0]:
            best, stale = (current, layers), 0
        else:
            stale += 1
            if stale >= MLP_PATIENCE:
                break
    return best[1]


def train_head(
    train_x: np.ndarray, train_y: Sequence[str], val_x: np.ndarray, val_y: Sequence[str],
    seed: int = 0, kinds: Sequence[str] = ("logreg", "mlp"), progress: Progress = _noop,
) -> tuple[StyleHead, list[dict]]:
    """Fit every candidate on the train split and keep the best macro F1 on validation.

    Returns the chosen head and one row per candidate (kind, parameters, validation scores).
    Without a validation split, a stratified fifth of the training rows stands in for it.
    """
    train_x = np.asarray(train_x, dtype=np.float32)
    train_y = list(train_y)
    classes = sorted(set(train_y))
    if len(classes) < 2:
        raise ValueError("need at least two labels in the train split to train a classifier")
    val_x = np.asarray(val_x, dtype=np.float32).reshape(-1, train_x.shape[1])
    val_y = list(val_y)
    if not val_y:
        from sklearn.model_selection import train_test_split

        idx_train, idx_val = train_test_split(np.arange(len(train_y)), test_size=0.2, random_state=seed,
                                              stratify=train_y if min(map(train_y.count, classes)) >= 2 else None)
        val_x, val_y = train_x[idx_val], [train_y[i] for i in idx_val]
        train_x, train_y = train_x[idx_train], [train_y[i] for i in idx_train]
    index = {c: i for i, c in enumerate(classes)}
    y_idx = np.array([index[c] for c in train_y], dtype=np.int64)
    keep = [i for i, c in enumerate(val_y) if c in index]
    val_x, val_y = val_x[keep], [val_y[i] for i in keep]
    mean, scale = _standardiser(train_x)
    xs, xv = (train_x - mean) / scale, (val_x - mean) / scale

    def head_of(kind: str, layers: list[tuple[np.ndarray, np.ndarray]], params: dict) -> StyleHead:
        return StyleHead(kind=kind, classes=classes, mean=mean, scale=scale, layers=layers, meta={"params": params})

    def val_score(kind: str, layers: list[tuple[np.ndarray, np.ndarray]]) -> float:
        return evaluate(head_of(kind, layers, {}), val_x, val_y).macro_f1

    candidates: list[tuple[StyleHead, dict]] = []
    plan = [("logreg", {"C": c}) for c in LOGREG_C if "logreg" in kinds]
    if "mlp" in kinds:
        plan.append(("mlp", {"hidden": MLP_HIDDEN}))
    for step, (kind, params) in enumerate(plan):
        if kind == "logreg":
            layers = _fit_logreg(xs, y_idx, len(classes), params["C"], seed)
        else:
            yv_idx = np.array([index[c] for c in val_y], dtype=np.int64)
            layers = _fit_mlp(xs, y_idx, xv, yv_idx, len(classes), seed, lambda ls: val_score("mlp", ls))
        head = head_of(kind, layers, params)
        report = evaluate(head, val_x, val_y)
        candidates.append((head, {"kind": kind, "params": params, "val_accuracy": report.accuracy,
                                  "val_macro_f1": report.macro_f1}))
        progress((step + 1) / len(plan), f"{kind} {params}: validation macro F1 {report.macro_f1:.3f}")
    chosen, row = max(candidates, key=lambda c: (c[1]["val_macro_f1"], c[1]["val_accuracy"]))
    chosen.meta["candidates"] = [r for _, r in candidates]
    return chosen, [r for _, r in candidates]
