"""Writes to the catalogue. Views, commands, admin actions and the API call these."""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from ml.images import ImageRejected, decode_image, make_thumbnail, sha256_of
from stylesite.exceptions import Conflict, InvalidInput

from .archives import archive_check
from .importers import ImportRecord, csv_missing_columns
from .models import Collection, ImportJob, ImportRow, Item, ItemImage, stuck_cutoff
from .signals import catalogue_deleted, image_added


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
    external_id: str = ""


def item_create(*, collection: Collection, fields: ItemFields) -> Item:
    item = Item(collection=collection, **fields.__dict__)
    _item_check(item)
    try:
        with transaction.atomic():
            item.save()
    except IntegrityError as exc:
        if not item.external_id:  # the only unique key an item has
            raise
        raise Conflict(f"collection {collection.slug!r} already has an item with external_id "
                       f"{item.external_id!r}; PUT /api/collections/{collection.slug}/items/<external_id>/ "
                       "updates it") from exc
    return item


def _item_check(item: Item) -> None:
    """Validate an item's fields (``InvalidInput`` with every problem) before it is saved."""
    if item.split not in Item.Split.values:
        raise InvalidInput(f"unknown split {item.split!r}; use one of {', '.join(Item.Split.values)}")
    if item.gender and item.gender not in Item.Gender.values:
        raise InvalidInput(f"unknown gender {item.gender!r}; use one of {', '.join(Item.Gender.values)}")
    try:
        item.full_clean(exclude=["collection"])
    except ValidationError as exc:
        raise InvalidInput("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from exc


def item_upsert(*, collection: Collection, external_id: str, fields: ItemFields) -> tuple[Item, bool]:
    """Create or update the item the client knows as ``external_id``; returns (item, created).

    Every field of ``fields`` is written (a full replacement, as PUT means), except the key itself.
    Two concurrent upserts of one key end as one item: the loser of the insert race updates.
    """
    external_id = external_id.strip()
    if not external_id or len(external_id) > 200:
        raise InvalidInput("external_id needs 1 to 200 characters")
    values = {**fields.__dict__, "external_id": external_id}
    with transaction.atomic():
        item = Item.objects.select_for_update().filter(collection=collection, external_id=external_id).first()
        if item is None:
            try:
                return item_create(collection=collection, fields=ItemFields(**values)), True
            except Conflict:
                item = Item.objects.select_for_update().get(collection=collection, external_id=external_id)
        for name, value in values.items():
            setattr(item, name, value)
        _item_check(item)
        item.save()
    return item, False


def upload_check_size(size: int) -> None:
    """Refuse an image file over the cap (or empty) before anything decodes it."""
    cap = settings.STYLESITE_UPLOAD_MAX_BYTES
    if size > cap:
        raise InvalidInput(f"the file is {size / 1e6:.1f} MB; images may be at most {cap / 1e6:.0f} MB")
    if size == 0:
        raise InvalidInput("the file is empty")


class DuplicateImage(Exception):
    def __init__(self, existing: ItemImage):
        super().__init__(f"same file as image {existing.pk} of item {existing.item_id}")
        self.existing = existing


@dataclass(frozen=True)
class ImageFile:
    """An image file checked and decoded for storing: its bytes, hash, upright size and thumbnail."""
    data: bytes
    sha256: str
    width: int
    height: int
    thumbnail: bytes


def image_file_read(data: bytes) -> ImageFile:
    """Check an image file and make its thumbnail (no database access: an import runs this in
    threads while it stores earlier rows).

    Raises ``InvalidInput`` for an empty file, one over ``STYLESITE_UPLOAD_MAX_BYTES`` or one that is
    not a safe JPEG/PNG/WebP image.
    """
    upload_check_size(len(data))
    try:
        decoded = decode_image(data, max_pixels=settings.STYLESITE_MAX_PIXELS,
                               draft_size=settings.STYLESITE_THUMBNAIL_SIZE * 2)
    except ImageRejected as exc:
        raise InvalidInput(str(exc)) from exc
    return ImageFile(data=data, sha256=sha256_of(data), width=decoded.info.get("source_width", decoded.width),
                     height=decoded.info.get("source_height", decoded.height),
                     thumbnail=make_thumbnail(decoded, settings.STYLESITE_THUMBNAIL_SIZE))


def image_add(*, item: Item, data: bytes | ImageFile, filename: str, announce: bool = True,
              first: bool = False) -> ItemImage:
    """Validate an image file (unless ``image_file_read`` did) and attach it to ``item`` (``first``:
    the item has no image yet); the pipeline runs after commit (unless ``announce`` is False: then
    the caller announces it with others, see ``records_import``).

    Raises ``InvalidInput`` as ``image_file_read`` does, and ``DuplicateImage`` when the collection
    already holds the same bytes: the unique constraint finds it, with no look-up before the insert
    (an import stores tens of images a second).
    """
    file = data if isinstance(data, ImageFile) else image_file_read(data)
    digest = file.sha256
    stem = Path(filename).stem[:80] or "image"
    image = ItemImage(item=item, collection_id=item.collection_id, sha256=digest, width=file.width,
                      height=file.height, position=0 if first else item.images.count())
    image.original.save(f"{stem}{Path(filename).suffix.lower() or '.jpg'}", ContentFile(file.data), save=False)
    image.thumbnail.save(f"{stem}.webp", ContentFile(file.thumbnail), save=False)
    try:
        with transaction.atomic():
            image.save()
    except IntegrityError:
        image.original.delete(save=False)
        image.thumbnail.delete(save=False)
        # The collection holds the same bytes (saved earlier, or by a concurrent import just now).
        existing = ItemImage.objects.filter(collection_id=item.collection_id, sha256=digest).first()
        if existing is None:
            raise
        raise DuplicateImage(existing) from None
    if announce:
        images_added_announce([image.pk])
    return image


def images_added_announce(image_ids: list[int]) -> None:
    """Tell the pipeline, once the current transaction commits, that these images wait for it."""
    if image_ids:
        transaction.on_commit(lambda: image_added.send(sender=ItemImage, image_ids=list(image_ids)))


def item_create_with_image(*, collection: Collection, fields: ItemFields, data: bytes | ImageFile, filename: str,
                           announce: bool = True) -> ItemImage:
    """Create an item and its first image together: both or neither. Returns the image."""
    with transaction.atomic():
        item = item_create(collection=collection, fields=fields)
        return image_add(item=item, data=data, filename=filename, announce=announce, first=True)


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


def image_delete(image: ItemImage) -> None:
    """Delete one image: its row, its vectors (cascade) and, after commit, its files.

    The row is locked first, so a pipeline task finishing this image either committed before
    (and its mask and cut-out are deleted with the row) or finds the row gone and removes what it
    wrote itself. Deleting an image already gone changes nothing.
    """
    with transaction.atomic():
        locked = ItemImage.objects.select_for_update().filter(pk=image.pk).first()
        if locked is None:
            return
        locked.delete()
        _deleted_announce(locked.collection_id, item_ids=[], image_ids=[locked.pk])


def item_delete(item: Item) -> None:
    """Delete an item with its images, their files and vectors, and its votes (cascade)."""
    with transaction.atomic():
        # Lock the images before the cascade reads them (see ``image_delete``).
        image_ids = list(ItemImage.objects.select_for_update().filter(item_id=item.pk).values_list("pk", flat=True))
        deleted, _ = Item.objects.filter(pk=item.pk).delete()
        if deleted:
            _deleted_announce(item.collection_id, item_ids=[item.pk], image_ids=image_ids)


def _deleted_announce(collection_id: int, *, item_ids: list[int], image_ids: list[int]) -> None:
    transaction.on_commit(lambda: catalogue_deleted.send(
        sender=Item, collection_id=collection_id, item_ids=item_ids, image_ids=image_ids))


def files_delete_on_commit(*fields) -> None:
    """Remove the stored files of deleted rows once the deleting transaction commits.

    Called when an ItemImage or ImportJob row is deleted (``catalog.receivers``), whichever way:
    a service, a cascade, the admin. A rollback keeps the files with their row.
    """
    stored = [(f.storage, f.name) for f in fields if f]

    def delete() -> None:
        for storage, name in stored:
            storage.delete(name)

    transaction.on_commit(delete)


# --- Importing records (the import command and import jobs) ------------------------------

# Rows imported in one transaction: one commit and one announcement to the pipeline per chunk,
# not per row (per-row commits and task messages capped the import below the pipeline's rate).
IMPORT_CHUNK = 64
# ``report(index, record, outcome, reason, item)``: one call per row, inside its chunk's transaction.
RowReport = Callable[[int, ImportRecord, str, str, Item | None], None]


def records_import(collection: Collection, records: Sequence[ImportRecord], report: RowReport) -> None:
    """Import ``records`` in chunks of ``IMPORT_CHUNK``, each chunk in one transaction with a
    savepoint per row, so a bad row is reported ("rejected" or "duplicate") and fails alone.

    Two threads read, check and thumbnail the next chunk's files while this one stores the current
    chunk. ``report`` runs inside the chunk's transaction, so an import job's row report commits
    with its row. The chunk's new images are announced to the pipeline once, after commit. When a
    chunk's transaction fails, the files its rows wrote are removed and the error propagates:
    nothing of the chunk stays, and importing again resumes (a file already imported is a duplicate).
    """
    from concurrent.futures import ThreadPoolExecutor

    starts = range(0, len(records), IMPORT_CHUNK)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="import-read") as pool:
        ahead = pool.map(_record_read, records[:IMPORT_CHUNK])
        for start in starts:
            files = list(ahead)
            ahead = pool.map(_record_read, records[start + IMPORT_CHUNK:start + 2 * IMPORT_CHUNK])
            _chunk_store(collection, records, start, files, report)


