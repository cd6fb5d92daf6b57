"""Message helpers shared by the adapters: merging system prompts, reading pyfunc inputs.

Merging a candidate's own system prompt with the system message a suite sends:

A candidate owns its system prompt, but a suite may send a system message of its own (a
``Suite(system=...)`` prefix such as a canary secret for the injection suite). Sending two system
messages is not portable (many chat templates keep only one), so adapters merge them into one:
the candidate's own prompt first, then the incoming system text, separated by a blank line — the
order ``candidates/openai_.py`` uses too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aliasgate.candidates.base import Message

__all__ = ["merge_system_prompt", "pyfunc_rows"]

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


def pyfunc_rows(model_input: Any) -> list[list[Message]]:
    """One message list per row of a pyfunc ``predict`` input.

    Args:
        model_input: A prompt string, a ``{"messages": [...]}`` or ``{"prompt": ...}`` dict, a
            list of those, or a pandas DataFrame with a ``messages`` or ``prompt`` column.

    Raises:
        ValueError: an unsupported row or DataFrame.
    """
    if hasattr(model_input, "columns") and hasattr(model_input, "to_dict"):  # pandas DataFrame
        for column in ("messages", "prompt"):
            if column in model_input.columns:
                return [_row_messages({column: v}) for v in model_input[column]]
        raise ValueError(
            f"DataFrame input needs a 'prompt' or 'messages' column, got {list(model_input.columns)}"
        )
    if isinstance(model_input, str | dict):
        model_input = [model_input]
    return [_row_messages(item) for item in list(model_input)]


def _row_messages(item: Any) -> list[Message]:
    if isinstance(item, str):
        return [{"role": "user", "content": item}]
    if isinstance(item, dict):
        if "messages" in item:
            messages = item["messages"]
            if hasattr(messages, "tolist"):  # numpy array from a DataFrame cell
                messages = messages.tolist()
            return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        if "prompt" in item:
            return [{"role": "user", "content": str(item["prompt"])}]
    raise ValueError(
        f"unsupported input row {item!r}: expected a prompt string or a {{'messages': [...]}} dict"
    )
