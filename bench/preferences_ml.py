"""Quality and fit time of the preference predictors on simulated visitors.

Features are random clustered unit vectors (10 clusters in 1280-d, standing in for garment
classes) until real embeddings exist; tastes come from ``ml.preferences.simulate_tastes``.

    .venv/bin/python bench/preferences_ml.py [--users 200] [--votes 100] [--items 2000] [--seeds 0 1 2]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ml.preferences import Hybrid, ItemCF, UserCF, evaluate  # noqa: E402
from ml.simulation import simulate_tastes, synthetic_catalogue  # noqa: E402

COLUMNS = ("auc", "mean_user_auc", "accuracy_at_zero", "accuracy_at_roc", "unsure_share",
           "accuracy_decided", "brier", "fit_seconds")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--votes", type=int, default=100)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--noise", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", choices=("item_cf", "user_cf", "hybrid"), nargs="+")
    args = parser.parse_args()

    results: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        features, labels = synthetic_catalogue(args.items, 10, args.dim, spread=1.0, seed=seed)
        sim = simulate_tastes(features, labels, args.users, args.votes, seed=seed, noise=args.noise)
        for predictor in (ItemCF(), UserCF(), Hybrid(seed=seed)):
            if args.only and predictor.name not in args.only:
                continue
            results.setdefault(predictor.name, []).append(evaluate(predictor, features, sim.train, sim.test))
    print(f"{args.users} users x {args.votes} votes, {args.items} items x {args.dim}-d, "
          f"noise {args.noise}, seeds {args.seeds} (mean over seeds)")
    print(f"{'predictor':10s}" + "".join(f"{c:>17s}" for c in COLUMNS))
    for name, runs in results.items():
        print(f"{name:10s}" + "".join(f"{np.mean([r[c] for r in runs]):17.3f}" for c in COLUMNS))


if __name__ == "__main__":
    main()
