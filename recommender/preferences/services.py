"""Writes of the preference area: votes, imported and simulated voters, evaluations."""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from catalog.importers import SPLIT_ALIASES
from catalog.models import Collection, Item
from stylesite.exceptions import InvalidInput, NotFound, NotReady

from ..models import PreferenceReport, ServedPredictor, Vote, VoterProfile
from .tasks import preference_refit_soon

VOTE_VALUES = {"like": Vote.Value.LIKE, "dislike": Vote.Value.DISLIKE, "1": Vote.Value.LIKE, "2": Vote.Value.DISLIKE}
# The catalogue's split aliases (one table, catalog.importers); votes have no test split.
SPLITS = {alias: split for alias, split in SPLIT_ALIASES.items() if split in Vote.Split.values} | {
    "": Vote.Split.NONE, "none": Vote.Split.NONE}


# --------------------------------------------------------------------------- votes


def vote_value(raw: Any) -> str:
    """``like``/``dislike`` (or the survey's 1 = like, 2 = dislike) to a ``Vote.Value``."""
    value = VOTE_VALUES.get(str(raw).strip().lower())
    if value is None:
        raise InvalidInput(f"A vote is 'like' or 'dislike' (or 1 = like, 2 = dislike), not {raw!r}.")
    return value


def vote_upsert(user: AbstractBaseUser, item_id: int, value: str, source: str = Vote.Source.WEB) -> Vote:
    """Set the user's vote on an item; voting again changes it. One row per (user, item) even
    under concurrent requests: the write is a single INSERT … ON CONFLICT DO UPDATE."""
    value = vote_value(value)
    if not Item.objects.filter(pk=item_id).exists():
        raise NotFound(f"No item {item_id}.")
    Vote.objects.bulk_create([Vote(user=user, item_id=item_id, value=value, source=source)],
                             update_conflicts=True, unique_fields=["user", "item"],
                             update_fields=["value", "source", "updated"])
    vote = Vote.objects.select_related("item").get(user=user, item_id=item_id)
    preference_refit_soon(vote.item.collection_id)
    return vote


def vote_delete(user: AbstractBaseUser, item_id: int) -> None:
    """Undo the user's vote on an item."""
    collection_id = Item.objects.filter(pk=item_id).values_list("collection_id", flat=True).first()
    deleted, _ = Vote.objects.filter(user=user, item_id=item_id).delete()
    if not deleted:
        raise NotFound(f"You have no vote on item {item_id}.")
    preference_refit_soon(collection_id)


# --------------------------------------------------------------------------- voters who do not log in


def voter_ensure(kind: str, external_id: str) -> AbstractBaseUser:
    """The user standing for a survey respondent or a simulated visitor; created once, never able to log in."""
    profile = VoterProfile.objects.select_related("user").filter(kind=kind, external_id=external_id).first()
    if profile:
        return profile.user
    prefix = "respondent" if kind == VoterProfile.Kind.RESPONDENT else "sim"
    with transaction.atomic():
        user = get_user_model()(username=f"{prefix}-{external_id}"[:150])
        user.set_unusable_password()
        user.save()
        VoterProfile.objects.create(user=user, kind=kind, external_id=external_id)
    return user


@dataclass(frozen=True)
class ImportedVote:
    respondent: str
    value: str
    split: str
    image: str = ""
    item_id: int | None = None
    where: str = ""  # file and line, for messages
    problem: str = ""  # why the row cannot be read, when it cannot


@dataclass
class ImportResult:
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    unknown: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)


