"""Rate these next: AUC after 10/20/40/60 votes chosen actively vs at random.

Catalogue: the clothing-small photos (``bench/preferences_catalogue.py``). A population of
simulated visitors (``simulate_families``, seed 100) is what the fitted model learnt from; new
visitors (``--users``, another seed) then start with no vote. Each step they vote (noisily, 10 %
flipped) on 5 items: ``active`` = ``Personal.next_to_rate`` (largest expected reduction of the
model's uncertainty, spread over labels), ``random`` = random unrated items. After 10/20/40/60
votes the mean per-user AUC of ``predict_live`` on each visitor's 150 test items (their true
taste) is measured, and item_cf's with the random votes for comparison. Writes the curve as an
SVG (``ml.plots.lines_svg``) to ``--svg``.

    nice -n 10 .venv/bin/python bench/preferences_active.py [--users 50] [--svg var/bench/active.svg]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.preferences_catalogue import load_catalogue
from ml.plots import lines_svg
from ml.preferences import ItemCF, ItemSide, Personal
from ml.simulation import FAMILIES, simulate_families

CHECKPOINTS = (10, 20, 40, 60)
STEP = 5


def auc(liked: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(liked, scores))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--svg", default=str(Path(__file__).resolve().parent.parent / "var" / "bench" / "active.svg"))
    args = parser.parse_args()
    cat = load_catalogue()
    side = ItemSide.build({"label": [cat.label_names[i] for i in cat.labels]}, cat.descriptors)
    population = simulate_families(cat.features, cat.labels, cat.colour, cat.pattern, args.population, 60, seed=100)
    # The population's users are 0..N-1; the new visitors get ids above them.
    model = Personal(side, seed=0).fit(cat.features, population.train)
    item_cf = ItemCF().fit(cat.features, population.train)
    visitors = simulate_families(cat.features, cat.labels, cat.colour, cat.pattern, args.users, 60, seed=args.seed)
    test = visitors.test.by_user()
    rng = np.random.default_rng(args.seed)
    curves: dict[str, dict[int, list[float]]] = {"active": {}, "random": {}, "item_cf random": {}}
    by_family: dict[str, dict[str, list[float]]] = {}
    for user, (asked, truth) in test.items():
        if truth.all() or not truth.any():
            continue
        pool = np.setdiff1d(np.arange(len(cat.labels)), asked)
        for strategy in ("active", "random"):
            items = np.zeros(0, dtype=np.int64)
            liked = np.zeros(0, dtype=bool)
            while len(items) < CHECKPOINTS[-1]:
                candidates = np.setdiff1d(pool, items)
                if strategy == "active":
                    chosen = model.next_to_rate(items, liked, candidates, STEP)
                else:
                    chosen = rng.choice(candidates, STEP, replace=False)
                items = np.r_[items, chosen]
                liked = np.r_[liked, visitors.vote(user, chosen, rng)]
                if len(items) in CHECKPOINTS:
                    p, _ = model.predict_live(10_000 + user, asked, items, liked)
                    value = auc(truth, p)
                    curves[strategy].setdefault(len(items), []).append(value)
                    if len(items) == 20:
                        by_family.setdefault(f"{strategy} 20", {}).setdefault(visitors.family[user], []).append(value)
                    if strategy == "random":
                        p_cf, _ = item_cf.predict_live(10_000 + user, asked, items, liked)
                        curves["item_cf random"].setdefault(len(items), []).append(auc(truth, p_cf))
                        if len(items) == 60:
                            by_family.setdefault("item_cf random 60", {}).setdefault(
                                visitors.family[user], []).append(auc(truth, p_cf))
    print(f"{len(cat.labels)} photos; model fitted on {args.population} simulated visitors; {args.users} new "
          f"visitors vote {STEP} at a time; mean per-user AUC on 150 test items (their true taste); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'votes':>6s}" + "".join(f"{name:>16s}" for name in curves))
    for n in CHECKPOINTS:
        print(f"{n:>6d}" + "".join(f"{np.mean(c[n]):>16.3f}" for c in curves.values()))
    print(f"\n{'':18s}" + "".join(f"{f:>11s}" for f in FAMILIES))
    for name, per in by_family.items():
        print(f"{name:18s}" + "".join(f"{np.mean(per.get(f, [np.nan])):>11.3f}" for f in FAMILIES))
    svg = lines_svg({name: (np.array(CHECKPOINTS), np.array([np.mean(c[n]) for n in CHECKPOINTS]))
                     for name, c in curves.items()}, "votes", "mean per-user AUC", y_range=(0.5, 1.0))
    Path(args.svg).parent.mkdir(parents=True, exist_ok=True)
    Path(args.svg).write_text(svg)
    print(f"\ncurve written to {args.svg}")


if __name__ == "__main__":
    main()
