"""KQL string semantics the rule relies on: ``has`` terms, ``has_any``, ``contains``.

Shared by the ``kql`` profile and by the exclusion expressions, so that both read text the way
Sentinel does. Terms are maximal runs of ASCII letters and digits; ``has`` is a
case-insensitive match of a whole term (``"Disconnected"`` does not have ``disconnect``). A
needle with punctuation (``[preauth]``) must appear as written, case-insensitively, with no
letter or digit touching its alphanumeric ends.
"""

import re
from functools import lru_cache
from typing import Callable

_ALNUM = "A-Za-z0-9"


def _needle_pattern(needle: str) -> str:
    """The regex for one ``has`` needle: word-bounded only at its alphanumeric ends."""
    head = f"(?<![{_ALNUM}])" if needle[:1].isascii() and needle[:1].isalnum() else ""
    tail = f"(?![{_ALNUM}])" if needle[-1:].isascii() and needle[-1:].isalnum() else ""
    return head + re.escape(needle) + tail


@lru_cache(maxsize=1024)
def has_any_matcher(needles: tuple, case_sensitive: bool = False) -> Callable[[str], bool]:
    """Compile ``text has_any (needles)`` into one regex search; cached per needle set.

    ``has_any_matcher(('from',))('Accepted password from 1.2.3.4')`` is True; an empty needle
    matches nothing (KQL's ``has ""`` is false). Runtime: one regex scan of the text.
    """
    parts = [_needle_pattern(n) for n in needles if n]
    if not parts:
        return lambda text: False
    if case_sensitive:
        search = re.compile("|".join(parts)).search
        return lambda text: search(text) is not None
    # KQL folds ASCII letters only. A plain substring test on the lower-cased text rules most
    # texts out before the regex runs (the regex is several times slower).
    search = re.compile("|".join(parts), re.IGNORECASE | re.ASCII).search
    lowered = tuple(n.lower() for n in needles if n)

    def matcher(text: str) -> bool:
        folded = text.lower()
        return any(needle in folded for needle in lowered) and search(text) is not None

    return matcher
