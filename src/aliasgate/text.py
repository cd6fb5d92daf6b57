"""Text helpers shared by every message and report. Imports nothing; every package may use it."""

from __future__ import annotations

__all__ = ["clip"]

#: Longest error line a message keeps: a bad value is never echoed in full.
MAX_MESSAGE_CHARS = 300


def clip(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, cut to ``limit`` characters (the cut says how long it was).

    Args:
        text: Any message text (it may quote a value from a file).
        limit: The most characters kept.
    """
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"
