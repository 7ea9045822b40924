"""Throughput of a bulk import job (CSV + zip) on this machine; prints rows/s by stage.

    nice -n 10 .venv/bin/python bench/import_job.py [--photos 200]

Runs ``import_job_run_task`` in this process on real photos from ../shared/data/clothing-small:
zip check at upload, extraction, and per row decode + thumbnail + duplicate check + the report row.
The image pipeline is not queued (its throughput is bench/ingest.py's). Runs in a database and
a media folder of its own (created from the migrations, dropped at the end), on the configured server.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stylesite.settings.base")
MEDIA = tempfile.mkdtemp(prefix="bench-import-media-")
os.environ["STYLESITE_MEDIA_ROOT"] = MEDIA

import django  # noqa: E402

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402

from catalog.archives import archive_check  # noqa: E402
from catalog.models import ImportJob  # noqa: E402
from catalog.services import collection_create  # noqa: E402
from catalog.signals import image_added  # noqa: E402
from catalog.tasks import import_job_run_task  # noqa: E402

SHARED = Path(os.environ.get("STYLESITE_SHARED_DIR", ROOT.parent / "shared"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=200)
    args = parser.parse_args()
    paths = sorted((SHARED / "data" / "clothing-small" / "train").glob("*/*.jpg"))[: args.photos]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for path in paths:
            archive.write(path, f"{path.parent.name}/{path.name}")
    csv_data = ("image,label\n" + "".join(f"{p.parent.name}/{p.name},{p.parent.name}\n" for p in paths)).encode()
    zip_data = buf.getvalue()

    # The bench measures the import; the pipeline would queue work on the shared broker.
    image_added.disconnect(dispatch_uid="recommender-enqueue-image")
    connection.settings_dict["TEST"]["NAME"] = f"bench_import_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0)
    try:
        slug = f"bench-import-{uuid.uuid4().hex[:8]}"
        collection = collection_create(name=slug, slug=slug, remove_background=False)
        t0 = time.perf_counter()
        archive_check(io.BytesIO(zip_data))
        check_s = time.perf_counter() - t0
        job = ImportJob(collection=collection)
        job.csv_file.save("import.csv", SimpleUploadedFile("a.csv", csv_data), save=False)
        job.zip_file.save("images.zip", SimpleUploadedFile("a.zip", zip_data), save=False)
        job.save()
        t0 = time.perf_counter()
        outcome = import_job_run_task.run(job.pk)
        run_s = time.perf_counter() - t0
        job.refresh_from_db()
        print(f"photos {len(paths)}, zip {len(zip_data) / 1e6:.1f} MB, outcome {outcome}: "
              f"{job.imported} imported, {job.duplicate} duplicate, {job.rejected} rejected")
        print(f"{'stage':<28}{'seconds':>10}{'rows/s':>10}")
        print(f"{'zip check at upload':<28}{check_s:>10.3f}{len(paths) / check_s:>10.0f}")
        print(f"{'job (extract + rows)':<28}{run_s:>10.2f}{len(paths) / run_s:>10.1f}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        shutil.rmtree(MEDIA, ignore_errors=True)


if __name__ == "__main__":
    main()
