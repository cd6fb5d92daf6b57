"""One redaction for every URI and every stored text: credentials never reach a file.

Everything aliasgate writes — reports, ``verdict.json``, ``cases.jsonl``, MLflow params, tags and
tables, audit records — passes URIs through :func:`redact_uri` and free text (error messages,
server replies) through :func:`redact`. What is removed:

* URL credentials, whatever they contain (``postgresql://user:p@ss/word@host/db`` →
  ``postgresql://host/db``);
* values of secret-looking query parameters and ``key=value`` / ``key: value`` pairs
  (``api-key``, ``token``, ``password``, ``sig``...), ``Bearer`` tokens, OpenAI-style ``sk-`` keys;
* the exact values of secret-looking environment variables (names containing KEY, TOKEN, SECRET,
  PASSWORD, CREDENTIAL; values of 8+ characters) — so a server that echoes the API key in its
  401 body does not get it into a report.

Imports nothing heavy; every package may use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

__all__ = ["MASK", "redact", "redact_uri", "secret_values"]

MASK = "***"

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
_URL = re.compile(r"\b([A-Za-z][A-Za-z0-9+.\-]*://)([^\s'\"<>()\[\]{}]+)")
_PAIRS = re.compile(
    r"(?i)(\b(?:api[_-]?key|access[_-]?token|auth[_-]?token|token|secret|password|passwd|pwd|"
    r"sig|signature|client[_-]?secret)\b[\"']?\s*[=:]\s*[\"']?)([^\s\"'&,;}]+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/\-]{6,}=*")
_SK = re.compile(r"\bsk-[A-Za-z0-9_\-]{12,}")
#: Shortest environment value treated as a secret (shorter ones are flags, not keys).
MIN_SECRET_LEN = 8


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """Values of the environment's secret-looking variables, longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


def _url(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    at = rest.rfind("@")
    if at >= 0:
        userinfo = rest[:at]
        # an '@' in a path or query (an e-mail address) is not credentials
        if "?" not in userinfo and "#" not in userinfo and (":" in userinfo or "/" not in userinfo):
            rest = rest[at + 1:]
    return scheme + rest


def redact(text: str, secrets: Iterable[str] = (), *, pairs: bool = True) -> str:
    """``text`` with every credential this module knows of replaced by ``***``.

    Args:
        text: Any text (an error message, a server's reply, a whole report).
        secrets: More exact strings to remove (besides the environment's secret values).
        pairs: Also mask ``password=...``-style pairs, bearer tokens and ``sk-`` keys. Off for
            whole documents that hold dataset text and model answers (a safety prompt may say
            "password: ..."), where only known secret values and URL credentials are removed.
    """
    if not text:
        return text
    for value in (*sorted(set(secrets), key=len, reverse=True), *secret_values()):
        if value and value in text:
            text = text.replace(value, MASK)
    text = _URL.sub(_url, text)
    if not pairs:
        return text
    text = _PAIRS.sub(lambda m: m.group(1) + MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _SK.sub("sk-" + MASK, text)


def redact_uri(uri: str | None, *, query: bool = True, path: bool = True) -> str:
    """A URI (tracking store, candidate, endpoint) fit to be written anywhere.

    Args:
        uri: The URI (None: ``""``).
        query: Keep the query string and fragment (secret-looking values masked); False drops
            them (they may carry tokens under any name).
        path: Keep the path; False keeps ``scheme://host/`` and marks a dropped path ``…``
            (for webhook URLs, whose path is often the secret).
    """
    text = redact(uri or "")
    if not query:
        text = text.split("?", 1)[0].split("#", 1)[0]
    if not path:
        head, sep, rest = text.partition("://")
        if sep:
            host, slash, tail = rest.partition("/")
            text = f"{head}://{host}/" + ("…" if tail else "")
    return text
