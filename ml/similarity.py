"""A learned similarity head over frozen backbone vectors, fitted per collection on its labels.

The backbone's vectors know what things look like but not what the catalogue calls them: a
patterned dress sits next to patterned shirts. A small head fitted on the train split's labels
maps a raw unit vector to a low-dimensional unit vector in which same-label items are close.
Candidates (all fitted on train, compared on validation precision@10, validation items querying
the train split as the gallery):

- ``lda``: a shrinkage LDA projection (C - 1 dimensions, closed form, a second or two);
- ``mlp``: D-512-ReLU-128-C trained with cross-entropy; the 128-d penultimate layer is the space;
- ``proxy``: the same body, its L2-normalised output trained against one learnable proxy per
  label with a scaled cosine softmax (normalised-softmax / proxy loss).

A learned space alone can collapse a label into one blob, so the space that is *served* blends
raw and learned similarity: ``[sqrt(w)·raw, sqrt(1-w)·learned]`` (both unit length) has cosine
``w·cos_raw + (1-w)·cos_learned`` and unit length, so pgvector's cosine HNSW index needs no
change. ``w`` is chosen on validation among the weights whose top-10 lists still share at least
``MIN_OVERLAP`` with the raw lists, by the one-standard-error rule (:func:`within_one_se`): the one
most like raw whose precision@10 is within one standard error of the best. Learned similarity is
blended in only as far as it measurably helps; beyond that it would trade visual likeness for a
gain the validation split cannot tell from noise.

The head is plain numpy layers (affine, ReLU between), so embedding needs no torch. No Django.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ml.npz import heads_read, heads_write
from ml.metrics import overlap_at_k, retrieval_scores, top_k
from ml.vectors import l2_normalise

FORMAT_VERSION = 1
KINDS = ("lda", "mlp", "proxy")
# What a collection's job tries: on clothing-small the MLP scored no better on validation (served P@10
# 0.871 against 0.872 for proxy) at five times the fitting time (bench/similarity.py compares all three).
DEFAULT_KINDS = ("lda", "proxy")
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
MIN_OVERLAP = 0.3  # of the served top-10 with the raw top-10 (validation), so visual likeness survives
SCORE_K = 10
HIDDEN = 512
EMBED_DIM = 128
MAX_EPOCHS = 40
BATCH = 256
LEARNING_RATE = 2e-3
PATIENCE = 6
PROXY_SCALE = 16.0
# The served vector (raw + learned) must fit pgvector's 2,000-dimension HNSW limit for halfvec.
MAX_SERVED_DIMENSION = 2000
NAME_MARK = "+sim-"

Progress = Callable[[float, str], None]
Layers = list[tuple[np.ndarray, np.ndarray]]


def _noop(_fraction: float, _message: str) -> None:
    return None


@dataclass
class SimilarityHead:
    """A learned projection plus the blend weight of the served space, for one backbone version."""

    kind: str
    base: str  # the backbone's registry name
    base_version: str
    weight: float  # w: the raw share of the served cosine
    layers: Layers  # affine layers applied to the raw unit vector, ReLU between them
    classes: list[str]
    fingerprint: str  # of the inputs it was fitted on (see ``fingerprint``)
    meta: dict = field(default_factory=dict)

    @property
    def input_dimension(self) -> int:
        return int(self.layers[0][0].shape[0])

    @property
    def learned_dimension(self) -> int:
        return int(self.layers[-1][0].shape[1])

    @property
    def dimension(self) -> int:
        """Of the served vector: raw and learned side by side."""
        return self.input_dimension + self.learned_dimension

    @property
    def model_name(self) -> str:
        """The embedder registry name of backbone → head (one per fitted head)."""
        return f"{self.base}{NAME_MARK}{self.fingerprint[:12]}"

    @property
    def model_version(self) -> str:
        return f"{self.base_version}{NAME_MARK}{self.fingerprint[:16]}-w{self.weight:g}"

    def learned(self, raw: np.ndarray) -> np.ndarray:
        """(n, learned_dimension) unit vectors of the learned space."""
        return _apply(self.layers, l2_normalise(np.asarray(raw, dtype=np.float32)))

    def serve(self, raw: np.ndarray) -> np.ndarray:
        """(n, dimension) unit vectors of the served space from raw (unnormalised or unit) vectors."""
        return blend(l2_normalise(np.asarray(raw, dtype=np.float32)), self.learned(raw), self.weight)

    def save(self, path: Path) -> None:
        """Write ``path`` (npz): the layers plus a JSON header (callers write it atomically)."""
        heads_write(path, {"format": FORMAT_VERSION, "kind": self.kind, "base": self.base,
                           "base_version": self.base_version, "weight": self.weight, "classes": self.classes,
                           "fingerprint": self.fingerprint, "meta": self.meta}, self.layers)

    @classmethod
    def load(cls, path: Path) -> SimilarityHead:
        header, layers, _ = heads_read(path, FORMAT_VERSION)
        return cls(kind=header["kind"], base=header["base"], base_version=header["base_version"],
                   weight=float(header["weight"]), layers=layers, classes=header["classes"],
                   fingerprint=header["fingerprint"], meta=header["meta"])


def _apply(layers: Layers, x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return l2_normalise(h.astype(np.float32))


def blend(raw_unit: np.ndarray, learned_unit: np.ndarray, weight: float) -> np.ndarray:
    """``[sqrt(w)·raw, sqrt(1-w)·learned]``: its cosine is ``w·cos_raw + (1-w)·cos_learned``."""
    return np.hstack([np.sqrt(weight) * raw_unit, np.sqrt(1.0 - weight) * learned_unit]).astype(np.float32)


def fingerprint(train_x: np.ndarray, train_y: Sequence[str], val_x: np.ndarray, val_y: Sequence[str],
                base: str) -> str:
    """Changes whenever the labels, the vectors or the backbone change (then the head is refitted)."""
    from ml.classifier import fingerprint as digest

    return digest(f"similarity-head-v{FORMAT_VERSION}", train_x, list(train_y), val_x, list(val_y), base)


def _hits(neighbours: np.ndarray, query_y: np.ndarray, gallery_y: np.ndarray, k: int = SCORE_K) -> np.ndarray:
    """Per query, the share of its top ``k`` that has its label (precision@k of each query)."""
    return (np.asarray(gallery_y)[neighbours[:, :k]] == np.asarray(query_y)[:, None]).mean(axis=1)


def _precision(neighbours: np.ndarray, query_y: np.ndarray, gallery_y: np.ndarray, k: int = SCORE_K) -> float:
    return float(_hits(neighbours, query_y, gallery_y, k).mean())


def standard_error(per_query: np.ndarray) -> float:
    """Standard error of the mean of per-query scores (0 for fewer than two queries)."""
    n = len(per_query)
    return float(np.std(per_query, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def within_one_se(rows: Sequence[dict], prefer: str, score: str = "p@10", floor: float | None = None) -> dict:
    """The one-standard-error rule (Breiman et al., *Classification and Regression Trees*, 1984):
    of the rows whose ``score`` reaches ``floor`` (by default the best row's score minus its
    standard error, ``score + "_se"``), the one with the largest ``prefer`` (overlap with the raw
    lists: visual likeness); the best row when none reaches it.

    Choosing the plain best over-fits the validation split twice: its score is the luckiest of
    several, and a constraint it only just meets there (overlap ≥ ``MIN_OVERLAP``) is likely to be
    missed on new queries. A gain smaller than the noise of its own measurement is not worth the
    visual likeness it costs.
    """
    best = max(rows, key=lambda r: r[score])
    if floor is None:
        floor = best[score] - best[f"{score}_se"]
    close = [r for r in rows if r[score] >= floor - 1e-12] or [best]
    return max(close, key=lambda r: (r[prefer], r[score]))


# --- fitting -------------------------------------------------------------------------------------

def _fit_lda(x: np.ndarray, y: np.ndarray) -> Layers:
    """Shrinkage LDA; its transform is affine, read off as one layer."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(x, y)
    zero = lda.transform(np.zeros((1, x.shape[1]), dtype=np.float64))[0]
    weights = lda.transform(np.eye(x.shape[1], dtype=np.float64)) - zero
    return [(weights.astype(np.float32), zero.astype(np.float32))]


