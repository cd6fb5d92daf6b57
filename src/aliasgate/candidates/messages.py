"""Merging a candidate's own system prompt with the system message a suite sends.

A candidate owns its system prompt, but a suite may send a system message of its own (a
``Suite(system=...)`` prefix such as a canary secret for the injection suite). Sending two system
messages is not portable (many chat templates keep only one), so adapters merge them into one:
the candidate's own prompt first, then the incoming system text, separated by a blank line — the
order ``candidates/openai_.py`` uses too.
"""

from __future__ import annotations

from collections.abc import Sequence

from aliasgate.candidates.base import Message

__all__ = ["merge_system_prompt"]

SEPARATOR = "\n\n"


def merge_system_prompt(messages: Sequence[Message], own: str | None) -> list[Message]:
    """``messages`` with the candidate's system prompt ``own`` merged in.

    Args:
        messages: The request as the runner built it; it may start with system message(s).
        own: The candidate's own system prompt (None or empty: nothing to merge).

    Returns:
        A new list: unchanged without ``own``; otherwise one leading system message whose content
        is ``own`` followed by the contents of the request's leading system messages, then the
        rest of the conversation.
    """
    msgs = [dict(m) for m in messages]
    if not own:
        return msgs
    lead = 0
    while lead < len(msgs) and msgs[lead].get("role") == "system":
        lead += 1
    parts = [own, *(str(m.get("content") or "") for m in msgs[:lead])]
    content = SEPARATOR.join(p for p in parts if p)
    return [{"role": "system", "content": content}, *msgs[lead:]]
