"""Zip archives of images for bulk imports, opened safely.

An uploaded zip is untrusted: a "zip bomb" declares little and inflates to gigabytes, a "zip slip"
names ``../../etc/x`` or ``/etc/x`` to write outside the extraction folder. So the archive is
checked from its directory when it arrives (``archive_check``: file count, declared total size,
every name relative and inside), and extracted by ``archive_extract`` into a folder the caller
owns, counting the bytes actually inflated against the same cap (a forged directory cannot lie
past it). Nothing is extracted with ``ZipFile.extractall``.
"""
from __future__ import annotations

import re
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings

from stylesite.exceptions import InvalidInput

_CHUNK = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")
# What a corrupt, encrypted or unsupported archive raises while it is read.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError, ValueError)


def _name_problem(name: str) -> str:
    """Why a member name is unsafe to extract, or "" when it is a plain relative path."""
    if "\\" in name:
        return "uses backslashes"
    if name.startswith("/") or _DRIVE.match(name):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "climbs out of the archive with '..'"
    if "\x00" in name:
        return "contains a NUL character"
    return ""


def _members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    max_files = settings.STYLESITE_IMPORT_MAX_FILES
    max_bytes = settings.STYLESITE_IMPORT_MAX_BYTES
    infos = archive.infolist()
    files = [info for info in infos if not info.is_dir()]
    if len(files) > max_files:
        raise InvalidInput(f"the zip holds {len(files)} files; an import takes at most {max_files}")
    for info in infos:
        if problem := _name_problem(info.filename):
            raise InvalidInput(f"zip member {info.filename!r} {problem}")
    declared = sum(info.file_size for info in files)
    if declared > max_bytes:
        raise InvalidInput(f"the zip inflates to {declared / 1e6:.0f} MB; an import takes at most "
                           f"{max_bytes / 1e6:.0f} MB")
    return files


def archive_check(file: BinaryIO) -> int:
    """Check an uploaded zip from its directory; returns its file count. ``InvalidInput`` when refused."""
    try:
        with zipfile.ZipFile(file) as archive:
            return len(_members(archive))
    except _READ_ERRORS as exc:
        raise InvalidInput(f"not a readable zip archive: {exc}") from exc
    finally:
        file.seek(0)


def archive_extract(file: BinaryIO, dest: Path) -> int:
    """Extract the zip's files under ``dest`` (an empty folder the caller owns); returns bytes written.

    Stops with ``InvalidInput`` as soon as the inflated bytes pass ``STYLESITE_IMPORT_MAX_BYTES``.
    """
    root = dest.resolve()
    cap = settings.STYLESITE_IMPORT_MAX_BYTES
    written = 0
    try:
        with zipfile.ZipFile(file) as archive:
            for info in _members(archive):
                target = (root / info.filename).resolve()
                if not target.is_relative_to(root):  # belt and braces after _name_problem
                    raise InvalidInput(f"zip member {info.filename!r} leaves the archive")
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("wb") as sink:
                    while chunk := source.read(_CHUNK):
                        written += len(chunk)
                        if written > cap:
                            raise InvalidInput(f"the zip inflates past {cap / 1e6:.0f} MB; an import takes "
                                               "at most that")
                        sink.write(chunk)
    except _READ_ERRORS as exc:
        raise InvalidInput(f"not a readable zip archive: {exc}") from exc
    return written
