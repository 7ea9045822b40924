import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from catalog.models import Item, ItemImage
from tests.photos import image_bytes

pytestmark = pytest.mark.django_db


def run_import(*args) -> str:
    out = io.StringIO()
    call_command("import_catalog", *[str(a) for a in args], stdout=out, verbosity=0)
    return out.getvalue()


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_folders_layout_imports_labels_and_splits_and_is_idempotent(tmp_path):
    write(tmp_path / "train" / "dress" / "a.jpg", image_bytes(seed=1))
    write(tmp_path / "train" / "hat" / "b.png", image_bytes(seed=2, fmt="PNG"))
    write(tmp_path / "validation" / "dress" / "c.webp", image_bytes(seed=3, fmt="WEBP"))
    out = run_import(tmp_path, "--collection", "clothes", "--layout", "folders")
    assert "Imported 3, skipped 0 as duplicate, rejected 0" in out
    rows = set(Item.objects.values_list("label", "split", "source_name"))
    assert rows == {("dress", "train", "a.jpg"), ("hat", "train", "b.png"), ("dress", "validation", "c.webp")}
    assert all(img.thumbnail.name.endswith(".webp") for img in ItemImage.objects.all())

    media = Path(ItemImage.objects.first().original.path).parents[3]
    files = sorted([*media.glob("originals/**/*.*"), *media.glob("thumbs/**/*.*")])
    again = run_import(tmp_path, "--collection", "clothes", "--layout", "folders")
    assert "Imported 0, skipped 3 as duplicate, rejected 0" in again
    assert Item.objects.count() == 3 and ItemImage.objects.count() == 3
    # A duplicate's files are not left behind.
    assert sorted([*media.glob("originals/**/*.*"), *media.glob("thumbs/**/*.*")]) == files and len(files) == 6


def test_same_file_twice_in_one_collection_is_one_image(tmp_path):
    data = image_bytes(seed=9)
    write(tmp_path / "train" / "dress" / "a.jpg", data)
    write(tmp_path / "train" / "skirt" / "copy.jpg", data)
    out = run_import(tmp_path, "--collection", "clothes")
    assert "Imported 1, skipped 1 as duplicate" in out
    assert ItemImage.objects.count() == 1


def test_kfashion_layout_parses_period_style_gender_and_split(tmp_path):
    write(tmp_path / "training_set" / "W_01752_00_metrosexual_M.jpg", image_bytes(seed=1))
    write(tmp_path / "validation_set" / "T_00020_90_hiphop_W.jpg", image_bytes(seed=2))
    write(tmp_path / "training_set" / "badname.jpg", image_bytes(seed=3))
    out = run_import(tmp_path, "--collection", "kf", "--layout", "kfashion")
    assert "Imported 2, skipped 0 as duplicate, rejected 1" in out
    assert "badname.jpg: name is not" in out
    item = Item.objects.get(source_name="W_01752_00_metrosexual_M.jpg")
    assert (item.label, item.period, item.gender, item.split) == ("metrosexual", "00", "M", "train")
    other = Item.objects.get(source_name="T_00020_90_hiphop_W.jpg")
    assert (other.label, other.gender, other.split) == ("hiphop", "W", "validation")


