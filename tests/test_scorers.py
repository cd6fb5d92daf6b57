"""Reference scorers: SQuAD v1.1 normalisation, exact match, token F1, contains, ROUGE-L."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from aliasgate.datasets.base import Case
from aliasgate.scorers import Score, Scorer, available, get_scorer, score_batch
from aliasgate.scorers.normalize import (
    answer_tokens,
    exact_match_score,
    f1_score,
    normalize_answer,
)
from aliasgate.scorers.reference import contains, exact_match, token_f1
from aliasgate.scorers.rouge import rouge_l

ALL = ["exact_match", "token_f1", "contains", "rouge_l"]


def case(*answers: str) -> Case:
    return Case(id="c1", input="question?", expected=tuple(answers))


@pytest.fixture(scope="module")
def rouge():
    return rouge_l()


# -- normalisation (official evaluate-v1.1.py) ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat sat on the Mat.", "cat sat on mat"),
        ("an apple a day", "apple day"),
        ("theatre anthem", "theatre anthem"),  # articles only as whole words
        ("A.B.C.", "abc"),  # punctuation is dropped, not replaced by a space
        ("(a)", ""),  # ... so an article hidden by punctuation is removed too
        ("1,400 km", "1400 km"),
        ("  many\t spaces \n here ", "many spaces here"),
        ("THE", ""),
        ("“Paris”", "“paris”"),  # only ASCII string.punctuation is removed
    ],
)
def test_normalize_answer_follows_squad_v11(text, expected):
    assert normalize_answer(text) == expected


def test_squad_f1_worked_example():
    # normalised tokens: ['cat','sat','on','mat'] vs ['cat','on','mat']: common = 3,
    # P = 3/4, R = 3/3, F1 = 2 * 3/4 * 1 / (3/4 + 1) = 6/7
    assert answer_tokens("the cat sat on the mat") == ["cat", "sat", "on", "mat"]
    assert answer_tokens("a cat on a mat") == ["cat", "on", "mat"]
    assert f1_score("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)


def test_squad_f1_counts_a_multiset_overlap():
    # ['cat','cat','cat'] vs ['cat']: common = 1 (not 3), P = 1/3, R = 1, F1 = 1/2
    assert f1_score("the cat cat cat", "cat") == pytest.approx(0.5)
    # ['red','red','blue'] vs ['red','blue','blue']: common = red + blue = 2, P = R = 2/3
    assert f1_score("red red blue", "red blue blue") == pytest.approx(2 / 3)


def test_squad_f1_is_zero_without_common_tokens_even_when_both_are_empty():
    assert f1_score("dog", "cat") == 0.0
    assert f1_score("", "cat") == 0.0
    assert f1_score("the", "a") == 0.0  # both normalise to "": v1.1 gives F1 0, EM 1
    assert exact_match_score("the", "a")


# -- exact_match ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "answers", "value"),
    [
        ("The Eiffel Tower.", ("eiffel tower",), 1.0),
        ("eiffel   TOWER!", ("The Eiffel Tower",), 1.0),
        ("Eiffel Towers", ("Eiffel Tower",), 0.0),
        ("It is the Eiffel Tower", ("Eiffel Tower",), 0.0),
        ("Paris", ("Lyon", "paris", "Nice"), 1.0),
    ],
)
def test_exact_match(output, answers, value):
    assert exact_match()(output, case(*answers)).value == value


def test_exact_match_detail_names_the_matched_answer():
    score = exact_match()("paris.", case("Lyon", "Paris", "PARIS"))
    assert score.value == 1.0
    assert score.detail == {"matched": "Paris"}
    assert exact_match()("Rome", case("Lyon", "Paris")).detail == {"matched": None}


# -- token_f1 ------------------------------------------------------------------------------------


def test_token_f1_worked_example_through_the_scorer():
    score = token_f1()("the cat sat on the mat", case("a cat on a mat"))
    assert score.value == pytest.approx(6 / 7)
    assert score.detail["matched"] == "a cat on a mat"


def test_token_f1_takes_the_max_over_accepted_answers():
    # "york": P = 1/3, R = 1 -> 0.5; "new york": P = 2/3, R = 1 -> 0.8; "boston": 0
    score = token_f1()("New York City", case("york", "new york", "boston"))
    assert score.value == pytest.approx(0.8)
    assert score.detail["matched"] == "new york"
    assert token_f1()("New York City", case("york", "new york city")).value == 1.0


# -- contains ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "answer", "value"),
    [
        ("the capital is paris", "paris", 1.0),
        ("The capital is Paris.", "Paris", 1.0),
        ("The answer is 4.", "4", 1.0),
        ("The answer is 14.", "4", 0.0),  # word boundary: "4" is not inside "14"
        ("4 is the answer", "4", 1.0),
        ("answer: 41", "4", 0.0),
        ("I love New York City", "new york", 1.0),
        ("York, New England", "new york", 0.0),  # tokens must be contiguous and in order
        ("parisian food", "paris", 0.0),
        ("It is the Louvre museum", "The Louvre", 1.0),
    ],
)
def test_contains_respects_word_boundaries(output, answer, value):
    assert contains()(output, case(answer)).value == value


def test_contains_max_over_answers_and_detail():
    score = contains()("I think it is 1,400 metres", case("1500", "1400"))
    assert score.value == 1.0
    assert score.detail["matched"] == "1400"


# -- shared behaviour of all reference scorers ---------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_no_reference_answers_is_unmeasured_not_zero(name):
    scorer = get_scorer(name)
    for empty in (case(), case("", "   ")):
        score = scorer("anything", empty)
        assert score.value is None
        assert not score.measured
        assert score.error == "no reference answers"


@pytest.mark.parametrize("name", ["exact_match", "token_f1", "contains"])
def test_answers_empty_after_normalisation_are_not_used(name):
    scorer = get_scorer(name)
    # without this rule an empty output would exactly match the reference "The"
    only_empty = scorer("", case("The", "?!"))
    assert only_empty.value is None
    assert "empty after SQuAD normalisation" in only_empty.error
    mixed = scorer("", case("The", "Paris"))
    assert mixed.measured and mixed.value == 0.0
    assert scorer("Paris", case("The", "Paris")).value == 1.0


@pytest.mark.parametrize("name", ALL)
def test_empty_output_is_a_measured_zero(name):
    score = get_scorer(name)("", case("Paris"))
    assert score.measured
    assert score.value == 0.0


@pytest.mark.parametrize("name", ALL)
def test_a_missing_output_is_never_scored(name):
    scorer = get_scorer(name)
    with pytest.raises(TypeError):
        scorer(None, case("Paris"))
    scores = score_batch(scorer, [None, "Paris"], [case("Paris"), case("Paris")])
    assert scores[0].value is None and "TypeError" in scores[0].error
    assert scores[1].value == 1.0


@pytest.mark.parametrize("name", ALL)
def test_a_bare_string_reference_is_one_answer(name):
    bare = Case(id="c", input="q", expected="Paris")  # type: ignore[arg-type]
    assert get_scorer(name)("Paris", bare).value == 1.0


@pytest.mark.parametrize("name", ALL)
def test_perfect_answer_scores_one(name):
    score = get_scorer(name)("Mount Everest", case("K2", "mount everest"))
    assert score.value == 1.0
    assert score.detail["matched"] == "mount everest"


@settings(max_examples=150, deadline=None)
@given(output=st.text(max_size=40), answers=st.lists(st.text(max_size=20), max_size=3))
def test_values_stay_in_unit_interval(output, answers):
    for scorer in (exact_match(), token_f1(), contains()):
        score = scorer(output, case(*answers))
        if any(normalize_answer(a) for a in answers):
            assert 0.0 <= score.value <= 1.0
        else:
            assert score.value is None


@settings(max_examples=150, deadline=None)
@given(prefix=st.text(max_size=15), answer=st.text(min_size=1, max_size=15), suffix=st.text(max_size=15))
def test_an_answer_surrounded_by_spaces_is_contained(prefix, answer, suffix):
    assume(normalize_answer(answer))
    assert contains()(f"{prefix} {answer} {suffix}", case(answer)).value == 1.0
    assert exact_match()(answer, case(answer)).value == 1.0


# -- rouge_l -------------------------------------------------------------------------------------


def test_rouge_l_against_a_hand_computed_lcs(rouge):
    # ref  [the, cat, sat, on, the, mat]   pred [the, cat, lay, on, a, mat]
    # LCS = the cat on mat = 4 -> P = 4/6, R = 4/6, F = 2/3
    score = rouge("The cat lay on a mat.", case("the cat sat on the mat"))
    assert score.value == pytest.approx(2 / 3)
    assert score.detail["matched"] == "the cat sat on the mat"


def test_rouge_l_stems_words(rouge):
    # Porter stems: running -> run, dogs -> dog. ref [the, dog, were, run], pred [run, dog]:
    # LCS = 1 -> P = 1/2, R = 1/4, F = 2 * 1/8 / (3/4) = 1/3
    assert rouge("running dogs", case("the dogs were running")).value == pytest.approx(1 / 3)
    assert rouge("The dog runs", case("the dogs running")).value == pytest.approx(1.0)


def test_rouge_l_takes_the_max_over_answers(rouge):
    # "a b c" vs "x a b" -> LCS 2, F = 2/3; vs "a b c d" -> LCS 3, P = 1, R = 3/4, F = 6/7
    score = rouge("alpha beta gamma", case("xray alpha beta", "alpha beta gamma delta"))
    assert score.value == pytest.approx(6 / 7)
    assert score.detail["matched"] == "alpha beta gamma delta"


def test_rouge_l_reference_without_tokens_is_unmeasured(rouge):
    score = rouge("東京です", case("東京"))
    assert score.value is None
    assert "no reference answer has ROUGE tokens" in score.error
    # an answer with tokens next to one without: the scorable answer is used
    assert rouge("tokyo", case("東京", "Tokyo")).value == 1.0


def test_rouge_l_matches_plain_rouge_score(rouge):
    from rouge_score import rouge_scorer

    plain = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    pairs = [
        ("The quick brown foxes jumped over the lazy dogs", "a quick brown fox jumps over a dog"),
        ("Paris is the capital and largest city of France.", "Paris"),
        ("running runners ran; generously generalised", "run runner general"),
        ("1,400 metres (about 4,600 ft) high", "1400 metres"),
    ]
    for _ in range(2):  # second round is served from the caches
        for output, answer in pairs:
            expected = plain.score(answer, output)["rougeL"].fmeasure
            assert rouge(output, case(answer)).value == pytest.approx(expected, abs=1e-12)


# -- registry ------------------------------------------------------------------------------------


def test_every_registered_scorer_builds_and_scores():
    assert set(ALL) <= set(available())
    for name in ALL:
        scorer = get_scorer(name)
        assert isinstance(scorer, Scorer)
        assert scorer.name == name
        score = scorer("Paris", case("Paris"))
        assert isinstance(score, Score)
        assert score.value == 1.0


def test_unknown_scorer_lists_the_known_names():
    with pytest.raises(KeyError) as info:
        get_scorer("no_such_scorer")
    message = str(info.value)
    assert "no_such_scorer" in message
    for name in ALL:
        assert name in message


@pytest.mark.parametrize(("text", "words"), [
    ("Yes.", 1), ("No — never", 2), ("I don't know, it's well-known: 42!", 6), ("", 0),
    ("...", 0), ("こんにちは 世界", 2), ("**Yes**, approved.\n\n- reason one", 4),
])
def test_answer_length_counts_words_not_punctuation(text: str, words: int) -> None:
    from aliasgate.scorers import get_scorer

    s = get_scorer("answer_length")
    case = Case(id="c", input="?")
    assert s.name == "answer_length" and s(text, case).value == float(words)


def test_answer_length_never_scores_a_missing_output() -> None:
    from aliasgate.scorers import get_scorer, score_batch

    (score,) = score_batch(get_scorer("answer_length"), [None], [Case(id="c", input="?")])  # type: ignore[list-item]
    assert score.value is None and "TypeError" in (score.error or "")
