"""Text from input made safe for every UTF-8 encoder: a lone surrogate becomes U+FFFD.

Python text can hold a lone surrogate (U+D800-U+DFFF), which no UTF-8 encoder takes (JSON and
msgpack raise UnicodeEncodeError); only input can put one there (an XML character reference
such as ``&#xD800;``, a JSON ``\\ud800`` escape). Alerts are built from input text, so they are
made encodable once, when built; notices are made encodable by a filter on their handlers.
"""

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def encodable(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (the same object when it has none)."""
    return _SURROGATE.sub(REPLACEMENT, text) if _SURROGATE.search(text) else text


def encodable_record(value: Any) -> Any:
    """A record (dicts, lists and tuples of text and numbers) with every string made
    encodable, keys included."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable_record(key): encodable_record(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable_record(item) for item in value]
    return value
