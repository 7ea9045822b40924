"""Signals the pipeline sends; other areas listen without the pipeline knowing them."""
from django.dispatch import Signal

# A collection's ingest has drained (nothing pending or processing, enough images ready); kwargs:
# collection_id. Sent by a worker after it stored a batch.
ingest_drained = Signal()