def _chunk_store(collection: Collection, records: Sequence[ImportRecord], start: int,
                 files: list[ImageFile | str], report: RowReport) -> None:
    """Store one chunk (``files[i]`` is record ``start + i``'s checked file, or why it was rejected)."""
    written: list[ItemImage] = []
    try:
        with transaction.atomic():
            for offset, file in enumerate(files):
                record = records[start + offset]
                outcome, reason, image = _record_store(collection, record, file)
                if outcome == ImportRow.Outcome.IMPORTED:
                    written.append(image)
                report(start + offset, record, outcome, reason, image.item if image else None)
            images_added_announce([image.pk for image in written])
    except BaseException:
        for image in written:
            image.original.delete(save=False)
            image.thumbnail.delete(save=False)
        raise


def _record_read(record: ImportRecord) -> ImageFile | str:
    """A record's checked image file, or why the record is rejected (no database access)."""
    if record.error:
        return record.error
    try:
        return image_file_read(record.path.read_bytes())
    except OSError as exc:
        return f"cannot read file: {exc.strerror or exc}"
    except InvalidInput as exc:
        return exc.message


def _record_store(collection: Collection, record: ImportRecord, file: ImageFile | str
                  ) -> tuple[str, str, ItemImage | None]:
    """Store one record: ("imported" | "duplicate" | "rejected", reason, its image or None); the
    caller announces the new image to the pipeline."""
    if isinstance(file, str):
        return ImportRow.Outcome.REJECTED, file, None
    extra = dict(record.extra)
    try:
        price = Decimal(extra.pop("price")) if "price" in extra else None
    except InvalidOperation:
        return ImportRow.Outcome.REJECTED, f"price {record.extra['price']!r} is not a number", None
    fields = ItemFields(
        title=extra.pop("title", "") or default_title(record),
        label=record.label, split=record.split, source_name=record.path.name, price=price, **extra,
    )
    try:
        image = item_create_with_image(collection=collection, fields=fields, data=file, filename=record.path.name,
                                       announce=False)
    except DuplicateImage as exc:
        return ImportRow.Outcome.DUPLICATE, str(exc), exc.existing
    except InvalidInput as exc:
        return ImportRow.Outcome.REJECTED, exc.message, None
    return ImportRow.Outcome.IMPORTED, "", image


