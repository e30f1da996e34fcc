"""NPS categories, CSAT top-2-box and the CES scale."""

from __future__ import annotations

from enum import StrEnum


class NpsCategory(StrEnum):
    PROMOTER = "promoter"
    PASSIVE = "passive"
    DETRACTOR = "detractor"


def nps_category(score: int) -> NpsCategory:
    """0–6 detractor, 7–8 passive, 9–10 promoter."""
    if not 0 <= score <= 10:
        raise ValueError(f"NPS score must be 0..10, got {score}")
    if score >= 9:
        return NpsCategory.PROMOTER
    if score >= 7:
        return NpsCategory.PASSIVE
    return NpsCategory.DETRACTOR


def csat_satisfied(score: int) -> bool:
    """Top-2-box: 4 or 5 on the 1–5 scale counts as satisfied."""
    if not 1 <= score <= 5:
        raise ValueError(f"CSAT score must be 1..5, got {score}")
    return score >= 4


def ces_score(score: int) -> int:
    """A Customer Effort Score as given (1–7, 7 = easiest); it has no category."""
    if not 1 <= score <= 7:
        raise ValueError(f"CES score must be 1..7, got {score}")
    return score


def nps(scores: list[int]) -> float:
    """Net Promoter Score of *scores*: %promoters − %detractors, −100..100."""
    if not scores:
        raise ValueError("NPS of no answers is undefined")
    categories = [nps_category(s) for s in scores]
    promoters = categories.count(NpsCategory.PROMOTER)
    detractors = categories.count(NpsCategory.DETRACTOR)
    return 100.0 * (promoters - detractors) / len(scores)
