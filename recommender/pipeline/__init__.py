"""Pipeline area: the image steps, the per-image service, its Celery tasks and receivers.

Other areas may use exactly the names below (photo search reuses the steps on a query photo).
"""
from .services import warm_up_models
from .signals import ingest_drained
from .steps import (
    WORKING_SIZE,
    PermanentFailure,
    crop_for,
    cut_out,
    decode,
    prepare,
    stored_crop,
)

__all__ = ["WORKING_SIZE", "PermanentFailure", "crop_for", "cut_out", "decode", "ingest_drained", "prepare",
           "stored_crop", "warm_up_models"]
