"""Readers for the catalogue import layouts. Each yields ``ImportRecord``s; nothing here writes."""
from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .models import Item

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
SPLIT_ALIASES = {"train": "train", "training": "train", "valid": "validation", "validation": "validation",
                 "val": "validation", "test": "test"}
KFASHION_NAME = re.compile(
    r"^(?P<kind>[WT])_(?P<imageid>\d+)_(?P<period>\d+)_(?P<style>[A-Za-z0-9-]+)_(?P<gender>[MW])$"
)
CSV_FIELDS = {"title", "category", "gender", "period", "split", "external_url", "price"}
CSV_REQUIRED = {"image", "label"}
# What each layout expects, for the message when a path holds nothing to import.
LAYOUT_HELP = {
    "folders": "<split>/<label>/<file> under the folder, e.g. train/dress/0001.jpg "
               "(split: train, validation or test; files .jpg, .jpeg, .png or .webp)",
    "kfashion": "{W|T}_{imageid}_{period}_{style}_{gender}.jpg files under the folder, "
                "e.g. training_set/W_01752_00_metrosexual_M.jpg",
    "csv": "a CSV file with the columns image and label (optional: "
           f"{', '.join(sorted(CSV_FIELDS))}), image paths relative to the CSV's folder",
}


@dataclass
class ImportRecord:
    path: Path
    label: str = ""
    split: str = Item.Split.NONE
    extra: dict[str, str] = field(default_factory=dict)
    error: str = ""  # set when the record itself is malformed (reported, not imported)
    name: str = ""  # the image as the source names it (a CSV cell), for reports


def split_from_name(name: str) -> str | None:
    lowered = name.lower()
    for prefix, split in SPLIT_ALIASES.items():
        if lowered == prefix or lowered.startswith(prefix):
            return split
    return None


def _files(root: Path) -> Iterator[Path]:
    """Files under ``root`` in name order, following symbolic links (split folders are often links
    into a shared dataset); a link back to a folder already walked is not walked again."""
    seen: set[str] = set()
    found: list[Path] = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found.extend(Path(folder) / name for name in names if not name.startswith("."))
    for path in sorted(found):
        if path.is_file():
            yield path


def read_folders(root: Path) -> Iterator[ImportRecord]:
    """``<split>/<label>/<file>``; any file is offered, so non-images are reported, not ignored."""
    for path in _files(root):
        parts = path.relative_to(root).parts
        if len(parts) != 3:
            if path.suffix.lower() in IMAGE_SUFFIXES:
                yield ImportRecord(path, error="not in <split>/<label>/<file> layout")
            continue
        split = split_from_name(parts[0])
        if split is None:
            yield ImportRecord(path, error=f"folder {parts[0]!r} is not a split (train/validation/test)")
            continue
        yield ImportRecord(path, label=parts[1], split=split)


def read_kfashion(root: Path) -> Iterator[ImportRecord]:
    """``{W|T}_{imageid}_{period}_{style}_{gender}.jpg``; split from a ``train*``/``valid*`` parent folder."""
    for path in _files(root):
        if path.suffix.lower() not in IMAGE_SUFFIXES and path.suffix.lower() not in {".gif", ".bmp", ".tif"}:
            continue
        match = KFASHION_NAME.match(path.stem)
        if not match:
            yield ImportRecord(path, error="name is not {W|T}_{imageid}_{period}_{style}_{gender}")
            continue
        split = next((s for p in path.relative_to(root).parts[:-1] if (s := split_from_name(p))), Item.Split.NONE)
        yield ImportRecord(path, label=match["style"], split=split,
                           extra={"gender": match["gender"], "period": match["period"]})


def read_csv(csv_path: Path) -> Iterator[ImportRecord]:
    """A CSV with ``image`` and ``label`` columns; ``image`` is relative to the CSV's folder."""
    with csv_path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = csv_missing_columns(reader.fieldnames)
        if missing:
            raise ValueError(f"{csv_path.name} lacks column(s): {', '.join(missing)}")
        for row in reader:
            image = (row.get("image") or "").strip()
            if not image:
                yield ImportRecord(csv_path.parent, error="the row names no image", name="")
                continue
            path = (csv_path.parent / image).resolve()
            extra = {k: v.strip() for k, v in row.items() if k in CSV_FIELDS and v and v.strip()}
            split = split_from_name(extra.pop("split", "none")) or Item.Split.NONE
            yield ImportRecord(path, label=(row.get("label") or "").strip(), split=split, extra=extra, name=image)


def csv_missing_columns(fieldnames: list[str] | None) -> list[str]:
    """The required columns of the ``csv`` layout that a header lacks, sorted."""
    return sorted(CSV_REQUIRED - set(fieldnames or []))


LAYOUTS = {"folders": read_folders, "kfashion": read_kfashion, "csv": read_csv}
