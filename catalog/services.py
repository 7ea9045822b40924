"""Writes to the catalogue. Views, commands, admin actions and the API call these."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from ml.images import ImageRejected, decode_image, make_thumbnail, sha256_of
from stylesite.exceptions import InvalidInput

from .models import Collection, Item, ItemImage
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


def image_mark_pending(images: list[ItemImage] | None = None, *, ids: list[int] | None = None) -> int:
    """Send images back through the pipeline (admin "re-process" action)."""
    ids = ids if ids is not None else [img.pk for img in images or []]
    count = ItemImage.objects.filter(pk__in=ids).update(
        status=ItemImage.Status.PENDING, error="", attempts=0, status_changed=timezone.now()
    )
    for image_id in ids:
        transaction.on_commit(lambda image_id=image_id: image_added.send(sender=ItemImage, image_id=image_id))
    return count