def default_title(record: ImportRecord) -> str:
    """A readable title when the source has none: the label and the start of the file name
    (dataset file names are often opaque ids such as ``28709ef4-cebf-40c5-…``)."""
    stem = record.path.stem.replace("_", " ")
    if not record.label:
        return stem
    return f"{record.label.replace('-', ' ').capitalize()} {stem[:8].strip()}"


# --- Import jobs -------------------------------------------------------------------------

# A CSV of image names is small; this bounds what the web process reads to check one.
IMPORT_CSV_MAX_BYTES = 20 * 1024 * 1024


def import_job_create(*, collection: Collection, csv_file: UploadedFile, zip_file: UploadedFile,
                      user: AbstractBaseUser | None = None) -> ImportJob:
    """Check a CSV (the ``csv`` layout) and a zip of its images, store both, and queue the job.

    ``InvalidInput`` (nothing stored) for a CSV without the required columns or not UTF-8, and for
    a zip that is unreadable, too large, has too many files or an unsafe member name.
    """
    import_files_check(csv_file, zip_file)
    job = ImportJob(collection=collection, created_by=user)
    job.csv_file.save("import.csv", csv_file, save=False)
    job.zip_file.save("images.zip", zip_file, save=False)
    job.save()
    transaction.on_commit(lambda: import_job_enqueue(job.pk))
    return job


