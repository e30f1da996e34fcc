"""NPS categories, CSAT top-2-box and the NPS of a set of answers (models/scoring.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.scoring import NpsCategory, csat_satisfied, nps, nps_category

# The definition (design brief): promoters 9–10, passives 7–8, detractors 0–6.
PROMOTER_SCORES = {9, 10}
PASSIVE_SCORES = {7, 8}
DETRACTOR_SCORES = {0, 1, 2, 3, 4, 5, 6}


def expected_category(score: int) -> NpsCategory:
    if score in PROMOTER_SCORES:
        return NpsCategory.PROMOTER
    if score in PASSIVE_SCORES:
        return NpsCategory.PASSIVE
    assert score in DETRACTOR_SCORES
    return NpsCategory.DETRACTOR


def test_the_three_ranges_cover_0_to_10_exactly_once() -> None:
    ranges = [PROMOTER_SCORES, PASSIVE_SCORES, DETRACTOR_SCORES]
    assert sorted(s for r in ranges for s in r) == list(range(11))


@pytest.mark.parametrize("score", range(11))
def test_nps_category_at_every_score(score: int) -> None:
    assert nps_category(score) is expected_category(score)


@pytest.mark.parametrize(
    ("score", "category"),
    [
        (6, NpsCategory.DETRACTOR),
        (7, NpsCategory.PASSIVE),
        (8, NpsCategory.PASSIVE),
        (9, NpsCategory.PROMOTER),
    ],
)
def test_nps_category_boundaries(score: int, category: NpsCategory) -> None:
    assert nps_category(score) is category


def test_category_values_are_the_wire_strings() -> None:
    # ScoredResponse.nps_category carries these strings; BI filters on them.
    assert {c.value for c in NpsCategory} == {"promoter", "passive", "detractor"}


@pytest.mark.parametrize("score", [-1, 11, -100, 100])
def test_nps_category_rejects_out_of_range(score: int) -> None:
    with pytest.raises(ValueError, match=str(score)):
        nps_category(score)


@given(st.integers().filter(lambda s: not 0 <= s <= 10))
def test_nps_category_rejects_every_out_of_range_integer(score: int) -> None:
    with pytest.raises(ValueError, match=r"0\.\.10"):
        nps_category(score)


@pytest.mark.parametrize(
    ("score", "satisfied"), [(1, False), (2, False), (3, False), (4, True), (5, True)]
)
def test_csat_top_2_box(score: int, satisfied: bool) -> None:
    assert csat_satisfied(score) is satisfied


@pytest.mark.parametrize("score", [0, 6, -1, 10])
def test_csat_rejects_out_of_range(score: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        csat_satisfied(score)


def test_nps_of_no_answers_raises() -> None:
    with pytest.raises(ValueError, match="undefined"):
        nps([])


def test_nps_of_a_list_with_an_invalid_score_raises() -> None:
    with pytest.raises(ValueError, match="11"):
        nps([10, 9, 11])


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        ([10], 100.0),
        ([0], -100.0),
        ([7, 8], 0.0),
        ([10, 0], 0.0),
        # 2 promoters, 1 passive, 1 detractor of 4: 50 % − 25 %.
        ([9, 10, 7, 6], 25.0),
    ],
)
def test_nps_of_small_lists(scores: list[int], expected: float) -> None:
    assert nps(scores) == pytest.approx(expected)


@given(st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=500))
def test_nps_is_percent_promoters_minus_percent_detractors(scores: list[int]) -> None:
    promoters = sum(1 for s in scores if s in PROMOTER_SCORES)
    detractors = sum(1 for s in scores if s in DETRACTOR_SCORES)
    expected = 100 * promoters / len(scores) - 100 * detractors / len(scores)

    result = nps(scores)

    assert result == pytest.approx(expected, abs=1e-9)
    assert -100.0 <= result <= 100.0


@given(st.lists(st.integers(min_value=0, max_value=10), min_size=1, max_size=50))
def test_nps_does_not_depend_on_order(scores: list[int]) -> None:
    assert nps(scores) == pytest.approx(nps(sorted(scores, reverse=True)))