def parse_votes_csv(path: Path) -> Iterator[ImportedVote]:
    """Rows with ``respondent_id``, ``image`` (source file name) or ``item_id``, ``vote``, optional ``split``."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = {"respondent_id", "vote"} - set(reader.fieldnames or [])
        if missing or not {"image", "item_id"} & set(reader.fieldnames or []):
            raise InvalidInput(f"{path.name}: needs columns respondent_id, vote and image or item_id; "
                               f"has {', '.join(reader.fieldnames or [])}.")
        for n, row in enumerate(reader, start=2):
            item_id = (row.get("item_id") or "").strip()
            yield ImportedVote(
                respondent=(row["respondent_id"] or "").strip(), value=(row["vote"] or "").strip(),
                split=(row.get("split") or "").strip().lower(), image=(row.get("image") or "").strip(),
                item_id=int(item_id) if item_id.isdigit() else None, where=f"{path.name}:{n}",
            )


def _find_key(data: Any, key: str) -> Any:
    """The first value under ``key`` at any depth of a JSON document (depth-first)."""
    if isinstance(data, dict):
        if key in data:
            return data[key]
        children: Iterable[Any] = data.values()
    elif isinstance(data, list):
        children = data
    else:
        return None
    for child in children:
        found = _find_key(child, key)
        if found is not None:
            return found
    return None


def image_name_of_response(path: Path) -> str:
    """``W_03412_50_classic_W_023425.json`` answers image ``W_03412_50_classic_W.jpg``: the name
    minus the trailing survey id. Matched on the stem, so the image's extension does not matter."""
    stem = path.stem
    head, sep, tail = stem.rpartition("_")
    return head if sep and tail.isdigit() else stem


def parse_votes_json_dir(root: Path) -> Iterator[ImportedVote]:
    """Per-response JSON files; ``R_id`` and ``Q5`` at any depth; the split from the parent folder."""
    for path in sorted(root.rglob("*.json")):
        where = str(path.relative_to(root))
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield ImportedVote("", "", "", where=where, problem=f"unreadable JSON ({exc.__class__.__name__})")
            continue
        respondent, answer = _find_key(data, "R_id"), _find_key(data, "Q5")
        split = path.parent.name.lower() if path.parent != root else ""
        yield ImportedVote(respondent="" if respondent is None else str(respondent),
                           value="" if answer is None else str(answer),
                           split=split if split in SPLITS else "", image=image_name_of_response(path), where=where)


def votes_import(rows: Iterable[ImportedVote], collection: Collection) -> ImportResult:
    """Store survey votes; unknown images and bad rows are reported, never guessed.

    Images are matched on the item's ``source_name`` without extension. Running the same
    import again changes nothing (upsert on (user, item); rows already equal are left alone).
    """
    result = ImportResult()
    items = collection.items.all()
    by_stem: dict[str, int] = {}
    for pk, name in items.values_list("pk", "source_name"):
        by_stem.setdefault(Path(name).stem.lower(), pk)
    item_pks = set(items.values_list("pk", flat=True))
    wanted: dict[tuple[str, int], tuple[str, str]] = {}
    for row in rows:
        if row.problem or not row.respondent or not row.value:
            result.invalid.append(f"{row.where}: {row.problem or 'no respondent id or no vote'}")
            continue
        try:
            value = vote_value(row.value)
        except InvalidInput as exc:
            result.invalid.append(f"{row.where}: {exc.message}")
            continue
        item_id = row.item_id if row.item_id in item_pks else by_stem.get(Path(row.image).stem.lower())
        if item_id is None:
            result.unknown.append(f"{row.where}: {row.image or row.item_id}")
            continue
        wanted[(row.respondent, item_id)] = (value, SPLITS.get(row.split, Vote.Split.NONE))
    users = {r: voter_ensure(VoterProfile.Kind.RESPONDENT, r) for r in sorted({r for r, _ in wanted})}
    existing = {(v.user_id, v.item_id): v for v in Vote.objects.filter(user__in=users.values(), item__in=item_pks)}
    to_write = []
    for (respondent, item_id), (value, split) in wanted.items():
        user = users[respondent]
        old = existing.get((user.pk, item_id))
        if old is not None and old.value == value and old.split == split:
            result.unchanged += 1
            continue
        if old is None:
            result.created += 1
        else:
            result.changed += 1
        to_write.append(Vote(user=user, item_id=item_id, value=value, split=split, source=Vote.Source.IMPORT))
    Vote.objects.bulk_create(to_write, batch_size=2000, update_conflicts=True, unique_fields=["user", "item"],
                             update_fields=["value", "split", "source", "updated"])
    if to_write:
        preference_refit_soon(collection.pk)
    return result


# --------------------------------------------------------------------------- simulated visitors


@dataclass(frozen=True)
class SimulationResult:
    users: int
    votes: int
    created: bool
    features: str  # "embeddings" or "hidden latent features"


