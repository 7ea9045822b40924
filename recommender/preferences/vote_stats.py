"""Votes per label: the recommender's part of the statistics page, its API and ``catalog_stats``.

Catalog knows nothing of votes, so these figures reach its statistics through catalog's openings:
a template in the page's ``stats_collection`` slot, a table for ``catalog_stats``
(``catalog.hooks.stats_table_register``), and the route ``/api/stats/votes/`` beside ``/api/stats/``.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q

from catalog.hooks import StatsTable
from catalog.models import Collection

from ..models import Vote


@dataclass(frozen=True)
class LabelVotes:
    label: str
    likes: int
    dislikes: int
    total: int
    like_share: float  # likes over votes


@dataclass(frozen=True)
class VoteStats:
    collection: Collection
    likes: int
    dislikes: int
    voters: int
    like_share: float | None  # None without votes
    labels: list[LabelVotes]  # most voted first


def vote_stats(collection: Collection) -> VoteStats:
    """Likes and dislikes of ``collection``'s items, overall and per item label."""
    votes = Vote.objects.filter(item__collection=collection)
    rows = (votes.values("item__label")
            .annotate(likes=Count("id", filter=Q(value=Vote.Value.LIKE)),
                      dislikes=Count("id", filter=Q(value=Vote.Value.DISLIKE))))
    labels = [LabelVotes(r["item__label"], r["likes"], r["dislikes"], r["likes"] + r["dislikes"],
                         r["likes"] / (r["likes"] + r["dislikes"])) for r in rows]
    labels.sort(key=lambda v: (-v.total, v.label))
    likes, dislikes = sum(v.likes for v in labels), sum(v.dislikes for v in labels)
    return VoteStats(collection, likes, dislikes, votes.values("user_id").distinct().count(),
                     likes / (likes + dislikes) if likes + dislikes else None, labels)


def vote_stats_table(collection: Collection) -> StatsTable:
    """``vote_stats`` as a table for ``manage.py catalog_stats``."""
    stats = vote_stats(collection)
    share = f"{100 * stats.like_share:.0f}% likes" if stats.like_share is not None else "no votes"
    return StatsTable(f"votes per label ({stats.voters} voters, {share})", ["label", "likes", "dislikes", "like %"],
                      [[v.label or "(no label)", v.likes, v.dislikes, round(100 * v.like_share, 1)]
                       for v in stats.labels])
