import csv
import io

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

    again = run_import(tmp_path, "--collection", "clothes", "--layout", "folders")
    assert "Imported 0, skipped 3 as duplicate, rejected 0" in again
    assert Item.objects.count() == 3 and ItemImage.objects.count() == 3


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
