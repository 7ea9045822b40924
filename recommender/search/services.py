"""Search by photo: turn an uploaded image into a query vector, the way catalogue images are embedded.

The upload is decoded with the pipeline's rules, optionally cropped to the garment the user
means, cut out when the collection cuts its images out, cropped to the subject, and embedded with
the collection's active model. Nothing is stored: the image and its cut-out live only in memory.
"""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image

from catalog.models import Collection
from catalog.services import upload_check_size
from stylesite.exceptions import InvalidInput, NotReady

from ..embeddings import active_model
from ..models import EmbeddingModel
from ..pipeline import WORKING_SIZE, crop_for, cut_out

_CROP = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")
Crop = tuple[int, int, int, int]


@dataclass
class QueryImage:
    vector: np.ndarray
    model: EmbeddingModel
    crop: Crop | None
    background_removed: bool
    cutout: Image.Image  # exactly what the embedder saw

    def cutout_data_url(self, size: int = 256) -> str:
        """The embedder's input as a small inline WebP, so a page can show what was searched."""
        from ml.images import encode_webp

        preview = self.cutout.copy()
        preview.thumbnail((size, size))
        return "data:image/webp;base64," + base64.b64encode(encode_webp(preview)).decode("ascii")


def crop_parse(text: str | None) -> Crop | None:
    """``"x,y,w,h"`` in source pixels (whole numbers) → a tuple; empty → None; else InvalidInput."""
    if text is None or not str(text).strip():
        return None
    match = _CROP.match(str(text))
    if not match:
        raise InvalidInput("crop must be four whole numbers x,y,w,h in pixels of the uploaded image")
    x, y, w, h = (int(v) for v in match.groups())
    return x, y, w, h  # ml.images.crop_box checks it against the image


def query_image_embed(*, data: bytes, collection: Collection, crop: Crop | None = None) -> QueryImage:
    """Embed an uploaded photo for a search in ``collection``; raises InvalidInput for a bad file."""
    from ml.background import BackgroundModelMissing
    from ml.embedders import UnknownModel, WeightsMissing, get_embedder
    from ml.images import ImageRejected, crop_box, decode_image

    upload_check_size(len(data))
    try:
        decoded = decode_image(data, max_pixels=settings.STYLESITE_SEARCH_MAX_PIXELS, draft_size=_draft_size(crop))
        if crop is not None:
            decoded = crop_box(decoded, crop)
    except ImageRejected as exc:
        raise InvalidInput(str(exc)) from exc
    model = active_model(collection)
    try:
        embedder = get_embedder(model.name)
    except (UnknownModel, WeightsMissing) as exc:
        raise NotReady(f"the collection's embedding model is not available here: {exc}") from exc
    if embedder.spec.version != model.version:
        raise NotReady(f"{collection.name} still searches {model}; this server has {embedder.spec.version}. "
                       "Run `manage.py reembed --activate` first.")
    rgb = decoded.convert("RGB")
    if max(rgb.size) > WORKING_SIZE:
        rgb.thumbnail((WORKING_SIZE, WORKING_SIZE), Image.Resampling.BILINEAR)
    mask = None
    if collection.remove_background:
        try:
            mask, _share, suspect = cut_out(rgb, collection.pk)
        except BackgroundModelMissing as exc:
            raise NotReady(str(exc)) from exc
        # As in the pipeline: a cut-out that looks wrong would search for the wrong thing.
        if suspect:
            mask = None
    cutout = crop_for(rgb, mask, embedder.spec.input_size)
    vector = embedder.embed([cutout])[0]
    return QueryImage(vector=vector, model=model, crop=crop, background_removed=mask is not None, cutout=cutout)


def _draft_size(crop: Crop | None) -> int:
    """Decode at working size; with a crop at twice that, so a small cropped part keeps its detail."""
    return WORKING_SIZE if crop is None else 2 * WORKING_SIZE