def import_files_check(csv_file: UploadedFile, zip_file: UploadedFile) -> None:
    """``InvalidInput`` unless the CSV has the ``csv`` layout's columns and the zip is safe to extract."""
    if csv_file.size > IMPORT_CSV_MAX_BYTES:
        raise InvalidInput(f"the CSV is {csv_file.size / 1e6:.1f} MB; at most {IMPORT_CSV_MAX_BYTES / 1e6:.0f} MB")
    try:
        text = csv_file.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the CSV is not UTF-8 text") from exc
    finally:
        csv_file.seek(0)
    try:
        missing = csv_missing_columns(csv.DictReader(io.StringIO(text)).fieldnames)
    except csv.Error as exc:
        raise InvalidInput(f"the CSV cannot be read: {exc}") from exc
    if missing:
        raise InvalidInput(f"the CSV lacks column(s): {', '.join(missing)} (header: image,label,…)")
    archive_check(zip_file)


def import_job_enqueue(job_id: int) -> None:
    from .tasks import import_job_run_task  # tasks import this module

    import_job_run_task.delay(job_id)


def import_job_claim(job_id: int) -> ImportJob | None:
    """Move a queued (or long-stuck running) job to running; None when it is done or someone has it."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id).filter(
        Q(status=ImportJob.Status.QUEUED) | Q(status=ImportJob.Status.RUNNING, started__lt=stuck_cutoff(now))
    ).update(status=ImportJob.Status.RUNNING, started=now, error="")
    if not claimed:
        return None
    return ImportJob.objects.select_related("collection").filter(pk=job_id).first()


def import_job_start(job: ImportJob, total: int) -> None:
    """Record how many rows the job has (known once its CSV is read)."""
    ImportJob.objects.filter(pk=job.pk).update(total=total)


def import_row_record(job: ImportJob, *, row: int, image: str, outcome: str, reason: str,
                      item: Item | None) -> None:
    """Report one row and count it (call inside the transaction that imported it)."""
    ImportRow.objects.create(job=job, row=row, image=image[:500], outcome=outcome, reason=reason, item=item)
    ImportJob.objects.filter(pk=job.pk).update(processed=F("processed") + 1, **{outcome: F(outcome) + 1})


def import_job_finish(job: ImportJob) -> None:
    ImportJob.objects.filter(pk=job.pk).update(status=ImportJob.Status.DONE, finished=timezone.now())


def import_job_fail(job_id: int, reason: str) -> None:
    """The whole job cannot run (e.g. the archive is bad); rows reported so far stay."""
    ImportJob.objects.filter(pk=job_id).update(status=ImportJob.Status.FAILED, error=reason[:2000],
                                               finished=timezone.now())
