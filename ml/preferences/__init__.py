"""Per-user like/dislike prediction from item image features and everyone's votes.

Arrays in, arrays out: no Django here. ``features`` is always an ``(n_items, d)`` array of
L2-normalised image embeddings, and votes refer to items by their row in it.

Predictors (all share the :class:`~ml.preferences.data.Predictor` interface):

* :class:`ItemCF` (``item_cf``) - the reference method of the student study: mean cosine
  similarity to the user's liked images minus that to the disliked ones, thresholded on the
  ROC curve.
* :class:`UserCF` (``user_cf``) - k nearest users by cosine similarity of their +1/-1 vote vectors.
* :class:`Hybrid` (``hybrid``) - logistic regression on the reference score, taste neighbours'
  taste and votes, and PCA-reduced image features; one global model and per-user models shrunk
  toward it, trained on cross-fitted inputs, Platt-calibrated.
* :class:`Personal` (``personal``) - per-user logistic regression over item metadata, image
  descriptors, the embedding and the user's label like-rate (``label_prior``'s logit), shrunk
  toward a population model, refitted from the user's votes at each request; it also picks what
  to rate next (active learning).
* Baselines :class:`LabelPrior` (``label_prior``) and :class:`Popularity` (``popularity``):
  what a learned predictor must beat on validation votes to be served (:func:`choose_served`).

``Personal`` and the baselines need :class:`ItemSide` (metadata and descriptors per item);
:func:`make_predictor` builds any of them by name.

Every predictor also answers ``predict_live(user, items, voted_items, voted_liked)``: the web app
passes the user's votes as they are at request time, so a new vote changes the next feed
without a refit (the user's running sums, ``item_cf.UserTaste``, are rebuilt from the cached
vectors in O(votes × d)). Around them: ``calibration`` (Platt scaling, ROC thresholds,
:func:`decide`: like/dislike/unsure) and ``evaluation`` (:func:`stratified_holdout`,
:func:`dedupe_split`, :func:`evaluate`). Simulated visitors live in ``ml.simulation``, the ROC
chart in ``ml.plots``.

This module re-exports what code outside ``ml`` uses; ``ml`` itself imports from the submodules.
"""
from __future__ import annotations

from ml.preferences.active import cover_labels
from ml.preferences.baselines import LabelPrior, Popularity
from ml.preferences.calibration import decide
from ml.preferences.data import Predictor, VoteData, explain_with
from ml.preferences.evaluation import (
    BASELINES,
    choose_served,
    dedupe_split,
    evaluate,
    stratified_holdout,
    user_aucs,
)
from ml.preferences.hybrid import Hybrid
from ml.preferences.item_cf import ItemCF
from ml.preferences.personal import Personal
from ml.preferences.side import ItemSide
from ml.preferences.user_cf import UserCF

PREDICTORS = ("label_prior", "popularity", "item_cf", "user_cf", "hybrid", "personal")


def make_predictor(name: str, side: ItemSide, seed: int = 0) -> Predictor:
    """A fresh predictor by name (``PREDICTORS``); ``side`` is used by those that need it."""
    makers = {"label_prior": lambda: LabelPrior(side, seed=seed), "popularity": lambda: Popularity(side, seed=seed),
              "item_cf": ItemCF, "user_cf": UserCF, "hybrid": lambda: Hybrid(seed=seed),
              "personal": lambda: Personal(side, seed=seed)}
    if name not in makers:
        raise ValueError(f"unknown predictor {name!r}; one of {', '.join(PREDICTORS)}")
    return makers[name]()


__all__ = [
    "BASELINES", "PREDICTORS", "Hybrid", "ItemCF", "ItemSide", "LabelPrior", "Personal", "Popularity", "UserCF",
    "VoteData", "choose_served", "cover_labels", "decide", "dedupe_split", "evaluate", "explain_with", "make_predictor",
    "stratified_holdout", "user_aucs",
]