def _fit_torch(kind: str, x: np.ndarray, y: np.ndarray, n_classes: int, seed: int,
               score: Callable[[Layers], float], progress: Progress) -> tuple[Layers, dict]:
    """Train the body D-512-ReLU-128 with ``kind``'s loss; keep the epoch with the best ``score``."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    if HIDDEN:
        body = nn.Sequential(nn.Dropout(0.2), nn.Linear(x.shape[1], HIDDEN), nn.ReLU(), nn.Dropout(0.2),
                             nn.Linear(HIDDEN, EMBED_DIM))
    else:
        body = nn.Sequential(nn.Dropout(0.2), nn.Linear(x.shape[1], EMBED_DIM))
    if kind == "mlp":
        top = nn.Linear(EMBED_DIM, n_classes)

        def loss_of(emb, target):
            return nn.functional.cross_entropy(top(torch.relu(emb)), target, weight=class_weights)
    else:
        top = nn.Linear(EMBED_DIM, n_classes, bias=False)  # its rows are the proxies

        def loss_of(emb, target):
            cosine = nn.functional.normalize(emb) @ nn.functional.normalize(top.weight).T
            return nn.functional.cross_entropy(PROXY_SCALE * cosine, target, weight=class_weights)

    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    class_weights = torch.tensor(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0),
                                 dtype=torch.float32)
    params = [*body.parameters(), *top.parameters()]
    optimiser = torch.optim.AdamW(params, lr=LEARNING_RATE, weight_decay=1e-2)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    generator = torch.Generator().manual_seed(seed)

    def export() -> Layers:
        linears = [m for m in body if isinstance(m, nn.Linear)]
        return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in linears]

    best: tuple[float, Layers, int] = (-1.0, export(), 0)
    stale = 0
    epoch = 0
    for epoch in range(1, MAX_EPOCHS + 1):
        body.train()
        for batch in torch.randperm(len(xt), generator=generator).split(BATCH):
            optimiser.zero_grad()
            loss_of(body(xt[batch]), yt[batch]).backward()
            optimiser.step()
        body.eval()
        layers = export()
        current = score(layers)
        progress(epoch / MAX_EPOCHS, f"{kind} epoch {epoch}: validation P@10 {current:.3f}")
        if current > best[0]:
            best, stale = (current, layers, epoch), 0
        else:
            stale += 1
            if stale >= PATIENCE:
                break
    return best[1], {"best_epoch": best[2], "epochs": epoch}


@dataclass
class Candidate:
    kind: str
    layers: Layers
    weight: float
    scores: dict  # validation: learned-only and served P@10, overlap@10 with raw, per weight
    seconds: float


def weight_rows(raw_q: np.ndarray, raw_g: np.ndarray, learned_q: np.ndarray, learned_g: np.ndarray,
                query_y: np.ndarray, gallery_y: np.ndarray, weights: Sequence[float] | None = None) -> list[dict]:
    """One row per blend weight (default ``BLEND_WEIGHTS``): validation P@10 with its standard error,
    and overlap@10 with raw."""
    raw_top = top_k(raw_q, raw_g, SCORE_K)
    rows = []
    for w in BLEND_WEIGHTS if weights is None else weights:
        served = top_k(blend(raw_q, learned_q, w), blend(raw_g, learned_g, w), SCORE_K)
        hits = _hits(served, query_y, gallery_y)
        rows.append({"weight": float(w), "p@10": float(hits.mean()), "p@10_se": standard_error(hits),
                     "overlap@10": overlap_at_k(served, raw_top)})
    return rows


def choose_weight(rows: Sequence[dict], floor: float | None = None) -> dict:
    """Of ``weight_rows`` that keep overlap@10 ≥ ``MIN_OVERLAP`` (or, if none does, the one with
    the most), the row with the most overlap whose P@10 reaches ``floor`` (:func:`within_one_se`)."""
    return within_one_se(_allowed(rows), prefer="overlap@10", floor=floor)


def _allowed(rows: Sequence[dict]) -> list[dict]:
    return [r for r in rows if r["overlap@10"] >= MIN_OVERLAP] or [max(rows, key=lambda r: r["overlap@10"])]


def fit_head(train_x: np.ndarray, train_y: Sequence[str], val_x: np.ndarray, val_y: Sequence[str], *,
             base: str, base_version: str, kinds: Sequence[str] = KINDS, seed: int = 0,
             progress: Progress = _noop) -> tuple[SimilarityHead, list[dict]]:
    """Fit every kind on train; choose the kind and its blend weight on validation by one
    one-standard-error rule over every (kind, weight) that keeps overlap ≥ ``MIN_OVERLAP``: the most
    overlap with raw among those whose served P@10 is within one standard error of the best.

    ``train_x``/``val_x`` are the backbone's unit vectors. Without validation rows a stratified fifth
    of train stands in. Returns the head and one row per candidate.
    """
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown head kind(s) {sorted(unknown)}; use {', '.join(KINDS)}")
    train_x = np.asarray(train_x, dtype=np.float32)
    train_y = list(train_y)
    classes = sorted(set(train_y))
    if len(classes) < 2:
        raise ValueError("need at least two labels in the train split to learn a similarity")
    val_x = np.asarray(val_x, dtype=np.float32).reshape(-1, train_x.shape[1])
    val_y = list(val_y)
    fp = fingerprint(train_x, train_y, val_x, val_y, f"{base}/{base_version}")
    train_x, val_x = l2_normalise(train_x), l2_normalise(val_x)
    if not val_y:
        from sklearn.model_selection import train_test_split

        stratify = train_y if min(map(train_y.count, classes)) >= 2 else None
        idx_train, idx_val = train_test_split(np.arange(len(train_y)), test_size=0.2, random_state=seed,
                                              stratify=stratify)
        val_x, val_y = train_x[idx_val], [train_y[i] for i in idx_val]
        train_x, train_y = train_x[idx_train], [train_y[i] for i in idx_train]
    if train_x.shape[1] + EMBED_DIM > MAX_SERVED_DIMENSION:
        raise ValueError(f"a {train_x.shape[1]}-d backbone leaves no room for the learned part under "
                         f"{MAX_SERVED_DIMENSION} dimensions")
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[c] for c in train_y], dtype=np.int64)
    gy = np.asarray(train_y)
    qy = np.asarray(val_y)

    def learned_score(layers: Layers) -> float:
        return _precision(top_k(_apply(layers, val_x), _apply(layers, train_x), SCORE_K), qy, gy)

    fitted = []
    for step, kind in enumerate(kinds):
        started = time.perf_counter()
        part = _stage(progress, step / len(kinds), (step + 1) / len(kinds))
        if kind == "lda":
            layers, info = _fit_lda(train_x, y), {}
        else:
            layers, info = _fit_torch(kind, train_x, y, len(classes), seed, learned_score, part)
        learned_q, learned_g = _apply(layers, val_x), _apply(layers, train_x)
        learned_p10 = _precision(top_k(learned_q, learned_g, SCORE_K), qy, gy)
        by_weight = weight_rows(val_x, train_x, learned_q, learned_g, qy, gy)
        fitted.append((kind, layers, {"learned_p@10": learned_p10, **info}, by_weight, time.perf_counter() - started))
        part(1.0, f"{kind}: validation P@10 {learned_p10:.3f} learned alone")
    # One rule over every (kind, weight): the floor is the best allowed P@10 of any minus its standard
    # error; each kind takes its most raw-like weight above it, and the kind kept is the most raw-like.
    best = max((r for *_, rows, _ in fitted for r in _allowed(rows)), key=lambda r: r["p@10"])
    floor = best["p@10"] - best["p@10_se"]
    candidates: list[Candidate] = []
    for kind, layers, info, by_weight, seconds in fitted:
        served = choose_weight(by_weight, floor)
        scores = {"learned_p@10": info.pop("learned_p@10"), "served_p@10": served["p@10"],
                  "served_p@10_se": served["p@10_se"], "overlap@10": served["overlap@10"], "by_weight": by_weight,
                  **info}
        candidates.append(Candidate(kind, layers, served["weight"], scores, seconds))
    chosen = within_one_se([{**c.scores, "candidate": c} for c in candidates], prefer="overlap@10",
                           score="served_p@10", floor=floor)["candidate"]
    rows = [{"kind": c.kind, "weight": c.weight, "seconds": round(c.seconds, 2),
             **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in c.scores.items()}} for c in candidates]
    head = SimilarityHead(kind=chosen.kind, base=base, base_version=base_version, weight=chosen.weight,
                          layers=chosen.layers, classes=classes, fingerprint=fp, meta={"candidates": rows})
    return head, rows


def _stage(progress: Progress, start: float, end: float) -> Progress:
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def is_head_model(name: str) -> bool:
    """Whether an embedder name is a backbone → similarity head composition."""
    return NAME_MARK in name


def head_fingerprint_of(name: str) -> str:
    """The 12-character fingerprint prefix a composed model's name ends with ('' for a plain backbone)."""
    return name.rsplit(NAME_MARK, 1)[1] if is_head_model(name) else ""


