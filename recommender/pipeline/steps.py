"""The pipeline's steps: decode → background removal → cut-out check → subject crop.

Used by ``services.image_process`` (catalogue images), ``reembed`` (rebuilding crops) and photo
search (the same cut-out and crop for a query). ``ml`` does the image work.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from PIL import Image

from catalog.models import ItemImage

# Background removal and cropping work on a copy this large (the ISNet input is 1024 px).
WORKING_SIZE = 1024


class PermanentFailure(Exception):
    """The image itself (or the configuration) is at fault: retrying will not help."""


@dataclass
class Prepared:
    crop: Image.Image
    mask: np.ndarray | None
    share: float | None
    suspect: bool


def decode(image: ItemImage, size: int = WORKING_SIZE) -> Image.Image:
    """The image upright and reduced to fit ``size`` (JPEGs decode directly at a smaller scale)."""
    from ml.images import ImageRejected, decode_image

    with image.original.open("rb") as handle:
        data = handle.read()
    try:
        return decode_image(data, max_pixels=settings.STYLESITE_MAX_PIXELS, draft_size=size)
    except ImageRejected as exc:
        raise PermanentFailure(str(exc)) from exc


def cut_out(rgb: Image.Image, collection_id: int, image_id: int | None = None) -> tuple[np.ndarray, float, bool]:
    """The background mask, the subject's share of the image, and whether the mask looks wrong
    next to the collection's other masks. Raises ``BackgroundModelMissing``."""
    mask, share = mask_of(rgb)
    return mask, share, mask_suspect(share, collection_shares(collection_id, image_id))


def mask_of(rgb: Image.Image, threads: int = 0) -> tuple[np.ndarray, float]:
    """The background mask and the subject's share (no database access: safe in a decode thread).
    ``threads``: the inference's threads (0: every core; the pipeline runs two at one thread each)."""
    from ml.background import foreground_share, remove_background

    mask = remove_background(rgb, model=settings.STYLESITE_BACKGROUND_MODEL, size=settings.STYLESITE_BACKGROUND_SIZE,
                             threads=threads, precision=settings.STYLESITE_BACKGROUND_PRECISION)
    return mask, foreground_share(mask)


def current_cutter() -> str:
    """``ml.background.cutter_id`` of the background settings in force."""
    from ml.background import cutter_id

    return cutter_id(settings.STYLESITE_BACKGROUND_MODEL, settings.STYLESITE_BACKGROUND_SIZE,
                     settings.STYLESITE_BACKGROUND_PRECISION)


def collection_shares(collection_id: int, exclude_id: int | None = None) -> list[float]:
    """The subject shares of the collection's other cut-outs, against which a new mask is checked."""
    return list(
        ItemImage.objects.filter(collection_id=collection_id, foreground_share__isnull=False)
        .exclude(pk=exclude_id).values_list("foreground_share", flat=True)
    )


def mask_suspect(share: float, others: list[float]) -> bool:
    from ml.background import flag_suspect_masks

    return flag_suspect_masks(others + [share])[-1]


def prepare(image: ItemImage, decoded: Image.Image, input_size: int) -> Prepared:
    """Cut out (when the collection wants it), check the mask, crop to the subject, pad white."""
    from ml.background import BackgroundModelMissing

    rgb = decoded.convert("RGB")
    if not image.collection.remove_background:
        return Prepared(crop_for(rgb, None, input_size), None, None, False)
    try:
        mask, share, suspect = cut_out(rgb, image.collection_id, image.pk)
    except BackgroundModelMissing as exc:
        raise PermanentFailure(str(exc)) from exc
    # A suspect cut-out would embed the wrong thing: fall back to the uncut image.
    return Prepared(crop_for(rgb, None if suspect else mask, input_size), mask, share, suspect)


def crop_for(rgb: Image.Image, mask: np.ndarray | None, input_size: int) -> Image.Image:
    """The embedder's input: the cut-out on white cropped to the mask, or the whole image padded."""
    from ml.images import composite_on_white, subject_crop

    if mask is None:
        return subject_crop(rgb, None, size=input_size)
    return subject_crop(composite_on_white(rgb, mask), mask, size=input_size)


def stored_crop(image: ItemImage, input_size: int) -> Image.Image:
    """Rebuild the embedder's input from the original and the stored mask (no background model run)."""
    rgb = decode(image).convert("RGB")
    mask = None
    if image.mask and not image.suspect:
        with image.mask.open("rb") as handle:
            mask_img = Image.open(handle).convert("L")
            if mask_img.size != rgb.size:
                mask_img = mask_img.resize(rgb.size, Image.Resampling.BILINEAR)
            mask = np.asarray(mask_img, dtype=np.float32) / 255.0
    elif image.collection.remove_background and not image.suspect:
        return prepare(image, rgb, input_size).crop
    return crop_for(rgb, mask, input_size)


def cutout_files_save(image: ItemImage, decoded: Image.Image, prepared: Prepared) -> None:
    from ml.images import composite_on_white, encode_png_fast, encode_webp

    if prepared.mask is None:
        return
    mask_img = Image.fromarray((prepared.mask * 255).astype(np.uint8), mode="L")
    stem = f"{image.pk}"
    for field in (image.mask, image.cutout):
        if field:
            field.delete(save=False)
    image.mask.save(f"{stem}.png", ContentFile(encode_png_fast(mask_img)), save=False)
    image.cutout.save(f"{stem}.webp", ContentFile(encode_webp(composite_on_white(decoded.convert("RGB"),
                                                                                  prepared.mask))), save=False)
