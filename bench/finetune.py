"""Top-block fine-tuning of EfficientNet-Lite0 on clothing-small on 2 CPU cores, and where the time goes.

Caches the frozen lower blocks' activations (plain view + augmented views per train image, fp16,
memory-mapped; reused on later runs), trains the last blocks + head for ``--epochs`` epochs, keeps
the best validation P@10 epoch and registers the result as an embedding model (``--name``). Prints
the caching time, each epoch's time and the total against the 20-minute target, with the load average.
Then ``--evaluate`` scores raw, learned, blended, fine-tuned and fine-tuned + head spaces (one table).

    nice -n 10 .venv/bin/python bench/finetune.py [--data ../shared/data/clothing-small]
        [--cache /tmp/finetune-bench] [--epochs 10] [--views 6] [--input-size 288] [--train-blocks 2] [--evaluate]
        [--evaluate-only]  (reuses the model --name of an earlier run)
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml import training  # noqa: E402

SPLITS = ("train", "validation", "test")
TARGET_SECONDS = 20 * 60


def rows_of(data: Path, split: str) -> list[tuple[str, str]]:
    return [(str(p), p.parent.name) for p in sorted(data.glob(f"{split}/*/*.jpg"))]


def load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def progress_printer():
    last = [0.0]

    def show(fraction: float, message: str) -> None:
        if time.monotonic() - last[0] > 30 or fraction >= 1.0:
            last[0] = time.monotonic()
            print(f"  {fraction:6.1%} {message}", flush=True)

    return show


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "clothing-small")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/finetune-bench"))
    parser.add_argument("--epochs", type=int, default=training.TopBlockConfig.epochs)
    parser.add_argument("--views", type=int, default=training.TopBlockConfig.views)
    parser.add_argument("--train-blocks", type=int, default=training.TopBlockConfig.train_blocks)
    parser.add_argument("--lr", type=float, default=training.TopBlockConfig.learning_rate)
    parser.add_argument("--batch-size", type=int, default=training.TopBlockConfig.batch_size)
    parser.add_argument("--input-size", type=int, default=training.TopBlockConfig.input_size)
    parser.add_argument("--name", default="efficientnet-lite0-top-clothing-small")
    parser.add_argument("--evaluate", action="store_true", help="Also print the evaluation table.")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="Skip training: evaluate the model --name saved by an earlier run in --cache.")
    args = parser.parse_args()
    config = training.TopBlockConfig(epochs=args.epochs, views=args.views, train_blocks=args.train_blocks,
                                     learning_rate=args.lr, batch_size=args.batch_size,
                                     input_size=args.input_size)
    splits = {split: rows_of(args.data, split) for split in SPLITS}
    print(f"train {len(splits['train'])}, validation {len(splits['validation'])}, test {len(splits['test'])} "
          f"photos; {config}; torch threads {config.threads}; {load()}", flush=True)
    if args.evaluate_only:
        manifest = json.loads((args.cache / training.MANIFEST_DIR / f"{args.name}.json").read_text())
        evaluate(args, config, splits, args.cache / training.MANIFEST_DIR / manifest["checkpoint"])
        return
    started = time.monotonic()
    result = training.train_top_blocks(splits["train"], splits["validation"], config, args.name, args.cache,
                                       progress=progress_printer())
    total = time.monotonic() - started
    print(f"\ncaching the lower blocks: {result.cache_seconds:.0f} s (reused when the files exist); {load()}")
    print(f"{'epoch':>5}  {'train loss':>10}  {'train acc':>9}  {'val acc':>7}  {'val P@10':>8}  {'seconds':>7}")
    for h in result.history:
        mark = "  <- kept" if h.epoch == result.best_epoch else ""
        print(f"{h.epoch:>5}  {h.train_loss:>10.4f}  {h.train_accuracy:>9.4f}  {h.val_accuracy:>7.4f}  "
              f"{h.val_p10:>8.4f}  {h.seconds:>7.1f}{mark}")
    print(f"training: {result.train_seconds:.0f} s for {config.epochs} epochs; total {total:.0f} s "
          f"(target ≤ {TARGET_SECONDS} s for 10 epochs on 2 cores); {load()}")
    print(f"registered {result.name} {result.version}: best epoch {result.best_epoch}, validation P@10 "
          f"{result.best_val_p10:.3f}, accuracy {result.best_val_accuracy:.3f}")
    if args.evaluate:
        evaluate(args, config, splits, args.cache / training.MANIFEST_DIR / result.checkpoint)


def evaluate(args, config: training.TopBlockConfig, splits: dict, checkpoint: Path) -> None:
    """Raw and fine-tuned features of every photo from the cache's plain views, a similarity head
    fitted over each (``ml.similarity``, chosen on validation), and the one table; then what
    validation alone would serve and classify with, and how that does on test."""
    from ml import similarity
    from ml.metrics import top_k
    from ml.vectors import l2_normalise

    folder = args.cache / training.TOP_BLOCK_DIR / training._cache_key(
        config, [p for s in ("train", "validation") for p, _ in splits[s]])
    acts = {"train": np.load(folder / "train.npy", mmap_mode="r"),
            "validation": np.load(folder / "validation.npy", mmap_mode="r"),
            "test": training.lower_activations([p for p, _ in splits["test"]], config, 0, folder, "test")}
    labels = {s: [c for _, c in splits[s]] for s in SPLITS}
    started = time.monotonic()
    feats = {space: {s: training.top_block_features(acts[s], config, ck) for s in SPLITS}
             for space, ck in (("raw", None), ("fine-tuned", checkpoint))}
    print(f"\nfeatures of {sum(map(len, labels.values()))} photos × 2 backbones from the cache: "
          f"{time.monotonic() - started:.0f} s; {load()}")
    reference = {s: top_k(l2_normalise(feats["raw"][s]), l2_normalise(feats["raw"]["train"]), similarity.SCORE_K)
                 for s in ("validation", "test")}
    rows = []
    for backbone, per_split in feats.items():
        started = time.monotonic()
        head, candidates = similarity.fit_head(per_split["train"], labels["train"], per_split["validation"],
                                               labels["validation"], base=backbone, base_version="bench",
                                               kinds=similarity.DEFAULT_KINDS)
        by_kind = ", ".join(f"{c['kind']} {c['served_p@10']:.3f}" for c in candidates)
        print(f"{backbone}: head {head.kind} at w={head.weight:g} fitted in {time.monotonic() - started:.1f} s "
              f"(validation served P@10 by kind: {by_kind}); {load()}")
        part = similarity.evaluation_rows(head, (per_split["train"], labels["train"]),
                                          {s: (per_split[s], labels[s]) for s in ("validation", "test")},
                                          reference=reference)
        rows += [{**row, "space": f"{'' if backbone == 'raw' else 'fine-tuned '}{row['space']}"} for row in part]
    print()
    print(similarity.evaluation_table(rows, "Same-label retrieval, clothing-small, uncut photos, queries against "
                                            "the train split (exact search); fine-tuned = top blocks; overlap@10 "
                                            "with the ImageNet backbone's raw lists; every row at "
                                            f"{config.input_size} px"))
    val = [r for r in rows if r["split"] == "validation"]
    test = {r["space"]: r for r in rows if r["split"] == "test"}
    servable = [r for r in val if r["space"].endswith(("raw", "blended"))]  # what a collection can switch to
    # As the product chooses a blend weight: the most overlap with raw within one standard error of the
    # best validation P@10 among the spaces that keep overlap ≥ MIN_OVERLAP.
    served = similarity.within_one_se([r for r in servable if r["overlap@10"] >= similarity.MIN_OVERLAP],
                                      prefer="overlap@10")
    classifier = max(val, key=lambda r: (r["macro_f1"], r["accuracy"]))
    print(f"\nchosen on validation: serve {served['space']} (validation P@10 {served['p@10']:.3f} ± "
          f"{served['p@10_se']:.3f}, overlap "
          f"{served['overlap@10']:.3f}) -> test P@1 {test[served['space']]['p@1']:.3f} (target 0.90), P@10 "
          f"{test[served['space']]['p@10']:.3f} (0.88), overlap@10 {test[served['space']]['overlap@10']:.3f} (0.3)")
    print(f"chosen on validation: classify on {classifier['space']} (validation macro-F1 {classifier['macro_f1']:.3f}) "
          f"-> test accuracy {test[classifier['space']]['accuracy']:.3f} (target 0.93), macro-F1 "
          f"{test[classifier['space']]['macro_f1']:.3f} (0.92); {load()}")


if __name__ == "__main__":
    main()
