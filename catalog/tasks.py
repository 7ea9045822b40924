"""Celery tasks of the catalogue: thin wrappers over ``services``, safe to run twice."""
from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from celery import shared_task
from stylesite.exceptions import InvalidInput

from .archives import archive_extract
from .importers import ImportRecord, read_csv
from .models import ImportJob, ImportRow, Item
from .services import (
    import_job_claim,
    import_job_fail,
    import_job_finish,
    import_job_start,
    import_row_record,
    records_import,
)


@shared_task(acks_late=True)
def import_job_run_task(job_id: int) -> str:
    """Run an import job: extract its zip into a temporary folder, import each CSV row, report it.

    A second run (a redelivery) resumes: rows already reported are skipped, and each row is
    imported and reported in one transaction (a chunk of rows at a time).
    """
    job = import_job_claim(job_id)
    if job is None:
        return "skipped"
    try:
        with tempfile.TemporaryDirectory(prefix=f"import-{job.pk}-") as folder:
            root = Path(folder).resolve()
            with job.zip_file.open("rb") as archive:
                archive_extract(archive, root / "images")
            csv_path = root / "images" / ".import.csv"
            with job.csv_file.open("rb") as source:
                csv_path.write_bytes(source.read())
            _import_rows(job, root / "images", csv_path)
    except InvalidInput as exc:
        import_job_fail(job_id, exc.message)
        return "failed"
    except (ValueError, csv.Error, OSError) as exc:  # an unreadable CSV or stored file
        import_job_fail(job_id, f"{type(exc).__name__}: {exc}")
        return "failed"
    import_job_finish(job)
    return "done"


def _import_rows(job: ImportJob, root: Path, csv_path: Path) -> None:
    records = list(read_csv(csv_path))
    import_job_start(job, len(records))
    done = set(ImportRow.objects.filter(job=job).values_list("row", flat=True))
    todo = [(row, record) for row, record in enumerate(records, start=1) if row not in done]
    for _, record in todo:
        if not record.error and not record.path.is_relative_to(root):
            record.error = "the image path leaves the zip archive"

    def report(index: int, record: ImportRecord, outcome: str, reason: str, item: Item | None) -> None:
        import_row_record(job, row=todo[index][0], image=record.name, outcome=outcome, reason=reason, item=item)

    records_import(job.collection, [record for _, record in todo], report)