def register_head(head: SimilarityHead) -> str:
    """Add backbone → head to the ``ml.embedders`` registry; returns its name."""
    from ml import embedders

    base = embedders.get_spec(head.base)
    if base.version != head.base_version:
        raise ValueError(f"head was fitted on {head.base} {head.base_version}; the registry has {base.version}")
    spec = embedders.EmbedderSpec(
        name=head.model_name, version=head.model_version, dimension=head.dimension, input_size=base.input_size,
        mean=base.mean, std=base.std,
        description=f"{head.base} with a learned {head.kind} similarity head ({head.learned_dimension}-d, "
                    f"raw weight {head.weight:g}) over {len(head.classes)} labels")
    embedders.register_composed(spec, head.base, head.serve)
    return spec.name


# --- one evaluation table ------------------------------------------------------------------------

def spaces_of(head: SimilarityHead, raw: np.ndarray) -> dict[str, np.ndarray]:
    """The raw, learned and blended (served) unit vectors of ``raw``, by space name."""
    unit = l2_normalise(np.asarray(raw, dtype=np.float32))
    return {"raw": unit, "learned": head.learned(unit), "blended": head.serve(unit)}


def evaluation_rows(head: SimilarityHead, train: tuple[np.ndarray, Sequence[str]],
                    queries: dict[str, tuple[np.ndarray, Sequence[str]]], *,
                    classifier_kinds: Sequence[str] = ("logreg", "mlp"),
                    reference: dict[str, np.ndarray] | None = None,
                    progress: Progress = _noop) -> list[dict]:
    """One row per (space, query split): P@1/5/10 and mAP@10 of same-label retrieval against the
    train split, overlap@10 with the raw lists, and the accuracy and macro-F1 of a style classifier
    fitted on that space (``ml.classifier.train_head``, chosen on the ``validation`` queries).

    ``reference``: per query split, the top-10 train rows of another backbone's raw space for the
    same queries and gallery in the same order (a fine-tuned backbone's overlap is then measured
    against the original raw lists); by default this head's own raw space."""
    from ml.classifier import evaluate, train_head

    train_x, train_y = train
    gallery = spaces_of(head, train_x)
    by_split = {split: spaces_of(head, x) for split, (x, _y) in queries.items()}
    raw_lists = reference or {split: top_k(s["raw"], gallery["raw"], SCORE_K) for split, s in by_split.items()}
    val_x, val_y = queries.get("validation", (train_x[:0], []))
    rows = []
    for step, space in enumerate(gallery):
        classifier, _ = train_head(gallery[space], list(train_y), spaces_of(head, val_x)[space], list(val_y),
                                   kinds=classifier_kinds)
        for split, (_x, y) in queries.items():
            nearest = top_k(by_split[split][space], gallery[space], SCORE_K)
            report = evaluate(classifier, by_split[split][space], list(y))
            rows.append({"space": space, "split": split, "queries": len(y), "gallery": len(train_y),
                         **retrieval_scores(nearest, y, train_y),
                         "p@10_se": standard_error(_hits(nearest, y, train_y)),
                         "overlap@10": overlap_at_k(nearest, raw_lists[split]),
                         "accuracy": report.accuracy, "macro_f1": report.macro_f1})
        progress((step + 1) / len(gallery), f"{space} space measured")
    return rows


def evaluation_table(rows: list[dict], title: str) -> str:
    """``evaluation_rows`` as aligned text, one line per space and split."""
    columns = [("space", "space"), ("split", "split"), ("queries", "queries"), ("p@1", "P@1"), ("p@5", "P@5"),
               ("p@10", "P@10"), ("map@10", "mAP@10"), ("overlap@10", "overlap@10"), ("accuracy", "clf acc"),
               ("macro_f1", "clf macro-F1")]
    body = [[f"{row[key]:.3f}" if isinstance(row[key], float) else str(row[key]) for key, _ in columns]
            for row in rows]
    header = [name for _, name in columns]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def fmt(line: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))

    return "\n".join([title, fmt(header), fmt(["-" * w for w in widths]), *(fmt(line) for line in body)])
