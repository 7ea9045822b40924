from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone


class Collection(models.Model):
    class Kind(models.TextChoices):
        FASHION = "fashion", "Fashion"
        WEBTOON = "webtoon", "Webtoon art"
        CAFE = "cafe", "Café interiors"
        OTHER = "other", "Other"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FASHION)
    remove_background = models.BooleanField(
        default=True, help_text="Cut the subject out of its background before embedding."
    )
    embedding_model = models.CharField(
        max_length=100,
        default=settings.STYLESITE_EMBEDDING_MODEL,
        help_text="Embedding model searches use. Change it with `manage.py reembed --activate`, "
        "which embeds every image first so searches never mix models.",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ItemQuerySet(models.QuerySet):
    def visible(self) -> ItemQuerySet:
        """Items a visitor may see: those with at least one image that did not fail.

        A semi-join (EXISTS), not a join with DISTINCT: the page's count then needs no de-duplication
        of every item row (about 0.4 s at 100k items; bench/load.py)."""
        return self.filter(models.Exists(ItemImage.objects.filter(
            item=models.OuterRef("pk"), status__in=ItemImage.VISIBLE_STATUSES)))

    def with_cover(self) -> ItemQuerySet:
        return self.select_related("collection").prefetch_related(
            models.Prefetch("images", queryset=ItemImage.objects.order_by("position", "id"))
        )


class Item(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "Train"
        VALIDATION = "validation", "Validation"
        TEST = "test", "Test"
        NONE = "none", "None"

    class Gender(models.TextChoices):
        WOMEN = "W", "Women"
        MEN = "M", "Men"
        UNISEX = "U", "Unisex"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="items")
    title = models.CharField(max_length=300)
    label = models.CharField(max_length=100, blank=True, db_index=True, help_text="Style or class.")
    category = models.CharField(max_length=100, blank=True)
    gender = models.CharField(max_length=1, choices=Gender.choices, blank=True)
    period = models.CharField(max_length=20, blank=True)
    split = models.CharField(max_length=12, choices=Split.choices, default=Split.NONE)
    source_name = models.CharField(max_length=300, blank=True, db_index=True)
    external_url = models.URLField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2, null=True, blank=True)
    external_id = models.CharField(
        max_length=200, blank=True, default="",
        help_text="The client's own key for this item, unique per collection (idempotent upserts).",
    )
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    objects = ItemQuerySet.as_manager()

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [
            models.Index(fields=["collection", "label", "gender", "split"]),
            # The changes feed pages by (updated, id).
            models.Index(fields=["updated", "id"], name="item_updated_id"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["collection", "external_id"], condition=~models.Q(external_id=""),
                                    name="unique_external_id_per_collection"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("catalog:item-detail", args=[self.pk])

    def images_loaded(self, images: list[ItemImage]) -> None:
        """Make ``self.images.all()`` answer ``images`` (ordered as ``with_cover`` orders them) without a
        query, as ``prefetch_related("images")`` would: for reads that fetch the images in their own
        statement (``Embedding.objects.nearest_items``)."""
        queryset = self.images.all()
        queryset._result_cache = images
        queryset._prefetch_done = True
        self._prefetched_objects_cache = {**getattr(self, "_prefetched_objects_cache", {}), "images": queryset}

    @property
    def cover(self) -> ItemImage | None:
        images = list(self.images.all())
        return images[0] if images else None


def stuck_cutoff(now: datetime | None = None) -> datetime:
    """A pending/processing image whose status is older than this is stuck (e.g. its worker died)."""
    return (now or timezone.now()) - timedelta(seconds=settings.STYLESITE_STUCK_AFTER_SECONDS)


def lease_cutoff(now: datetime | None = None) -> datetime:
    """A processing image whose claim was last renewed before this has lost its task (its worker died)."""
    return (now or timezone.now()) - timedelta(seconds=settings.STYLESITE_CLAIM_LEASE_SECONDS)


class ItemImageQuerySet(models.QuerySet):
    def stuck(self, now: datetime | None = None) -> ItemImageQuerySet:
        """Images that waited in pending/processing longer than ``STYLESITE_STUCK_AFTER_SECONDS``."""
        return self.filter(status__in=[ItemImage.Status.PENDING, ItemImage.Status.PROCESSING],
                           status_changed__lt=stuck_cutoff(now))


class ItemImage(models.Model):
    """One photo of an item and its pipeline state.

    The state changes only through ``catalog.services`` (``image_claim``, ``image_release``,
    ``image_fail``, ``image_mark_pending``) and the pipeline's ``image_mark_ready``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    VISIBLE_STATUSES = (Status.PENDING, Status.PROCESSING, Status.READY)

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="images")
    # Denormalised from item so that one file is one image per collection (a unique key).
    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="images")
    original = models.ImageField(upload_to="originals/%Y/%m/")
    thumbnail = models.ImageField(upload_to="thumbs/%Y/%m/", blank=True)
    mask = models.ImageField(upload_to="masks/%Y/%m/", blank=True)
    cutout = models.ImageField(upload_to="cutouts/%Y/%m/", blank=True)
    foreground_share = models.FloatField(null=True, blank=True)
    cutter = models.CharField(max_length=100, blank=True,
                              help_text="The background model that made the mask; empty when the image has none.")
    suspect = models.BooleanField(default=False, help_text="Cut-out looks wrong; embedded from the uncut image.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_index=True)
    status_changed = models.DateTimeField(auto_now_add=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # The task that holds a processing image: its redelivery (same task id) resumes the claim.
    claimed_by = models.CharField(max_length=64, blank=True)
    # Pass 2 done: cut out and embedded again (always true where the collection keeps backgrounds).
    refined = models.BooleanField(default=False)
    width = models.PositiveIntegerField(default=0)
    height = models.PositiveIntegerField(default=0)
    sha256 = models.CharField(max_length=64)
    position = models.PositiveSmallIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)

    objects = ItemImageQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["collection", "sha256"], name="unique_image_per_collection"),
        ]
        indexes = [models.Index(fields=["collection", "status"])]

    def __str__(self) -> str:
        return f"{self.item} #{self.position}"


class ImportJob(models.Model):
    """A bulk import sent as a CSV (the ``csv`` layout) plus a zip of the images it names.

    Runs in Celery (``catalog.tasks.import_job_run_task``); each CSV row gets an ``ImportRow``
    (imported, duplicate or rejected with a reason), which is the downloadable report.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    collection = models.ForeignKey(Collection, on_delete=models.CASCADE, related_name="import_jobs")
    csv_file = models.FileField(upload_to="imports/%Y/%m/")
    zip_file = models.FileField(upload_to="imports/%Y/%m/")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    error = models.TextField(blank=True, help_text="Why the whole job failed (a bad archive or CSV).")
    total = models.PositiveIntegerField(default=0, help_text="CSV rows to import (known once running).")
    processed = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    duplicate = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"Import #{self.pk} into {self.collection}"


class ImportRow(models.Model):
    """The outcome of one CSV row of an import job (one line of its report)."""

    class Outcome(models.TextChoices):
        IMPORTED = "imported", "Imported"
        DUPLICATE = "duplicate", "Duplicate"
        REJECTED = "rejected", "Rejected"

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="rows")
    row = models.PositiveIntegerField(help_text="Data row of the CSV: 1 is the first row after the header.")
    image = models.CharField(max_length=500)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    item = models.ForeignKey(Item, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["row"]
        constraints = [models.UniqueConstraint(fields=["job", "row"], name="unique_import_row")]
