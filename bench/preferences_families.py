"""Every predictor and both baselines on simulated taste families over the real clothing photos.

Catalogue: the 3,781 clothing-small photos (``bench/preferences_catalogue.py``: embeddings,
descriptors, labels). Visitors: ``ml.simulation.simulate_families`` (category, colour, pattern,
mixed, drifting users; noisy votes with 10 % flipped; like-rates 15-60 %), whose colour and
pattern are computed from the photos independently of ``ml.descriptors``. Each user votes on
``--votes`` random items; the test is their true taste on 150 other items. The served predictor is chosen on a
validation hold-out of the TRAIN votes (``choose_served``); the test votes only score.

    nice -n 10 .venv/bin/python bench/preferences_families.py [--users 100] [--votes 60] [--seeds 0 1]
        [--flip 0.1] [--strength 5]   # another noise setting: a check the model was not fitted to one

Prints per predictor: mean per-user AUC with its 95 % bootstrap interval, pooled AUC, accuracy
where decided, unsure share; then mean per-user AUC per family, and what was served and why.

``--oracle`` adds two reference rows that are not predictors: "oracle told", a per-user logistic
regression told which of the simulator's OWN inputs the user's family of taste is built from
(category and drifting: the one-hot label; colour: the colour truth with its squares and products;
pattern: the pattern truth; mixed: label, colour and PCA-32 of the embedding), learning from the
same noisy votes; "oracle all", the same handed all of those inputs without being told which.
They say how far a model could get on these visitors if its features were the simulator's;
where "oracle told" beats ``personal`` (colour, pattern), the gap is what the item descriptors miss of the
simulator's colour and pattern truths, which they are deliberately not fitted to.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.preferences_catalogue import load_catalogue
from ml.preferences import ItemSide, choose_served, evaluate, make_predictor, user_aucs
from ml.preferences.evaluation import bootstrap_interval
from ml.simulation import FAMILIES, simulate_families

NAMES = ("label_prior", "popularity", "item_cf", "user_cf", "hybrid", "personal")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--votes", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--flip", type=float, default=0.1, help="share of votes flipped at random")
    parser.add_argument("--strength", type=float, default=5.0,
                        help="how sharply a vote follows the taste (lower: noisier votes)")
    parser.add_argument("--oracle", action="store_true",
                        help="add the reference row fitted on the simulator's own taste inputs")
    args = parser.parse_args()
    cat = load_catalogue()
    side = ItemSide.build({"label": [cat.label_names[i] for i in cat.labels]}, cat.descriptors)
    rows: dict[str, list[dict[str, float]]] = {}
    fam: dict[str, dict[str, list[float]]] = {}
    served_lines = []
    for seed in args.seeds:
        sim = simulate_families(cat.features, cat.labels, cat.colour, cat.pattern, args.users, args.votes, seed=seed,
                                flip=args.flip, strength=args.strength)
        family_of = dict(enumerate(sim.family))
        factories = {n: (lambda n=n, seed=seed: make_predictor(n, side, seed)) for n in args.only}
        served, val, why = choose_served(factories, cat.features, sim.train, seed=seed)
        served_lines.append(f"seed {seed}: serving {served} - {why}")
        for name in args.only:
            predictor = make_predictor(name, side, seed)
            result = evaluate(predictor, cat.features, sim.train, sim.test)
            result["validation_user_auc"] = val[name]
            rows.setdefault(name, []).append(result)
            for user, auc in user_aucs(predictor, sim.test).items():
                fam.setdefault(name, {}).setdefault(family_of[user], []).append(auc)
                fam[name].setdefault("all", []).append(auc)
        if args.oracle:
            for name, told in (("oracle told", True), ("oracle all", False)):
                for user, auc in oracle_aucs(cat, sim, seed, told).items():
                    fam.setdefault(name, {}).setdefault(family_of[user], []).append(auc)
                    fam[name].setdefault("all", []).append(auc)
    print(f"{len(cat.labels)} photos, {args.users} users x {args.votes} votes, 150 test items each, "
          f"seeds {args.seeds}, flip {args.flip}, strength {args.strength}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'predictor':12s}{'user AUC [95% CI]':>24s}{'pooled AUC':>12s}{'acc decided':>13s}{'unsure':>9s}"
          f"{'val AUC':>9s}{'fit s':>8s}")
    for name, runs in rows.items():
        lo, hi = bootstrap_interval(fam[name]["all"])
        m = {k: np.mean([r[k] for r in runs]) for k in runs[0]}
        print(f"{name:12s}{np.mean(fam[name]['all']):>10.3f} [{lo:.3f}, {hi:.3f}]{m['auc']:>12.3f}"
              f"{m['accuracy_decided']:>13.3f}{m['unsure_share']:>9.3f}{m['validation_user_auc']:>9.3f}"
              f"{m['fit_seconds']:>8.2f}")
    for name in ("oracle told", "oracle all") if args.oracle else ():
        lo, hi = bootstrap_interval(fam[name]["all"])
        print(f"{name:12s}{np.mean(fam[name]['all']):>10.3f} [{lo:.3f}, {hi:.3f}]"
              "   (the simulator's own inputs: a reference, not a predictor)")
    print("\nmean per-user AUC per family (test votes)")
    print(f"{'predictor':12s}" + "".join(f"{f:>11s}" for f in FAMILIES))
    for name in fam:
        print(f"{name:12s}" + "".join(f"{np.mean(fam[name].get(f, [np.nan])):>11.3f}" for f in FAMILIES))
    print()
    print("\n".join(served_lines))


def oracle_aucs(cat, sim, seed: int, told: bool = True) -> dict[int, float]:
    """Per-user AUC of a logistic regression (C=1, standardised inputs) fitted on that user's train
    votes over the simulator's own inputs: with ``told``, only those the user's family of taste is
    built from, else all of them (see ``--oracle``)."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    colour = (cat.colour - cat.colour.mean(axis=0)) / cat.colour.std(axis=0)
    quadratic = np.stack([colour[:, i] * colour[:, j] for i in range(3) for j in range(i, 3)], axis=1)
    label = np.eye(len(cat.label_names))[cat.labels]
    pca = PCA(n_components=32, random_state=seed).fit_transform(cat.features)
    inputs = {"category": label, "drifting": label, "colour": np.c_[colour, quadratic], "pattern": cat.pattern[:, None],
              "mixed": np.c_[label, colour, quadratic, pca]}
    every = np.c_[label, colour, quadratic, cat.pattern, pca]
    out = {}
    train = sim.train.by_user()
    for user, (items, liked) in sim.test.by_user().items():
        v_items, v_liked = train[user]
        if 0 < liked.sum() < len(liked) and 0 < v_liked.sum() < len(v_liked):
            x = inputs[sim.family[user]] if told else every
            x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-9)
            model = LogisticRegression(C=1.0, max_iter=1000).fit(x[v_items], v_liked)
            out[user] = float(roc_auc_score(liked, model.decision_function(x[items])))
    return out

if __name__ == "__main__":
    main()