def visitors_simulate(collection: Collection, n_users: int = 100, votes_per_user: int = 60, seed: int = 0,
                      replace: bool = False, test_items: int = 40) -> SimulationResult:
    """Simulated visitors (``VoterProfile.Kind.SIMULATED``, usernames ``sim-…-<family>``) voting on the collection.

    Tastes come from ``ml.simulation.simulate_families``: category-, colour-, pattern-driven,
    mixed and drifting users, noisy votes (10 % flipped), like-rates from 15 to 60 %. Each casts
    ``votes_per_user`` train votes and answers ``test_items`` other items with their true taste
    (stored as validation votes). Colour and pattern come from the stored image descriptors
    (computed here when missing); the visual direction of mixed users from the embeddings when
    every item has one. Without images or vectors, hidden random per-item features stand in
    (said in the result). Idempotent: a collection already simulated is left alone unless
    ``replace``, which deletes the simulated votes on it and votes again.
    """
    from ml.descriptors import DESCRIPTOR_NAMES
    from ml.simulation import simulate_families

    from ..embeddings import collection_matrix
    from .fitting import descriptors_fill, item_side

    prefix = f"{collection.slug}-{seed}-"
    simulated = Vote.objects.filter(item__collection=collection, user__voter_profile__kind=VoterProfile.Kind.SIMULATED,
                                    user__voter_profile__external_id__startswith=prefix)
    if simulated.exists() and not replace:
        return SimulationResult(simulated.values("user").distinct().count(), simulated.count(), False, "unchanged")
    items = list(collection.items.order_by("pk").values_list("pk", "label"))
    if len(items) < 2:
        raise NotReady(f"Collection '{collection.slug}' has too few items to simulate visitors.")
    descriptors_fill(collection)
    matrix = collection_matrix(collection)
    item_ids = np.array([pk for pk, _ in items], dtype=np.int64)
    rng = np.random.default_rng(seed + 1000)
    sources = []
    if len(matrix.item_ids) and set(item_ids.tolist()) <= set(matrix.row_of):
        features = matrix.vectors[matrix.rows(item_ids)].astype(np.float64)
        sources.append("embeddings")
    else:
        features = rng.normal(size=(len(items), 64))
        features /= np.linalg.norm(features, axis=1, keepdims=True)
        sources.append("hidden latent features")
    descriptors = item_side(item_ids).descriptors
    if np.isnan(descriptors).any():
        descriptors = rng.uniform(size=descriptors.shape)
        sources.append("hidden colours")
    else:
        sources.append("image descriptors")
    names = list(DESCRIPTOR_NAMES)
    colour = descriptors[:, [names.index(n) for n in ("brightness", "saturation", "red_green", "yellow_blue")]]
    pattern = descriptors[:, names.index("high_frequency")]
    label_names = sorted({label for _, label in items})
    labels = np.array([label_names.index(label) for _, label in items])
    sim = simulate_families(features, labels, colour, pattern, n_users, votes_per_user, seed=seed,
                            test_items=min(test_items, max(len(items) - votes_per_user, 0)))
    with transaction.atomic():
        if replace:
            simulated.delete()
        users = [voter_ensure(VoterProfile.Kind.SIMULATED, f"{prefix}{n:03d}-{sim.family[n]}") for n in range(n_users)]
        rows = [Vote(user=users[u], item_id=int(item_ids[i]), value=Vote.Value.LIKE if liked else Vote.Value.DISLIKE,
                     split=split, source=Vote.Source.IMPORT)
                for data, split in ((sim.train, Vote.Split.TRAIN), (sim.test, Vote.Split.VALIDATION))
                for u, i, liked in zip(data.user_ids, data.item_idx, data.liked)]
        Vote.objects.bulk_create(rows, batch_size=2000, update_conflicts=True, unique_fields=["user", "item"],
                                 update_fields=["value", "split", "source", "updated"])
    preference_refit_soon(collection.pk)
    return SimulationResult(n_users, len(rows), True, ", ".join(sources))


def simulated_family(external_id: str) -> str:
    """The taste family a simulated visitor's external id ends with (``…-007-colour``), else ""."""
    from ml.simulation import FAMILIES

    tail = external_id.rsplit("-", 1)[-1]
    return tail if tail in FAMILIES else ""


