"""Readers for the catalogue import layouts. Each yields ``ImportRecord``s; nothing here writes."""
from __future__ import annotations

import csv
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


@dataclass
class ImportRecord:
    path: Path
    label: str = ""
    split: str = Item.Split.NONE
    extra: dict[str, str] = field(default_factory=dict)
    error: str = ""  # set when the record itself is malformed (reported, not imported)


def split_from_name(name: str) -> str | None:
    lowered = name.lower()
    for prefix, split in SPLIT_ALIASES.items():
        if lowered == prefix or lowered.startswith(prefix):
            return split
    return None


def _files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
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
        missing = {"image", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{csv_path.name} lacks column(s): {', '.join(sorted(missing))}")
        for row in reader:
            path = (csv_path.parent / row["image"]).resolve()
            extra = {k: v.strip() for k, v in row.items() if k in CSV_FIELDS and v and v.strip()}
            split = split_from_name(extra.pop("split", "none")) or Item.Split.NONE
            yield ImportRecord(path, label=row["label"].strip(), split=split, extra=extra)


LAYOUTS = {"folders": read_folders, "kfashion": read_kfashion, "csv": read_csv}