def test_csv_layout_maps_named_columns(tmp_path):
    write(tmp_path / "img" / "one.jpg", image_bytes(seed=1))
    write(tmp_path / "img" / "two.jpg", image_bytes(seed=2))
    with (tmp_path / "items.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["image", "label", "gender", "split", "price", "ignored"])
        w.writerow(["img/one.jpg", "casual", "W", "train", "19.90", "x"])
        w.writerow(["img/two.jpg", "formal", "M", "test", "", ""])
        w.writerow(["img/missing.jpg", "formal", "M", "test", "", ""])
    out = run_import(tmp_path / "items.csv", "--collection", "c", "--layout", "csv")
    assert "Imported 2, skipped 0 as duplicate, rejected 1" in out
    assert "missing.jpg: cannot read file" in out
    one = Item.objects.get(source_name="one.jpg")
    assert (one.label, one.gender, one.split, str(one.price)) == ("casual", "W", "train", "19.90")


def test_csv_without_required_columns_is_a_clear_error(tmp_path):
    (tmp_path / "bad.csv").write_text("file,tag\nx.jpg,y\n")
    with pytest.raises(CommandError, match=r"bad\.csv lacks column\(s\): image, label"):
        run_import(tmp_path / "bad.csv", "--collection", "c", "--layout", "csv")
    assert Item.objects.count() == 0


def test_corrupt_and_non_image_files_are_rejected_with_reasons_and_leave_nothing(tmp_path):
    good = image_bytes(seed=5)
    write(tmp_path / "train" / "dress" / "good.jpg", good)
    write(tmp_path / "train" / "dress" / "truncated.jpg", good[: len(good) // 2])
    write(tmp_path / "train" / "dress" / "notes.jpg", b"%PDF-1.4 this is not an image")
    write(tmp_path / "train" / "dress" / "readme.txt", b"hello")
    out = run_import(tmp_path, "--collection", "c")
    assert "Imported 1, skipped 0 as duplicate, rejected 3" in out
    for name in ("truncated.jpg", "notes.jpg", "readme.txt"):
        assert name in out
    assert Item.objects.count() == 1 and ItemImage.objects.count() == 1


def test_limit_per_label_imports_a_subset(tmp_path):
    for i in range(5):
        write(tmp_path / "train" / "dress" / f"{i}.jpg", image_bytes(seed=i))
    out = run_import(tmp_path, "--collection", "c", "--limit-per-label", "2")
    assert "Imported 2," in out


def chunked_records(tmp_path) -> list:
    """good, corrupt, good, a copy of the first, good: in chunks of 2 or 3, bad rows share chunks with good ones."""
    from catalog.importers import ImportRecord

    files = {"a.jpg": image_bytes(seed=1), "bad.jpg": b"%PDF-1.4 not an image", "b.jpg": image_bytes(seed=2),
             "copy.jpg": image_bytes(seed=1), "c.jpg": image_bytes(seed=3)}
    for name, data in files.items():
        write(tmp_path / name, data)
    return [ImportRecord(tmp_path / name, label="dress", split="train") for name in files]


def test_an_import_commits_and_announces_a_chunk_at_once_and_reports_every_row(
        tmp_path, monkeypatch, collection, django_capture_on_commit_callbacks):
    from catalog import services
    from catalog.signals import image_added

    monkeypatch.setattr(services, "IMPORT_CHUNK", 3)
    reports = []
    announced: list[list[int]] = []

    def listen(sender=None, image_ids=(), **_kwargs):
        announced.append(list(image_ids))

    image_added.connect(listen)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.records_import(collection, chunked_records(tmp_path),
                                    lambda index, record, outcome, reason, item: reports.append(
                                        (index, record.path.name, outcome, item.pk if item else None)))
    finally:
        image_added.disconnect(listen)
    outcomes = [(index, name, outcome) for index, name, outcome, _ in reports]
    assert outcomes == [(0, "a.jpg", "imported"), (1, "bad.jpg", "rejected"), (2, "b.jpg", "imported"),
                        (3, "copy.jpg", "duplicate"), (4, "c.jpg", "imported")]
    assert reports[3][3] == reports[0][3]  # a duplicate names the item that already has the file
    images = {image.item.source_name: image.pk for image in ItemImage.objects.select_related("item")}
    assert set(images) == {"a.jpg", "b.jpg", "c.jpg"}
    # One announcement per chunk that imported something, naming its new images.
    assert announced == [[images["a.jpg"], images["b.jpg"]], [images["c.jpg"]]]


def test_a_chunk_that_fails_leaves_nothing_and_importing_again_resumes(tmp_path, monkeypatch, collection):
    from catalog import services

    monkeypatch.setattr(services, "IMPORT_CHUNK", 2)
    records = chunked_records(tmp_path)
    written = []

    def report(index, record, outcome, reason, item):
        if item is not None and outcome == "imported":
            written.append(item.images.get().original.path)
        if index == 3:
            raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError):
        services.records_import(collection, records, report)
    # The first chunk stays; the failed chunk's row and its files are gone.
    assert list(Item.objects.values_list("source_name", flat=True)) == ["a.jpg"]
    assert len(written) == 2
    assert Path(written[0]).exists() and not Path(written[1]).exists()

    outcomes = []
    services.records_import(collection, records, lambda index, record, outcome, reason, item: outcomes.append(outcome))
    assert outcomes == ["duplicate", "rejected", "imported", "duplicate", "imported"]
    assert sorted(Item.objects.values_list("source_name", flat=True)) == ["a.jpg", "b.jpg", "c.jpg"]
