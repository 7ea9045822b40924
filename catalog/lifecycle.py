"""ItemImage's lifecycle: the one owner of an image's pipeline state.

pending → processing (claimed by a task) → ready (pass 1; "refined" after pass 2) or failed; stuck
images go back to pending. The pipeline (in recommender) calls these; nothing else changes status.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from .models import ItemImage, lease_cutoff, stuck_cutoff
from .signals import image_added


def _lapsed(now) -> Q:
    """Processing images whose task stopped renewing its claim (``images_claims_renew``) for the lease."""
    return Q(status=ItemImage.Status.PROCESSING, status_changed__lt=lease_cutoff(now))


def image_claim(image_id: int, token: str = "") -> ItemImage | None:
    """Move a pending image (or one whose claim lapsed) to processing for the task ``token``; None
    when another task holds it or it is done.

    A task redelivered after its worker died carries the same id (``token``), so it resumes its own
    claim at once instead of waiting for the sweep. An empty token never matches a claim.
    """
    now = timezone.now()
    # A missing row (the image was deleted) claims nothing: the task ends as "skipped".
    claimable = Q(status=ItemImage.Status.PENDING) | _lapsed(now)
    if token:
        claimable |= Q(status=ItemImage.Status.PROCESSING, claimed_by=token)
    claimed = ItemImage.objects.filter(pk=image_id).filter(claimable).update(
        status=ItemImage.Status.PROCESSING, status_changed=now, attempts=F("attempts") + 1, claimed_by=token,
    )
    if not claimed:
        return None
    return ItemImage.objects.select_related("item", "collection").filter(pk=image_id).first()


def images_claim_more(token: str, limit: int, exclude: int | None = None) -> list[ItemImage]:
    """Claim up to ``limit`` more pending images for the task ``token`` (a batching worker), oldest
    first, plus any this task claimed before its worker died and any whose claim lapsed (another
    task's worker died); ``exclude`` is the task's own image. Rows another transaction is claiming
    are skipped, so workers never wait on each other or take the same image."""
    if not token or limit <= 0:
        return []
    with transaction.atomic():
        ids = list(
            ItemImage.objects.select_for_update(skip_locked=True)
            .filter(Q(status=ItemImage.Status.PENDING) | Q(status=ItemImage.Status.PROCESSING, claimed_by=token)
                    | _lapsed(timezone.now()))
            .exclude(pk=exclude).order_by("id").values_list("pk", flat=True)[:limit]
        )
        ItemImage.objects.filter(pk__in=ids).update(status=ItemImage.Status.PROCESSING, status_changed=timezone.now(),
                                                    attempts=F("attempts") + 1, claimed_by=token)
    return list(ItemImage.objects.select_related("item", "collection").filter(pk__in=ids).order_by("id"))


def images_claims_renew(tokens: set[str]) -> None:
    """Renew the claims the tasks ``tokens`` still hold, so no other task takes them over (see
    ``STYLESITE_CLAIM_LEASE_SECONDS``)."""
    tokens = {token for token in tokens if token}
    if tokens:
        ItemImage.objects.filter(status=ItemImage.Status.PROCESSING, claimed_by__in=tokens).update(
            status_changed=timezone.now())


def image_release(image_id: int) -> None:
    """Hand a claimed image back to the queue after a transient error (the retry claims it again)."""
    ItemImage.objects.filter(pk=image_id, status=ItemImage.Status.PROCESSING).update(
        status=ItemImage.Status.PENDING, status_changed=timezone.now(), claimed_by=""
    )


def image_fail(image_id: int, reason: str) -> None:
    """Mark an image failed with a reason a curator can read (shown in the admin and the API)."""
    ItemImage.objects.filter(pk=image_id).update(
        status=ItemImage.Status.FAILED, error=reason[:2000], status_changed=timezone.now(), claimed_by=""
    )


def image_mark_ready(image_id: int, *, mask: str, cutout: str, foreground_share: float | None,
                     suspect: bool, refined: bool = True, cutter: str = "") -> None:
    """Record a processed image (call inside the transaction that stores its vector); ``refined``
    is False after the first of two passes (embedded uncut, the cut-out still to come); ``cutter``
    names the background model that made the mask."""
    ItemImage.objects.filter(pk=image_id).update(
        status=ItemImage.Status.READY, error="", status_changed=timezone.now(), claimed_by="",
        mask=mask, cutout=cutout, foreground_share=foreground_share, suspect=suspect, refined=refined,
        cutter=cutter,
    )


def images_mark_recut(cutter: str, limit: int) -> list[int]:
    """Send up to ``limit`` refined images whose mask another background model made (not ``cutter``)
    back to pass 2, oldest first; returns their ids (the caller queues them). They stay ready and
    searchable on their current vector until the new cut-out replaces it; images of collections
    that keep backgrounds have no mask and are left alone."""
    ids = list(ItemImage.objects.filter(status=ItemImage.Status.READY, refined=True, claimed_by="",
                                        collection__remove_background=True)
               .exclude(cutter=cutter).order_by("id").values_list("pk", flat=True)[:limit])
    ItemImage.objects.filter(pk__in=ids, refined=True).update(refined=False)
    return ids


def image_claim_refine(image_id: int, token: str = "") -> ItemImage | None:
    """Claim a ready, not yet refined image for pass 2 (cut-out and re-embedding) for the task
    ``token``; a redelivered task resumes its own claim, a long-stale claim is taken over."""
    now = timezone.now()
    claimable = Q(claimed_by="") | Q(status_changed__lt=stuck_cutoff(now))
    if token:
        claimable |= Q(claimed_by=token)
    claimed = ItemImage.objects.filter(pk=image_id, status=ItemImage.Status.READY, refined=False).filter(
        claimable).update(status_changed=now, claimed_by=token or "pass-2")
    if not claimed:
        return None
    return ItemImage.objects.select_related("item", "collection").get(pk=image_id)


def images_claim_refine_more(token: str, limit: int, exclude: int | None = None) -> list[ItemImage]:
    """Claim up to ``limit`` more ready, unrefined images for the pass-2 task ``token`` (oldest
    first; none whose refinement failed), plus any it claimed before its worker died; rows another
    transaction is claiming are skipped."""
    if not token or limit <= 0:
        return []
    with transaction.atomic():
        ids = list(
            ItemImage.objects.select_for_update(skip_locked=True)
            .filter(status=ItemImage.Status.READY, refined=False)
            .filter(Q(claimed_by="", error="") | Q(claimed_by=token))
            .exclude(pk=exclude).order_by("id").values_list("pk", flat=True)[:limit]
        )
        ItemImage.objects.filter(pk__in=ids).update(status_changed=timezone.now(), claimed_by=token)
    return list(ItemImage.objects.select_related("item", "collection").filter(pk__in=ids).order_by("id"))


def image_refine_fail(image_id: int, reason: str) -> None:
    """Pass 2 failed: the image stays ready and searchable on its uncut vector, with the reason."""
    ItemImage.objects.filter(pk=image_id).update(error=reason[:2000], claimed_by="", status_changed=timezone.now())


def images_requeue_stuck(*, processing_only: bool, limit: int) -> list[int]:
    """Send images stuck past the bound back to pending; returns their ids (the caller queues them)."""
    stuck = ItemImage.objects.stuck()
    if processing_only:
        stuck = stuck.filter(status=ItemImage.Status.PROCESSING)
    ids = list(stuck.values_list("pk", flat=True)[:limit])
    ItemImage.objects.filter(pk__in=ids).update(status=ItemImage.Status.PENDING, status_changed=timezone.now(),
                                                claimed_by="")
    return ids


def image_mark_pending(images: list[ItemImage] | None = None, *, ids: list[int] | None = None) -> int:
    """Send images back through the pipeline (admin "re-process" action)."""
    ids = ids if ids is not None else [img.pk for img in images or []]
    count = ItemImage.objects.filter(pk__in=ids).update(
        status=ItemImage.Status.PENDING, error="", attempts=0, status_changed=timezone.now()
    )
    if ids:
        transaction.on_commit(lambda: image_added.send(sender=ItemImage, image_ids=list(ids)))
    return count


