"""Learned similarity on clothing-small in numpy: fitting times per head kind, the evaluation table
(raw, learned, blended; validation and test queries against the train split) and flip TTA.

Vectors: ``--model`` (default efficientnet-lite0, ONNX) on the *uncut* photos (no background
removal), each padded to a white square; cached as .npy under ``--cache`` (first run embeds the
3,781 photos, twice with the horizontal flip, a few minutes on 2 cores). Choices are made on validation only.

    nice -n 10 .venv/bin/python bench/similarity.py [--data ../shared/data/clothing-small]
        [--cache /tmp/similarity-bench] [--kinds lda,mlp,proxy] [--model efficientnet-lite0-int8]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml import metrics, similarity  # noqa: E402
from ml.vectors import l2_normalise  # noqa: E402

SPLITS = ("train", "validation", "test")


def embed_split(data: Path, split: str, cache: Path, model: str) -> None:
    from PIL import ImageOps

    from ml.embedders import get_embedder
    from ml.images import decode_image, subject_crop

    embedder = get_embedder(model)
    paths = sorted(data.glob(f"{split}/*/*.jpg"))
    plain, flipped = [], []
    started = time.perf_counter()
    for i in range(0, len(paths), 32):
        crops = [subject_crop(decode_image(p.read_bytes(), max_pixels=40_000_000, draft_size=448), None, 224)
                 for p in paths[i:i + 32]]
        plain.append(embedder.embed(crops))
        flipped.append(embedder.embed([ImageOps.mirror(c) for c in crops]))
    np.save(cache / f"{split}_x.npy", np.concatenate(plain))
    np.save(cache / f"{split}_xflip.npy", np.concatenate(flipped))
    np.save(cache / f"{split}_y.npy", np.array([p.parent.name for p in paths]))
    print(f"embedded {split}: {len(paths)} photos ×2 in {time.perf_counter() - started:.0f} s")


def load(cache: Path, split: str, what: str = "x") -> np.ndarray:
    return np.load(cache / f"{split}_{what}.npy")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clothing-small")
    parser.add_argument("--cache", type=Path, default=None, help="default: /tmp/similarity-bench-MODEL")
    parser.add_argument("--model", default="efficientnet-lite0", help="the backbone (a registry name)")
    parser.add_argument("--kinds", default=",".join(similarity.KINDS))
    args = parser.parse_args()
    args.cache = args.cache or Path(f"/tmp/similarity-bench-{args.model}")
    args.cache.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        if not (args.cache / f"{split}_y.npy").is_file():
            embed_split(args.data, split, args.cache, args.model)
    (tx, ty), (vx, vy), (sx, sy) = [(load(args.cache, s), load(args.cache, s, "y")) for s in SPLITS]
    print(f"train {len(ty)}, validation {len(vy)}, test {len(sy)} items; {args.model}, uncut photos")

    started, cpu = time.perf_counter(), time.process_time()
    head, rows = similarity.fit_head(tx, ty, vx, vy, base=args.model, base_version="bench",
                                     kinds=tuple(args.kinds.split(",")))
    total, cpu = time.perf_counter() - started, time.process_time() - cpu
    print("\nHead candidates (fitted on train, scored on validation; weight = raw share of the served cosine)")
    print(f"{'kind':6}  {'fit s':>6}  {'learned P@10':>12}  {'served P@10':>11}  {'overlap@10':>10}  {'w':>4}  epochs")
    for r in rows:
        print(f"{r['kind']:6}  {r['seconds']:6.1f}  {r['learned_p@10']:12.3f}  {r['served_p@10']:11.3f}  "
              f"{r['overlap@10']:10.3f}  {r['weight']:4.1f}  {r.get('best_epoch', '-')}")
    print(f"chosen: {head.kind} at w={head.weight:g} ({head.learned_dimension}-d learned, {head.dimension}-d served); "
          f"all candidates fitted in {total:.1f} s wall, {cpu:.1f} s CPU (all threads; the wall time "
          "is inflated when other work shares the cores)")

    started = time.perf_counter()
    table = similarity.evaluation_rows(head, (tx, ty), {"validation": (vx, vy), "test": (sx, sy)})
    print()
    print(similarity.evaluation_table(
        table, f"Same-label retrieval, queries against the train split ({time.perf_counter() - started:.0f} s "
               "incl. one classifier per space)"))

    # Flip TTA: average each photo's vector with its mirror's, on both sides; kept only at +0.01 P@10.
    vf, tf = load(args.cache, "validation", "xflip"), load(args.cache, "train", "xflip")
    print("\nFlip TTA on validation (P@10):")
    for name, space in (("raw", lambda x: l2_normalise(x)), ("blended", head.serve)):
        plain = metrics.top_k(space(vx), space(tx), 10)
        tta = metrics.top_k(space(vx + vf), space(tx + tf), 10)
        p, q = (metrics.retrieval_scores(n, vy, ty)["p@10"] for n in (plain, tta))
        print(f"  {name:8} {p:.3f} -> {q:.3f} ({q - p:+.3f}; kept only at +0.010)")


if __name__ == "__main__":
    main()
