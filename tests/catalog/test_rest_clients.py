"""REST clients manage the catalogue: photos in and out through the API, upserts by the client's
key, bulk import jobs, and a changes feed to mirror the catalogue (issue 13)."""
from __future__ import annotations

import csv
import io
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone
from rest_framework.authtoken.models import Token

from catalog.models import ImportJob, Item, ItemImage
from recommender.models import Embedding
from tests.photos import clothing_photos, image_bytes

# Polls of a progress route before a test gives up (each poll sleeps POLL_SECONDS).
POLLS = 1200
POLL_SECONDS = 0.25


def poll(fetch, done) -> dict:
    """Call ``fetch`` until ``done(body)``; returns the last body (the caller asserts on it)."""
    body = fetch()
    for _ in range(POLLS):
        if done(body):
            break
        time.sleep(POLL_SECONDS)
        body = fetch()
    return body


def stored_files(image: ItemImage) -> list[str]:
    return [f.name for f in (image.original, image.thumbnail, image.mask, image.cutout) if f]


def photo_zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buf.getvalue()


def csv_text(rows: list[dict[str, str]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["image", "label", "title", "split"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(name: str, data: bytes, content_type: str = "application/octet-stream"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture
def empty_queue(celery_session_app) -> None:
    """Drop what earlier tests of this run left in its queue (their rows are gone), so the worker
    starts on this test's tasks. Request it before ``worker``."""
    celery_session_app.control.purge()


@pytest.fixture
def staff_client(api_client, staff_user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    return api_client


# --- Done when: the client script -------------------------------------------------------------

def test_a_client_uploads_20_photos_waits_finds_look_alikes_and_deletes_5(empty_queue, transactional_db,
                                                                         celery_session_app, staff_client):
    from celery.contrib.testing.worker import start_worker
    from django.conf import settings

    created = staff_client.post("/api/collections/", {"name": "Shop", "slug": "shop", "kind": "fashion",
                                                      "remove_background": False}, format="json")
    assert created.status_code == 201, created.content
    collection_id = created.json()["id"]

    photos = [(label, path) for label in ("dress", "shoes") for path in clothing_photos(label, 10)]
    assert len(photos) == 20
    item_ids: list[int] = []
    for n, (label, path) in enumerate(photos):
        fields = {"collection": "shop", "title": f"{label} {n}", "label": label, "split": "train",
                  "external_id": f"SKU-{n}"}
        if n % 2 == 0:  # the item and its photo in one multipart request
            resp = staff_client.post("/api/items/", {**fields, "image": upload(path.name, path.read_bytes())},
                                     format="multipart")
            assert resp.status_code == 201, resp.content
            assert resp.json()["images"][0]["status"] == "pending"
            item_ids.append(resp.json()["id"])
        else:  # the item first, then its photo
            resp = staff_client.post("/api/items/", fields, format="json")
            assert resp.status_code == 201, resp.content
            item_id = resp.json()["id"]
            image = staff_client.post(f"/api/items/{item_id}/images/",
                                      {"image": upload(path.name, path.read_bytes())}, format="multipart")
            assert image.status_code == 201, image.content
            assert image.json()["item"] == item_id and image.json()["status"] == "pending"
            item_ids.append(item_id)

    # The worker starts only now, so every upload above answered while its image was still queued.
    with start_worker(celery_session_app, pool="solo", perform_ping_check=False,
                      queues=[settings.CELERY_TASK_DEFAULT_QUEUE], shutdown_timeout=30):
        progress = poll(lambda: staff_client.get(f"/api/collections/{collection_id}/progress/").json(),
                        lambda body: body["ready"] + body["failed"] == 20)
    assert progress["ready"] == 20 and progress["failed"] == 0, progress

    similar = staff_client.get(f"/api/items/{item_ids[0]}/similar/", {"k": 5})
    assert similar.status_code == 200, similar.content
    neighbours = [row["item"]["id"] for row in similar.json()]
    assert len(neighbours) == 5 and item_ids[0] not in neighbours and set(neighbours) <= set(item_ids)

    doomed = item_ids[:5]
    doomed_images = list(ItemImage.objects.filter(item_id__in=doomed))
    files = [name for image in doomed_images for name in stored_files(image)]
    assert len(files) == 10 and all(default_storage.exists(name) for name in files)
    assert Embedding.objects.filter(item_id__in=doomed).count() == 5
    for item_id in doomed:
        assert staff_client.delete(f"/api/items/{item_id}/").status_code == 204
        assert staff_client.get(f"/api/items/{item_id}/").status_code == 404
    assert Embedding.objects.filter(item_id__in=doomed).count() == 0
    assert Embedding.objects.filter(image_id__in=[i.pk for i in doomed_images]).count() == 0
    assert not ItemImage.objects.filter(pk__in=[i.pk for i in doomed_images]).exists()
    assert [name for name in files if default_storage.exists(name)] == []
    assert Embedding.objects.filter(item__collection_id=collection_id).count() == 15

    after = staff_client.get(f"/api/items/{item_ids[5]}/similar/", {"k": 20}).json()
    assert {row["item"]["id"] for row in after} == set(item_ids[5:]) - {item_ids[5]}


def test_the_bulk_import_job_loads_200_photos_with_a_per_row_report(empty_queue, worker, staff_client):
    from catalog.services import collection_create

    collection_create(name="Bulk", slug="bulk", remove_background=False)
    labels = ("dress", "hat", "longsleeve", "outwear", "pants", "shirt", "shoes", "shorts", "skirt", "t-shirt")
    photos = [(label, path) for label in labels for path in clothing_photos(label, 20)]
    assert len(photos) == 200
    entries = {f"{label}/{path.name}": path.read_bytes() for label, path in photos}
    entries["notes/readme.jpg"] = b"this is not a photo"
    rows = [{"image": f"{label}/{path.name}", "label": label, "title": "", "split": "train"}
            for label, path in photos]
    rows += [
        {"image": f"dress/{photos[0][1].name}", "label": "dress", "title": "again", "split": "train"},
        {"image": "notes/readme.jpg", "label": "dress", "title": "", "split": "train"},
        {"image": "missing/none.jpg", "label": "hat", "title": "", "split": "train"},
        {"image": "../../etc/passwd", "label": "hat", "title": "", "split": "train"},
    ]
    resp = staff_client.post("/api/imports/", {
        "collection": "bulk", "csv": upload("items.csv", csv_text(rows), "text/csv"),
        "images": upload("photos.zip", photo_zip(entries), "application/zip"),
    }, format="multipart")
    assert resp.status_code == 201, resp.content
    job_id = resp.json()["id"]

    job = poll(lambda: staff_client.get(f"/api/imports/{job_id}/").json(),
               lambda body: body["status"] in ("done", "failed"))
    assert {k: job[k] for k in ("status", "total", "processed", "imported", "duplicate", "rejected")} == {
        "status": "done", "total": 204, "processed": 204, "imported": 200, "duplicate": 1, "rejected": 3}
    assert Item.objects.filter(collection__slug="bulk").count() == 200

    report = staff_client.get(f"/api/imports/{job_id}/report.csv")
    assert report.status_code == 200 and report["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(report.content.decode())))
    assert len(lines) == 204 and [int(r["row"]) for r in lines] == list(range(1, 205))
    assert {r["outcome"] for r in lines[:200]} == {"imported"} and all(r["item_id"] for r in lines[:200])
    duplicate, not_image, missing, outside = lines[200:]
    assert duplicate["outcome"] == "duplicate" and duplicate["item_id"] == lines[0]["item_id"]
    assert not_image["outcome"] == "rejected" and not_image["reason"]
    assert missing["outcome"] == "rejected" and missing["reason"].startswith("cannot read file")
    assert (outside["outcome"], outside["reason"]) == ("rejected", "the image path leaves the zip archive")


def test_the_changes_feed_returns_exactly_the_items_changed_after_a_timestamp(staff_client, make_item):
    items = [make_item("dress") for _ in range(6)]
    since = timezone.now()
    staff_client.patch(f"/api/items/{items[4].pk}/", {"title": "renamed"}, format="json")
    staff_client.patch(f"/api/items/{items[1].pk}/", {"label": "skirt"}, format="json")
    upserted = staff_client.put("/api/collections/garments/items/NEW-1/", {"title": "new", "label": "hat"},
                                format="json").json()
    expected = [items[4].pk, items[1].pk, upserted["id"]]

    seen, pages = [], 0
    url, params = "/api/items/", {"updated_after": since.isoformat(), "page_size": 2}
    while url:
        page = staff_client.get(url, params).json()
        assert page["count"] == 3
        seen += [row["id"] for row in page["results"]]
        url, params, pages = page["next"], None, pages + 1
    assert seen == expected and pages == 2
    stamps = [row["updated"] for row in staff_client.get("/api/items/", {"updated_after": since.isoformat()})
              .json()["results"]]
    assert stamps == sorted(stamps)


def test_the_feed_cursor_neither_skips_nor_repeats_items_sharing_an_update_time(api_client, make_item):
    items = [make_item() for _ in range(5)]
    same = timezone.now()
    Item.objects.filter(pk__in=[i.pk for i in items]).update(updated=same)
    first = api_client.get("/api/items/", {"updated_after": (same - timedelta(seconds=1)).isoformat(),
                                           "page_size": 2}).json()
    make_item()  # a change while the client pages does not shift the pages
    second = api_client.get(first["next"]).json()
    third = api_client.get(second["next"]).json()
    fourth = api_client.get(third["next"]).json() if third["next"] else {"results": []}
    ids = [r["id"] for page in (first, second, third, fourth) for r in page["results"]]
    assert ids[:5] == sorted(i.pk for i in items) and len(ids) == len(set(ids)) == 6


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01T25:00:00", ""])
def test_an_invalid_updated_after_or_cursor_is_a_400(api_client, db, bad):
    resp = api_client.get("/api/items/", {"updated_after": bad})
    assert resp.status_code == 400 and "updated_after" in resp.json()["detail"]
    cursor = api_client.get("/api/items/", {"updated_after": "2026-01-01T00:00:00Z", "cursor": "bm9wZQ"})
    assert cursor.status_code == 400 and "cursor" in cursor.json()["detail"]


# --- Uploads and deletions --------------------------------------------------------------------

def test_an_upload_is_checked_like_an_imported_file_and_a_refusal_stores_nothing(staff_client, make_item,
                                                                                  settings):
    item = make_item()
    url = f"/api/items/{item.pk}/images/"
    before = sorted(p.name for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())

    not_image = staff_client.post(url, {"image": upload("x.jpg", b"not an image at all")}, format="multipart")
    assert not_image.status_code == 400
    same = staff_client.post(url, {"image": upload("same.jpg", image_bytes(seed=1))}, format="multipart")
    assert same.status_code == 409 and f"image {item.images.get().pk}" in same.json()["detail"]
    assert staff_client.post(url, {}, format="multipart").status_code == 400
    settings.STYLESITE_UPLOAD_MAX_BYTES = 100
    too_big = staff_client.post(url, {"image": upload("big.jpg", image_bytes(seed=50))}, format="multipart")
    assert too_big.status_code == 400 and "at most" in too_big.json()["detail"]
    new_item = staff_client.post("/api/items/", {"collection": "garments", "title": "t", "label": "dress",
                                                 "image": upload("big.jpg", image_bytes(seed=51))},
                                 format="multipart")
    assert new_item.status_code == 400

    assert item.images.count() == 1 and Item.objects.count() == 1
    assert sorted(p.name for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()) == before
    assert staff_client.post("/api/items/999999/images/", {"image": upload("a.jpg", image_bytes(seed=3))},
                             format="multipart").status_code == 404


def test_uploads_and_deletions_are_staff_only(api_client, visitor, make_item):
    item = make_item()
    image = item.images.get()
    photo = {"image": upload("a.jpg", image_bytes(seed=7))}
    assert api_client.post(f"/api/items/{item.pk}/images/", photo, format="multipart").status_code == 401
    assert api_client.delete(f"/api/images/{image.pk}/").status_code == 401
    api_client.force_authenticate(visitor)
    assert api_client.delete(f"/api/items/{item.pk}/").status_code == 403
    assert api_client.put("/api/collections/garments/items/A/", {"title": "x"}, format="json").status_code == 403
    assert api_client.get("/api/imports/").status_code == 403
    assert api_client.get(f"/api/images/{image.pk}/").json()["status"] == "pending"
    assert Item.objects.filter(pk=item.pk).exists() and ItemImage.objects.filter(pk=image.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_one_image_removes_its_files_and_vector_and_keeps_the_item(staff_client, make_item):
    from recommender.pipeline.services import image_process

    item = make_item()
    first = item.images.get()
    second = ItemImage.objects.get(pk=staff_client.post(
        f"/api/items/{item.pk}/images/", {"image": upload("b.jpg", image_bytes(seed=99))},
        format="multipart").json()["id"])
    assert image_process(first.pk) == "ready" and image_process(second.pk) == "ready"
    files = stored_files(second)
    assert staff_client.delete(f"/api/images/{second.pk}/").status_code == 204
    assert staff_client.delete(f"/api/images/{second.pk}/").status_code == 404
    assert [name for name in files if default_storage.exists(name)] == []
    assert list(Embedding.objects.filter(item=item).values_list("image_id", flat=True)) == [first.pk]
    assert all(default_storage.exists(name) for name in stored_files(first))


def test_deleting_an_item_drops_its_votes_and_asks_for_a_preference_refit(staff_client, make_item, visitor,
                                                                         django_capture_on_commit_callbacks,
                                                                         monkeypatch):
    from django.core.cache import cache

    from recommender.models import Vote
    from recommender.preferences import tasks

    item = make_item()
    Vote.objects.create(user=visitor, item=item, value="like")
    cache.delete(f"preferences:fit-queued:{item.collection_id}")
    queued: list[int] = []  # recorded, not sent: no worker runs in this test
    monkeypatch.setattr(tasks.preference_model_fit_task, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        assert staff_client.delete(f"/api/items/{item.pk}/").status_code == 204
    assert not Vote.objects.exists()
    assert queued == [item.collection_id]


# --- A pipeline task for an image deleted meanwhile ends quietly -------------------------------

@pytest.mark.django_db(transaction=True)
def test_a_task_for_an_image_deleted_before_it_ran_is_skipped(make_item):
    from catalog.services import item_delete
    from recommender.pipeline.services import image_process

    item = make_item()
    image_id = item.images.get().pk
    item_delete(item)
    assert image_process(image_id) == "skipped"
    assert not Embedding.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_image_deleted_while_decoding_ends_the_task_quietly(make_item, monkeypatch):
    from catalog.services import image_delete
    from recommender.pipeline import services

    image = make_item().images.get()
    real_decode = services.decode

    def delete_then_decode(img, size):
        image_delete(img)  # commits: the original is gone from storage
        return real_decode(img, size)

    monkeypatch.setattr(services, "decode", delete_then_decode)
    assert services.image_process(image.pk) == "skipped"
    assert not Embedding.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_image_deleted_before_the_final_write_leaves_no_vector_and_no_file(monkeypatch, settings):
    """With background removal the task writes a mask and a cut-out; deleted meanwhile, it removes them."""
    from catalog.services import (
        ItemFields,
        collection_create,
        image_delete,
        item_create_with_image,
    )
    from recommender.pipeline import services

    cut = collection_create(name="Cut", slug="cut", remove_background=True)
    photo = clothing_photos("dress", 1)[0]
    image = item_create_with_image(collection=cut, fields=ItemFields(title="d", label="dress"),
                                   data=photo.read_bytes(), filename=photo.name)
    real_save = services.cutout_files_save
    written: list[str] = []

    def save_then_delete(img, decoded, prepared):
        real_save(img, decoded, prepared)
        written.extend([img.mask.name, img.cutout.name])
        image_delete(img)

    monkeypatch.setattr(services, "cutout_files_save", save_then_delete)
    assert services.image_process(image.pk) == "skipped"
    assert len(written) == 2 and all(written)
    assert not Embedding.objects.exists() and not ItemImage.objects.exists()
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


# --- Upserts by external_id -------------------------------------------------------------------

def test_put_by_external_id_creates_then_updates_and_is_idempotent(staff_client, collection):
    from catalog.services import collection_create

    url = "/api/collections/garments/items/SKU-42/"
    body = {"title": "Linen dress", "label": "dress", "gender": "W", "split": "train", "price": "79.00"}
    first = staff_client.put(url, body, format="json")
    assert first.status_code == 201, first.content
    assert first.json()["external_id"] == "SKU-42" and first.json()["collection"] == "garments"
    again = staff_client.put(url, body, format="json")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    changed = staff_client.put(url, {**body, "title": "Linen dress, blue"}, format="json")
    assert changed.status_code == 200 and changed.json()["title"] == "Linen dress, blue"
    assert Item.objects.filter(external_id="SKU-42").count() == 1
    assert staff_client.get(url).json()["id"] == first.json()["id"]

    collection_create(name="Other", slug="other")
    other = staff_client.put("/api/collections/other/items/SKU-42/", body, format="json")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]

    assert staff_client.put(url, {**body, "split": "nope"}, format="json").status_code == 400
    assert staff_client.put("/api/collections/nope/items/SKU-42/", body, format="json").status_code == 404
    assert staff_client.get("/api/collections/garments/items/SKU-0/").status_code == 404
    duplicate = staff_client.post("/api/items/", {**body, "collection": "garments", "external_id": "SKU-42"},
                                  format="json")
    assert duplicate.status_code == 400 and "unique" in str(duplicate.json())
    assert Item.objects.filter(title="Linen dress, blue").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_puts_of_one_new_key_make_one_item(staff_user, collection):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection
    from rest_framework.test import APIClient

    def put(n: int) -> int:
        client = APIClient()
        client.force_authenticate(staff_user)
        try:
            return client.put("/api/collections/garments/items/RACE-1/", {"title": f"t{n}", "label": "dress"},
                              format="json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = sorted(pool.map(put, range(24)))
    assert codes == [200] * 23 + [201]
    assert Item.objects.filter(external_id="RACE-1").count() == 1


def test_patching_an_item_onto_a_taken_external_id_is_a_400(staff_client, make_item):
    taken, other = make_item(), make_item()
    Item.objects.filter(pk=taken.pk).update(external_id="A-1")
    resp = staff_client.patch(f"/api/items/{other.pk}/", {"external_id": "A-1"}, format="json")
    assert resp.status_code == 400
    assert Item.objects.get(pk=other.pk).external_id == ""


# --- Import jobs: what is refused up front, and the admin --------------------------------------

@pytest.mark.parametrize(("name", "problem"), [
    ("../evil.jpg", "climbs out"), ("/etc/evil.jpg", "absolute path"), ("C:/evil.jpg", "absolute path"),
    ("dir\\evil.jpg", "backslashes"),
])
def test_an_unsafe_zip_is_refused_and_nothing_is_stored(staff_client, collection, settings, name, problem):
    resp = staff_client.post("/api/imports/", {
        "collection": "garments", "csv": upload("a.csv", b"image,label\nevil.jpg,dress\n"),
        "images": upload("a.zip", photo_zip({"ok.jpg": image_bytes(seed=1), name: image_bytes(seed=2)})),
    }, format="multipart")
    assert resp.status_code == 400 and problem in resp.json()["detail"]
    assert not ImportJob.objects.exists()
    assert [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()] == []


def test_a_zip_over_the_caps_or_a_bad_csv_is_refused(staff_client, collection, settings):
    settings.STYLESITE_IMPORT_MAX_FILES = 2
    settings.STYLESITE_IMPORT_MAX_BYTES = 10_000

    def post(csv_data: bytes, entries: dict[str, bytes]):
        return staff_client.post("/api/imports/", {"collection": "garments", "csv": upload("a.csv", csv_data),
                                                   "images": upload("a.zip", photo_zip(entries))},
                                 format="multipart")

    good_csv = b"image,label\na.jpg,dress\n"
    many = post(good_csv, {f"{n}.jpg": image_bytes(seed=n) for n in range(3)})
    assert many.status_code == 400 and "at most 2" in many.json()["detail"]
    bomb = post(good_csv, {"a.jpg": b"\0" * 20_000})
    assert bomb.status_code == 400 and "inflates" in bomb.json()["detail"]
    no_label = post(b"image,title\na.jpg,x\n", {"a.jpg": image_bytes(seed=1)})
    assert no_label.status_code == 400 and "label" in no_label.json()["detail"]
    not_zip = staff_client.post("/api/imports/", {"collection": "garments", "csv": upload("a.csv", good_csv),
                                                  "images": upload("a.zip", b"PK but not really")},
                                format="multipart")
    assert not_zip.status_code == 400 and "zip" in not_zip.json()["detail"]
    assert not ImportJob.objects.exists()


def test_the_extraction_counts_the_bytes_it_writes(tmp_path, settings):
    """Extraction applies the cap itself, not only the check at upload (a zip changed meanwhile)."""
    from catalog.archives import archive_extract
    from stylesite.exceptions import InvalidInput

    settings.STYLESITE_IMPORT_MAX_BYTES = 1000
    data = io.BytesIO(photo_zip({"a.bin": b"x" * 800, "b.bin": b"y" * 800}))
    settings.STYLESITE_IMPORT_MAX_BYTES = 2000
    assert archive_extract(data, tmp_path / "ok") == 1600
    settings.STYLESITE_IMPORT_MAX_BYTES = 1500
    data.seek(0)
    with pytest.raises(InvalidInput, match="inflates"):
        archive_extract(data, tmp_path / "over")


def test_a_job_runs_twice_without_importing_a_row_twice(staff_client, collection):
    from catalog.models import ImportRow
    from catalog.tasks import import_job_run_task

    entries = {"a.jpg": image_bytes(seed=1), "b.jpg": image_bytes(seed=2)}
    resp = staff_client.post("/api/imports/", {
        "collection": "garments", "csv": upload("a.csv", b"image,label\na.jpg,dress\nb.jpg,hat\n"),
        "images": upload("a.zip", photo_zip(entries))}, format="multipart")
    job = ImportJob.objects.get(pk=resp.json()["id"])
    assert import_job_run_task.run(job.pk) == "done"
    assert import_job_run_task.run(job.pk) == "skipped"
    ImportJob.objects.filter(pk=job.pk).update(status="queued")  # a redelivery resumes
    assert import_job_run_task.run(job.pk) == "done"
    assert list(ImportRow.objects.filter(job=job).values_list("row", "outcome")) == [(1, "imported"),
                                                                                     (2, "imported")]
    assert Item.objects.count() == 2


def test_the_admin_starts_an_import_job_and_shows_its_report(client, django_user_model, collection):
    admin_user = django_user_model.objects.create_superuser("boss", password="pw-boss-1")
    client.force_login(admin_user)
    assert client.get("/admin/catalog/importjob/add/").status_code == 200
    refused = client.post("/admin/catalog/importjob/add/", {
        "collection": collection.pk, "csv_file": upload("a.csv", b"image\na.jpg\n"),
        "zip_file": upload("a.zip", photo_zip({"a.jpg": image_bytes(seed=1)}))})
    assert refused.status_code == 200 and b"lacks column(s): label" in refused.content
    assert not ImportJob.objects.exists()
    resp = client.post("/admin/catalog/importjob/add/", {
        "collection": collection.pk, "csv_file": upload("a.csv", b"image,label\na.jpg,dress\ngone.jpg,hat\n"),
        "zip_file": upload("a.zip", photo_zip({"a.jpg": image_bytes(seed=1)}))})
    assert resp.status_code == 302, resp.content[:2000]
    job = ImportJob.objects.get()
    assert job.status == "queued" and job.created_by == admin_user
    page = client.get(f"/admin/catalog/importjob/{job.pk}/change/")
    assert page.status_code == 200 and f"/api/imports/{job.pk}/report.csv".encode() in page.content
    from catalog.tasks import import_job_run_task

    assert import_job_run_task.run(job.pk) == "done"
    page = client.get(f"/admin/catalog/importjob/{job.pk}/change/").content.decode()
    assert "2 / 2 rows · 1 imported · 0 duplicate · 1 rejected" in page
    assert "row 2: gone.jpg — cannot read file" in page


# --- import_catalog --------------------------------------------------------------------------

def test_import_catalog_follows_symbolic_links(tmp_path, db):
    from django.core.management import call_command

    data = tmp_path / "data"
    for n, label in enumerate(("dress", "hat")):
        (data / "train" / label).mkdir(parents=True)
        (data / "train" / label / f"{n}.jpg").write_bytes(image_bytes(seed=n))
    root = tmp_path / "linked"
    root.mkdir()
    (root / "train").symlink_to(data / "train", target_is_directory=True)
    (root / "train" / "dress" / "loop").symlink_to(root, target_is_directory=True)  # a cycle is walked once
    out = io.StringIO()
    call_command("import_catalog", str(root), "--collection", "linked", stdout=out, verbosity=0)
    assert "Imported 2, skipped 0 as duplicate, rejected 0" in out.getvalue()


@pytest.mark.parametrize(("layout", "expected"), [
    ("folders", "<split>/<label>/<file>"), ("kfashion", "{W|T}_{imageid}_{period}_{style}_{gender}"),
])
def test_import_catalog_says_when_a_path_holds_no_importable_file(tmp_path, db, layout, expected):
    from django.core.management import CommandError, call_command

    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(CommandError, match="holds no importable file") as raised:
        call_command("import_catalog", str(tmp_path / "empty"), "--collection", "c", "--layout", layout,
                     verbosity=0)
    assert expected in str(raised.value)
    from catalog.models import Collection

    assert not Collection.objects.filter(slug="c").exists()


# --- The schema ------------------------------------------------------------------------------

def test_the_schema_documents_every_new_route_with_examples(api_client):
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths = schema["paths"]
    routes = {
        ("/api/items/{id}/images/", "post"), ("/api/items/", "post"), ("/api/items/{id}/", "delete"),
        ("/api/images/{id}/", "delete"), ("/api/images/{id}/", "get"),
        ("/api/collections/{slug}/items/{external_id}/", "put"), ("/api/imports/", "post"),
        ("/api/imports/{id}/", "get"), ("/api/imports/{id}/report.csv", "get"),
    }
    for path, method in routes:
        operation = paths[path][method]
        assert operation.get("summary"), (path, method)
    for path, method in routes - {("/api/items/{id}/", "delete"), ("/api/images/{id}/", "delete")}:
        text = str(paths[path][method])
        assert "examples" in text, (path, method)
    names = [p["name"] for p in paths["/api/items/"]["get"]["parameters"]]
    assert "updated_after" in names and "cursor" in names
