"""Catalog's own signal receivers, connected in ``CatalogConfig.ready``."""
from __future__ import annotations

from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import ImportJob, ItemImage
from .services import files_delete_on_commit


@receiver(post_delete, sender=ItemImage, dispatch_uid="catalog-image-files-delete")
def image_deleted(sender, instance: ItemImage, **_kwargs) -> None:
    """However an image row goes (service, cascade, admin), its files go after commit."""
    files_delete_on_commit(instance.original, instance.thumbnail, instance.mask, instance.cutout)


@receiver(post_delete, sender=ImportJob, dispatch_uid="catalog-import-files-delete")
def import_job_deleted(sender, instance: ImportJob, **_kwargs) -> None:
    """A deleted import job takes its uploaded CSV and zip with it (its items stay)."""
    files_delete_on_commit(instance.csv_file, instance.zip_file)
