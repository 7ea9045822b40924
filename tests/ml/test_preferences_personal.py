"""Baselines, the personal model, choosing what to serve, the unsure band, descriptors, rate-next."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml.descriptors import DESCRIPTOR_NAMES, image_descriptors
from ml.plots import lines_svg
from ml.preferences import (
    ItemSide,
    LabelPrior,
    Personal,
    Popularity,
    VoteData,
    choose_served,
    cover_labels,
    user_aucs,
)
from ml.preferences.calibration import choose_margin, fit_logreg, leave_one_out_logits
from ml.preferences.evaluation import bootstrap_interval
from ml.simulation import FAMILIES, simulate_families


def side_of(labels, descriptors=None) -> ItemSide:
    labels = [str(v) for v in labels]
    d = np.zeros((len(labels), 0)) if descriptors is None else descriptors
    return ItemSide.build({"label": labels}, d)


def test_label_prior_is_the_users_like_rate_per_label_smoothed_toward_their_overall_rate():
    side = side_of(["a", "a", "b", "b", "c", "a", "b"])
    votes = VoteData([1, 1, 1, 1, 2, 2], [0, 1, 2, 3, 0, 2], [True, True, False, False, True, True])
    model = LabelPrior(side).fit(np.eye(7), votes)
    glob = (4 + 1) / (6 + 2)
    overall = (2 + 2 * glob) / (4 + 2)  # user 1: 2 likes of 4, smoothed toward everyone's rate
    expected = [(2 + 2 * overall) / (2 + 2), (0 + 2 * overall) / (2 + 2), overall]
    assert model.predict_proba(1, np.array([5, 6, 4])) == pytest.approx(expected)
    live, threshold = model.predict_live(9, np.array([5, 6]), np.array([0]), np.array([False]))
    own = (0 + 2 * glob) / (1 + 2)
    assert threshold == 0.5 and live == pytest.approx([(0 + 2 * own) / (1 + 2), own])


def test_popularity_never_counts_a_users_own_vote():
    side = side_of(["a"] * 4)
    votes = VoteData([1, 2, 3], [0, 0, 0], [True, True, False])
    model = Popularity(side).fit(np.eye(4), votes)
    label_rate = (2 + 3 * (3 / 5)) / (3 + 3)
    assert model.predict_proba(1, np.array([0]))[0] == pytest.approx((1 + 3 * label_rate) / (2 + 3))
    assert model.predict_proba(3, np.array([0]))[0] == pytest.approx((2 + 3 * label_rate) / (2 + 3))


class _Scores:
    """A stand-in learned predictor answering fixed scores per (user, item)."""

    name = "learned"
    margins = (0.0, 0.0)

    def __init__(self, table: np.ndarray):
        self.table = table

    def fit(self, features, votes):
        return self

    def score(self, user_id, item_idx):
        return self.table[user_id, item_idx]


def _colour_world(n_items=400, n_users=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n_items)
    brightness = rng.uniform(size=n_items)
    features = rng.normal(size=(n_items, 8))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    users = np.repeat(np.arange(n_users), 40)
    items = np.concatenate([rng.choice(n_items, 40, replace=False) for _ in range(n_users)])
    liked = brightness[items] > 0.5  # every user likes bright items, whatever their label...
    liked ^= rng.random(len(liked)) < 0.1  # ...and 10 % of votes say otherwise
    return labels, brightness, features, VoteData(users, items, liked)


def test_choose_served_serves_a_learned_predictor_only_when_it_beats_the_best_baseline_on_validation():
    labels, brightness, features, votes = _colour_world()
    side = side_of(labels, brightness[:, None])
    truth = np.tile(brightness, (40, 1))
    factories = {"label_prior": lambda: LabelPrior(side), "learned": lambda: _Scores(-truth)}  # ranks backwards
    name, validation, why = choose_served(factories, features, votes)
    assert name == "label_prior" and why.startswith("no learned predictor beats the baseline label_prior")
    assert set(validation) == {"label_prior", "learned"} and validation["learned"] < 0.2

    factories["learned"] = lambda: _Scores(truth)
    name, validation, why = choose_served(factories, features, votes)
    assert name == "learned" and validation["learned"] > 0.8 and why.startswith("learned beats")


def test_personal_learns_a_colour_taste_that_label_prior_cannot_see():
    labels, brightness, features, votes = _colour_world()
    side = side_of(labels, brightness[:, None])
    rng = np.random.default_rng(5)
    held = VoteData(np.repeat(np.arange(40), 30), rng.integers(0, 400, 1200), np.zeros(1200, dtype=bool))
    held = VoteData(held.user_ids, held.item_idx, brightness[held.item_idx] > 0.5)
    personal = Personal(side, n_components=4).fit(features, votes)
    prior = LabelPrior(side).fit(features, votes)
    assert np.mean(list(user_aucs(personal, held).values())) > 0.95
    assert np.mean(list(user_aucs(prior, held).values())) < 0.65


def test_personal_learns_a_taste_for_one_colour_that_no_linear_weight_can_express():
    """Users who like mid-bright items and dislike both dark and bright ones: no weight on
    brightness ranks that, the kernel score over the descriptors does."""
    labels, brightness, features, _ = _colour_world()
    rng = np.random.default_rng(6)
    users = np.repeat(np.arange(40), 60)
    items = np.concatenate([rng.choice(400, 60, replace=False) for _ in range(40)])
    liked = (np.abs(brightness[items] - 0.5) < 0.2) ^ (rng.random(len(items)) < 0.1)
    asked = np.concatenate([np.setdiff1d(np.arange(400), items[users == u])[:100] for u in range(40)])
    held = VoteData(np.repeat(np.arange(40), 100), asked, np.abs(brightness[asked] - 0.5) < 0.2)
    side = side_of(labels, brightness[:, None])
    personal = Personal(side, n_components=4).fit(features, VoteData(users, items, liked))
    assert np.mean(list(user_aucs(personal, held).values())) > 0.85


def test_the_tenth_vote_changes_the_next_prediction_without_a_refit():
    labels, brightness, features, votes = _colour_world()
    personal = Personal(side_of(labels, brightness[:, None]), n_components=4).fit(features, votes)
    middle = 10 + int(np.argmin(np.abs(brightness[10:100] - 0.5)))  # an item the population is unsure of
    items = np.r_[np.arange(9), middle, np.setdiff1d(np.arange(10, 61), [middle])][:60]
    liked = brightness[items] < 0.5  # a new user with the opposite taste
    asked = np.r_[middle, np.arange(100, 150)]
    nine, _ = personal.predict_live(999, asked, items[:9], liked[:9])
    ten, _ = personal.predict_live(999, asked, items[:10], liked[:10])
    assert (ten[0] - nine[0]) * (1 if liked[9] else -1) > 0.01  # the 10th vote moved its own item its way
    assert not np.allclose(nine[1:], ten[1:])  # and the other items
    sixty, _ = personal.predict_live(999, asked, items, liked)
    assert np.corrcoef(sixty[1:], brightness[100:150])[0, 1] < 0  # enough votes: this user's taste, not everyone's


def test_next_to_rate_covers_every_label_before_repeating_one():
    labels, brightness, features, votes = _colour_world()
    personal = Personal(side_of(labels, brightness[:, None]), n_components=4).fit(features, votes)
    picked = personal.next_to_rate(np.zeros(0, dtype=int), np.zeros(0, dtype=bool), np.arange(400), 8)
    assert len(set(picked.tolist())) == 8
    assert sorted(np.bincount(labels[picked], minlength=4).tolist()) == [2, 2, 2, 2]


def test_cover_labels_takes_the_best_of_each_label_in_turn():
    order = np.array([10, 11, 12, 13, 14, 15, 16, 17])
    assert cover_labels(order, np.array([0, 0, 0, 1, 1, 2, 0, 2]), 6).tolist() == [10, 13, 15, 11, 14, 17]


def test_choose_margin_is_the_narrowest_band_reaching_the_target_within_the_unsure_cap():
    p = np.array([0.9, 0.8, 0.7, 0.58, 0.42, 0.3, 0.2, 0.1, 0.52, 0.48])
    liked = np.array([1, 1, 1, 0, 1, 0, 0, 0, 0, 1], dtype=bool)
    # With no band the four nearest 0.5 are all wrong (60 % right); the first band step past 0.02
    # leaves 8 decided, 75 % right. A band past 0.08 would make 0.58/0.42 unsure too (40 %, over the cap).
    assert choose_margin(p, liked, target=0.75) == pytest.approx(0.025)
    assert 0.07 <= choose_margin(p, liked, target=0.99) < 0.08  # the widest band the cap allows


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(0).uniform(0.6, 0.9, 200)
    lo, hi = bootstrap_interval(values)
    assert lo < values.mean() < hi and hi - lo < 0.05


def test_descriptors_tell_colour_brightness_and_pattern_apart():
    def named(img):
        return dict(zip(DESCRIPTOR_NAMES, image_descriptors(img)))

    red, blue = named(Image.new("RGB", (80, 80), (220, 30, 30))), named(Image.new("RGB", (80, 80), (30, 30, 220)))
    assert red["red_green"] > 0.5 > blue["red_green"] and blue["yellow_blue"] < 0 < red["yellow_blue"]
    assert red["hue_0"] == pytest.approx(1.0) and blue["saturation"] > 0.8
    dark, light = named(Image.new("RGB", (80, 80), (20, 20, 20))), named(Image.new("RGB", (80, 80), (235, 235, 235)))
    assert dark["brightness"] < 0.1 and light["brightness"] > 0.9 and dark["saturation"] == 0.0
    stripes = np.zeros((80, 80, 3), dtype=np.uint8)
    stripes[:, ::8] = 255
    stripes[:, 1::8] = 255
    striped = named(Image.fromarray(stripes))
    plain = named(Image.new("RGB", (80, 80), (128, 128, 128)))
    assert striped["gradient"] > 0.3 > plain["gradient"] == 0.0
    assert striped["stripe_balance"] > 0.9  # vertical stripes: brightness changes along x only
    cut = Image.new("RGBA", (80, 80), (0, 0, 255, 0))  # a blue background, transparent
    cut.paste((220, 30, 30, 255), (20, 20, 60, 60))
    assert named(cut)["red_green"] == pytest.approx(red["red_green"], abs=0.05)
    assert named(cut)["foreground"] == pytest.approx(0.25, abs=0.03)


def test_simulated_families_have_their_share_of_users_imbalance_and_noise():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 8))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    sim = simulate_families(features, rng.integers(0, 5, 300), rng.normal(size=(300, 3)), rng.normal(size=300),
                            n_users=50, votes_per_user=30, seed=0, test_items=40)
    assert sorted(set(sim.family)) == sorted(FAMILIES) and (sim.family == "colour").sum() == 10
    assert len(sim.train) == 50 * 30 and len(sim.test) == 50 * 40
    rates = np.array([liked.mean() for _, liked in sim.test.by_user().values()])
    assert rates.min() < 0.3 and rates.max() > 0.45  # class imbalance differs by user
    for user, (items, truth) in sim.test.by_user().items():
        assert np.array_equal(truth, sim.taste[user, items] > 0)  # the test is the noiseless taste


def test_lines_svg_draws_one_line_per_series_and_escapes_names():
    svg = lines_svg({"active <5>": (np.array([10, 20]), np.array([0.7, 0.8])),
                     "random": (np.array([10, 20]), np.array([0.6, 0.7]))}, "votes", "AUC")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "active &lt;5&gt; 0.800" in svg and "<5>" not in svg


def test_personal_does_not_lose_to_label_prior_on_users_whose_taste_is_their_label_rates():
    rng = np.random.default_rng(3)
    n_items, n_users = 400, 40
    labels = rng.integers(0, 8, n_items)
    features = rng.normal(size=(n_items, 8))  # the image says nothing of this taste
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    side = side_of(labels, rng.normal(size=(n_items, 3)))
    weights = rng.normal(size=(n_users, 8))  # each user's own liking of each label
    users = np.repeat(np.arange(n_users), 40)
    items = np.concatenate([rng.choice(n_items, 40, replace=False) for _ in range(n_users)])
    liked = weights[users, labels[items]] + 0.5 * rng.logistic(size=len(items)) > 0
    asked = rng.integers(0, n_items, (n_users, 30))
    held = VoteData(np.repeat(np.arange(n_users), 30), asked.ravel(),
                    (weights[np.arange(n_users)[:, None], labels[asked]] > 0).ravel())
    personal = Personal(side, n_components=4).fit(features, VoteData(users, items, liked))
    prior = LabelPrior(side).fit(features, VoteData(users, items, liked))
    assert np.mean(list(user_aucs(personal, held).values())) >= np.mean(list(user_aucs(prior, held).values())) - 0.01


def test_leave_one_out_logits_match_refitting_without_each_row():
    rng = np.random.default_rng(1)
    x = np.c_[rng.normal(size=(40, 3)), np.ones(40)]
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.logistic(size=40) > 0).astype(float)
    weight, penalty, prior = rng.uniform(0.5, 1.0, 40), np.full(4, 2.0), np.zeros(4)
    theta = fit_logreg(x, y, prior, penalty, weight=weight)
    approx, _ = leave_one_out_logits(x, y, theta, penalty, weight)
    exact = np.array([x[i] @ fit_logreg(np.delete(x, i, 0), np.delete(y, i), prior, penalty,
                                        weight=np.delete(weight, i)) for i in range(40)])
    assert np.max(np.abs(approx - exact)) < 0.02
    assert np.max(np.abs(x @ theta - exact)) > 0.05  # the in-sample logits are not leave-one-out


def test_a_batch_of_penalties_fits_the_same_models_as_one_call_each():
    rng = np.random.default_rng(2)
    x = np.c_[rng.normal(size=(50, 5)), np.ones(50)]
    y = (x[:, 0] + x[:, 3] + rng.logistic(size=50) > 0).astype(float)
    weight, prior = rng.uniform(0.5, 1.0, 50), rng.normal(size=6) * 0.3
    penalties = np.array([np.full(6, 1.0), np.r_[np.full(3, 1e3), np.full(3, 0.5)], np.full(6, 1e3)])
    thetas = fit_logreg(x, y, prior, penalties, max_iter=8, tol=1e-4, weight=weight)
    z_out, hess = leave_one_out_logits(x, y, thetas, penalties, weight)
    assert thetas.shape == (3, 6) and z_out.shape == (3, 50) and hess.shape == (3, 6, 6)
    for k, penalty in enumerate(penalties):
        theta = fit_logreg(x, y, prior, penalty, max_iter=8, tol=1e-4, weight=weight)
        single_z, single_hess = leave_one_out_logits(x, y, theta, penalty, weight)
        np.testing.assert_allclose(thetas[k], theta, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(z_out[k], single_z, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(hess[k], single_hess, rtol=1e-10, atol=1e-12)
    assert np.ptp(thetas[:, 0]) > 0.1  # the penalties made different models