# --------------------------------------------------------------------------- evaluation


def preferences_evaluate(collection: Collection, min_votes: int = 5, seed: int = 0,
                         predictors: tuple[str, ...] | None = None, serve: bool = True) -> PreferenceReport:
    """Choose the served predictor on validation votes, score every predictor on the test votes, save the report.

    Test votes: the stored validation split when the collection has one, otherwise a per-user
    stratified 20 % hold-out with ``seed``; held-out votes whose image has a near-duplicate
    (cosine ≥ 0.97) among the train images are dropped. The served predictor is chosen on
    out-of-fold validation scores of the TRAIN votes only (``ml.preferences.choose_served``): the
    best learned predictor when it beats the best baseline there, else that baseline (the report
    says which and why). Users with fewer than ``min_votes`` votes are left out. Simulated
    visitors' test AUCs are also reported per taste family.
    """
    from ml.plots import roc_svg
    from ml.preferences import (
        PREDICTORS,
        choose_served,
        dedupe_split,
        evaluate,
        stratified_holdout,
        user_aucs,
    )

    from ..embeddings import collection_matrix
    from .fitting import item_side, make_predictor, vote_data

    predictors = tuple(predictors or PREDICTORS)
    matrix = collection_matrix(collection)
    if len(matrix.item_ids) == 0:
        raise NotReady(f"No item of '{collection.slug}' has been embedded yet.")
    votes, splits = vote_data(collection, matrix)
    users, counts = np.unique(votes.user_ids, return_counts=True)
    keep = np.isin(votes.user_ids, users[counts >= min_votes])
    votes, splits = votes.subset(keep), splits[keep]
    if len(votes) == 0:
        raise NotReady(f"No user has {min_votes} or more votes on '{collection.slug}' items with vectors.")
    if (splits == Vote.Split.VALIDATION).any():
        train, test = votes.subset(splits != Vote.Split.VALIDATION), votes.subset(splits == Vote.Split.VALIDATION)
        split_name = "stored"
    else:
        train, test = stratified_holdout(votes, frac=0.2, seed=seed)
        split_name = f"holdout seed {seed}"
    n_test = len(test)
    train, test = dedupe_split(matrix.vectors, train, test, threshold=settings.STYLESITE_DUPLICATE_SIMILARITY,
                               scope="all")
    if len(test) == 0 or len(np.unique(test.liked)) < 2:
        raise NotReady("The held-out votes hold one class only (or none): nothing to evaluate.")
    side = item_side(matrix.item_ids)
    best, validation, reason = choose_served({n: (lambda n=n: make_predictor(n, side, seed)) for n in predictors},
                                             matrix.vectors, train, seed=seed)
    family_of = {p.user_id: simulated_family(p.external_id)
                 for p in VoterProfile.objects.filter(user_id__in=np.unique(test.user_ids).tolist(),
                                                      kind=VoterProfile.Kind.SIMULATED)}
    results: dict[str, dict[str, float]] = {}
    families: dict[str, dict[str, float]] = {}
    curves = {}
    for name in predictors:
        predictor = make_predictor(name, side, seed)
        results[name] = evaluate(predictor, matrix.vectors, train, test)
        per_family: dict[str, list[float]] = {}
        for user, auc in user_aucs(predictor, test).items():
            if family_of.get(user):
                per_family.setdefault(family_of[user], []).append(auc)
        families[name] = {f: float(np.mean(v)) for f, v in sorted(per_family.items())}
        by_user = test.by_user()
        curves[name] = (np.concatenate([liked for _, liked in by_user.values()]),
                        np.concatenate([predictor.score(u, items) for u, (items, _) in by_user.items()]))
    report = PreferenceReport.objects.create(
        collection=collection, split=split_name, n_users=len(np.unique(test.user_ids)), n_votes=len(test),
        dropped_duplicates=n_test - len(test), results=results, best=best, served_reason=reason,
        validation=validation, families={n: f for n, f in families.items() if f}, roc_svg=roc_svg(curves),
    )
    if serve:
        ServedPredictor.objects.update_or_create(collection=collection, defaults={"name": best, "report": report})
        preference_refit_soon(collection.pk)
    return report
