"""The ``semantic`` scorer: MiniLM cosine similarity, offline, batched, clamped to [0, 1]."""

from __future__ import annotations

import ipaddress
import socket

import numpy as np
import pytest

from aliasgate.datasets.base import Case
from aliasgate.scorers import Scorer, get_scorer, score_batch
from aliasgate.scorers import semantic as sem
from aliasgate.scorers.reference import NO_REFERENCE

pytest.importorskip("sentence_transformers", reason="needs the 'embeddings' extra")


def case(*answers: str, cid: str = "c1") -> Case:
    return Case(id=cid, input="question?", expected=tuple(answers))


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Refuse (and record) every connection or DNS lookup that is not to the loopback interface."""
    attempts: list[object] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def connect(self, address):
        if not _is_local(address):
            attempts.append(address)
            raise OSError(f"network disabled by the test: connect to {address!r}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if not _is_local(address):
            attempts.append(address)
            return 111  # ECONNREFUSED
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _is_local((host,)):
            attempts.append(host)
            raise socket.gaierror(f"network disabled by the test: lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_loads_and_scores_offline(no_network, monkeypatch):
    # A fresh per-process model cache, so that this test really loads the model under the guard.
    monkeypatch.setattr(sem, "_MODELS", {})
    monkeypatch.setattr(sem, "_LOAD_ERRORS", {})
    scorer = get_scorer("semantic")
    scores = scorer.batch(
        ["Paris is the capital of France.", "Bananas are yellow."],
        [case("The capital of France is Paris."), case("Bananas are yellow.")],
    )
    assert all(s.measured for s in scores)
    assert scores[1].value == pytest.approx(1.0, abs=1e-5)
    assert sem._MODELS, "the model was not loaded during the test"
    assert no_network == [], f"non-loopback network use: {no_network}"


@pytest.fixture(scope="module")
def scorer():
    return get_scorer("semantic")


def test_registered_as_semantic(scorer):
    assert isinstance(scorer, Scorer)
    assert scorer.name == "semantic"


def test_paraphrase_scores_higher_than_unrelated(scorer):
    ref = case("The capital of France is Paris.")
    paraphrase = scorer("Paris is France's capital city.", ref)
    unrelated = scorer("I enjoy playing tennis on weekends.", ref)
    assert paraphrase.value > unrelated.value + 0.3
    assert 0.0 <= unrelated.value < paraphrase.value <= 1.0


def test_identical_text_scores_one(scorer):
    text = "William Shakespeare wrote Hamlet around 1600."
    s = scorer(text, case(text))
    assert s.value == pytest.approx(1.0, abs=1e-5)
    assert s.value <= 1.0  # clamped: float rounding may give a cosine of 1.0000001
    assert s.detail["matched"] == text


def test_max_over_accepted_answers(scorer):
    s = scorer("Shakespeare", case("a recipe for apple pie", "William Shakespeare"))
    alone = scorer("Shakespeare", case("William Shakespeare"))
    assert s.detail["matched"] == "William Shakespeare"
    assert s.value == pytest.approx(alone.value, abs=1e-5)


def test_batch_equals_per_item(scorer):
    outputs = [
        "Paris",
        "The answer is 42.",
        "Water boils at 100 degrees Celsius at sea level.",
        "",
        "Mount Everest",
        "no idea",
        "Jupiter is the largest planet.",
    ]
    cases = [
        case("Paris", "the city of Paris", cid="a"),
        case("forty-two", cid="b"),
        case("100 °C", "one hundred degrees", cid="c"),
        case("Canberra", cid="d"),
        case(cid="e"),  # no reference
        case("Mount Everest", cid="f"),
        case("Jupiter", cid="g"),
    ]
    batched = scorer.batch(outputs, cases)
    single = [scorer(o, c) for o, c in zip(outputs, cases, strict=True)]
    assert len(batched) == len(outputs)
    for b, s in zip(batched, single, strict=True):
        assert b.measured == s.measured
        assert b.error == s.error
        if b.measured:
            assert b.value == pytest.approx(s.value, abs=1e-5)
            assert b.detail["matched"] == s.detail["matched"]
    assert score_batch(scorer, outputs, cases) == batched


def test_no_reference_is_unmeasured_and_empty_output_scores_zero(scorer):
    assert scorer("anything", case()).error == NO_REFERENCE
    assert scorer("anything", case("  ")).error == NO_REFERENCE
    empty = scorer("   ", case("Paris"))
    assert empty.value == 0.0
    assert empty.detail["reason"] == sem.EMPTY_OUTPUT


def test_non_string_output_is_unmeasured_not_zero(scorer):
    scores = scorer.batch([None, "Paris"], [case("Paris"), case("Paris")])  # type: ignore[list-item]
    assert scores[0].value is None and "TypeError" in scores[0].error
    assert scores[1].value == pytest.approx(1.0, abs=1e-5)


def test_negative_cosine_is_clamped_to_zero(scorer, monkeypatch):
    # Unit test of the clamp with fixed unit vectors (MiniLM rarely gives a negative cosine).
    vectors = {"up": np.array([0.0, 1.0]), "down": np.array([0.0, -1.0]),
               "tilt": np.array([0.6, -0.8])}
    monkeypatch.setattr(scorer, "_encode", lambda texts: [vectors[t] for t in texts])
    s = scorer("up", case("down", "tilt"))
    assert s.value == 0.0
    assert s.detail["cosine"] == pytest.approx(-0.8)
    assert s.detail["matched"] == "tilt"


def test_missing_extra_fails_at_build_time(monkeypatch):
    real = sem.importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "sentence_transformers" else real(name, *args)

    monkeypatch.setattr(sem.importlib.util, "find_spec", find_spec)
    with pytest.raises(sem.EmbeddingsUnavailable, match=r"pip install 'aliasgate\[embeddings\]'") as e:
        get_scorer("semantic")
    assert "sentence-transformers" in str(e.value)
