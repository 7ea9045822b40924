"""Celery jobs of the style area: thin wrappers that claim a ``StyleJob`` row and run it."""
from __future__ import annotations

from celery import shared_task

from .jobs import style_job_run


@shared_task(acks_late=True)
def style_job_task(job_id: int) -> str:
    """Run a clustering or classifier job; a job already claimed (or finished) is skipped."""
    return style_job_run(job_id)
