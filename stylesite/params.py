"""Request parameters: one strict integer parser for every query, form and JSON integer.

``str.isdigit()`` and ``int()`` disagree on what a digit is: ``"²".isdigit()`` is true but
``int("²")`` raises, and ``int("٣")`` is 3. Parameters are ASCII digits only, so every view
answers a bad number with the same 400 instead of a 500 or a surprising value.
"""
from __future__ import annotations

import re
from typing import Any

from .exceptions import InvalidInput

_ASCII_INT = re.compile(r"[0-9]{1,18}")
_BIGINT = 2**63  # Postgres bigint: values outside it can never name a row


def parse_int(raw: Any, *, name: str, default: int | None = None, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """``raw`` (a string of ASCII digits, or a JSON integer) as an int within the bounds, else InvalidInput.

    ``None`` or an empty string gives ``default`` (InvalidInput when there is none). Surrounding
    whitespace is allowed; signs, decimals, exponents, booleans and non-ASCII digits are not.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if default is None:
            raise InvalidInput(f"{name} is required")
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidInput(f"{name} must be a whole number")
    if isinstance(raw, int):
        value = raw
    elif _ASCII_INT.fullmatch(raw.strip()):
        value = int(raw.strip())
    else:
        raise InvalidInput(f"{name} must be a whole number")
    if not -_BIGINT < value < _BIGINT:
        raise InvalidInput(f"{name} is out of range")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "" if minimum is None else f" from {minimum}"
        high = "" if maximum is None else f" to {maximum}"
        raise InvalidInput(f"{name} must be a whole number{low}{high}")
    return value
