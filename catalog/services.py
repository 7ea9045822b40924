"""Writes to the catalogue. Views, commands, admin actions and the API call these."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from ml.images import ImageRejected, decode_image, make_thumbnail, sha256_of
from stylesite.exceptions import InvalidInput

from .models import Collection, Item, ItemImage, stuck_cutoff
from .signals import image_added


def collection_create(
    *, name: str, slug: str = "", kind: str = Collection.Kind.FASHION, description: str = "",
    remove_background: bool | None = None,
) -> Collection:
    if remove_background is None:
        # Looks and garments are cut out; interiors and artwork keep their background.
        remove_background = kind == Collection.Kind.FASHION
    return Collection.objects.create(
        name=name, slug=slug or slugify(name), kind=kind, description=description,
        remove_background=remove_background,
    )


@dataclass(frozen=True)
class ItemFields:
    title: str
    label: str = ""
    category: str = ""
    gender: str = ""
    period: str = ""
    split: str = Item.Split.NONE
    source_name: str = ""
    external_url: str = ""
    price: Decimal | None = None


def item_create(*, collection: Collection, fields: ItemFields) -> Item:
    if fields.split not in Item.Split.values:
        raise InvalidInput(f"unknown split {fields.split!r}; use one of {', '.join(Item.Split.values)}")
    if fields.gender and fields.gender not in Item.Gender.values:
        raise InvalidInput(f"unknown gender {fields.gender!r}; use one of {', '.join(Item.Gender.values)}")
    item = Item(collection=collection, **fields.__dict__)
    try:
        item.full_clean(exclude=["collection"])
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc
    item.save()
    return item


class DuplicateImage(Exception):
    def __init__(self, existing: ItemImage):
        super().__init__(f"same file as image {existing.pk} of item {existing.item_id}")
        self.existing = existing


def image_add(*, item: Item, data: bytes, filename: str) -> ItemImage:
    """Validate an image file and attach it to ``item``; the pipeline runs after commit.

    Raises ``InvalidInput`` for a file that is not a safe JPEG/PNG/WebP image and
    ``DuplicateImage`` when the collection already holds the same bytes.
    """
    try:
        decoded = decode_image(data, max_pixels=settings.STYLESITE_MAX_PIXELS,
                               draft_size=settings.STYLESITE_THUMBNAIL_SIZE * 2)
    except ImageRejected as exc:
        raise InvalidInput(str(exc)) from exc
    digest = sha256_of(data)
    existing = ItemImage.objects.filter(collection_id=item.collection_id, sha256=digest).first()
    if existing:
        raise DuplicateImage(existing)
    stem = Path(filename).stem[:80] or "image"
    image = ItemImage(
        item=item, collection_id=item.collection_id, sha256=digest,
        width=decoded.info.get("source_width", decoded.width),
        height=decoded.info.get("source_height", decoded.height),
        position=item.images.count(),
    )
    image.original.save(f"{stem}{Path(filename).suffix.lower() or '.jpg'}", ContentFile(data), save=False)
    image.thumbnail.save(f"{stem}.webp", ContentFile(make_thumbnail(decoded, settings.STYLESITE_THUMBNAIL_SIZE)),
                         save=False)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        # A concurrent import saved the same bytes first.
        image.original.delete(save=False)
        image.thumbnail.delete(save=False)
        raise DuplicateImage(ItemImage.objects.get(collection_id=item.collection_id, sha256=digest))
    transaction.on_commit(lambda: image_added.send(sender=ItemImage, image_id=image.pk))
    return image


def item_create_with_image(*, collection: Collection, fields: ItemFields, data: bytes, filename: str) -> Item:
    """Create an item and its first image together: both or neither."""
    with transaction.atomic():
        item = item_create(collection=collection, fields=fields)
        image_add(item=item, data=data, filename=filename)
    return item


def image_claim(image_id: int, token: str = "") -> ItemImage | None:
    """Move a pending (or long-stuck) image to processing for the task ``token``; None when another
    task holds it or it is done.

    A task redelivered after its worker died carries the same id (``token``), so it resumes its own
    claim at once instead of waiting for the sweep. An empty token never matches a claim.
    """
    now = timezone.now()
    claimable = Q(status=ItemImage.Status.PENDING) | Q(status=ItemImage.Status.PROCESSING,
                                                       status_changed__lt=stuck_cutoff(now))
    if token:
        claimable |= Q(status=ItemImage.Status.PROCESSING, claimed_by=token)
    claimed = ItemImage.objects.filter(pk=image_id).filter(claimable).update(
        status=ItemImage.Status.PROCESSING, status_changed=now, attempts=F("attempts") + 1, claimed_by=token,
    )
    if not claimed:
        return None
    return ItemImage.objects.select_related("item", "collection").get(pk=image_id)


def images_claim_more(token: str, limit: int, exclude: int | None = None) -> list[ItemImage]:
    """Claim up to ``limit`` more pending images for the task ``token`` (a batching worker), oldest
    first, plus any this task claimed before its worker died; ``exclude`` is the task's own image.
    Rows another transaction is claiming are skipped, so workers never wait on each other or take
    the same image."""
    if not token or limit <= 0:
        return []
    with transaction.atomic():
        ids = list(
            ItemImage.objects.select_for_update(skip_locked=True)
            .filter(Q(status=ItemImage.Status.PENDING) | Q(status=ItemImage.Status.PROCESSING, claimed_by=token))
            .exclude(pk=exclude).order_by("id").values_list("pk", flat=True)[:limit]
        )
        ItemImage.objects.filter(pk__in=ids).update(status=ItemImage.Status.PROCESSING, status_changed=timezone.now(),
                                                    attempts=F("attempts") + 1, claimed_by=token)
    return list(ItemImage.objects.select_related("item", "collection").filter(pk__in=ids).order_by("id"))


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
                     suspect: bool, refined: bool = True) -> None:
    """Record a processed image (call inside the transaction that stores its vector); ``refined``
    is False after the first of two passes (embedded uncut, the cut-out still to come)."""
    ItemImage.objects.filter(pk=image_id).update(
        status=ItemImage.Status.READY, error="", status_changed=timezone.now(), claimed_by="",
        mask=mask, cutout=cutout, foreground_share=foreground_share, suspect=suspect, refined=refined,
    )


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


def item_relabel(item: Item, label: str) -> Item:
    """Change an item's label (a curator's correction); the next classifier job sees the new label."""
    label = label.strip()
    if not label or len(label) > 100:
        raise InvalidInput("a label needs 1 to 100 characters")
    Item.objects.filter(pk=item.pk).update(label=label, updated=timezone.now())
    item.label = label
    return item


def item_merge(*, keep: Item, drop: Item) -> Item:
    """Move ``drop``'s images to ``keep`` (after its own) and delete ``drop``.

    Rows of other apps that point at ``drop`` must be moved by their owner first, in the same
    transaction: whatever still points at it is deleted with it by cascade.
    """
    with transaction.atomic():
        offset = keep.images.count()
        for image in drop.images.order_by("position", "id"):
            ItemImage.objects.filter(pk=image.pk).update(item=keep, position=offset + image.position)
        Item.objects.filter(pk=keep.pk).update(updated=timezone.now())
        drop.delete()
    return keep


def image_mark_pending(images: list[ItemImage] | None = None, *, ids: list[int] | None = None) -> int:
    """Send images back through the pipeline (admin "re-process" action)."""
    ids = ids if ids is not None else [img.pk for img in images or []]
    count = ItemImage.objects.filter(pk__in=ids).update(
        status=ItemImage.Status.PENDING, error="", attempts=0, status_changed=timezone.now()
    )
    for image_id in ids:
        transaction.on_commit(lambda image_id=image_id: image_added.send(sender=ItemImage, image_id=image_id))
    return count
