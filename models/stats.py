"""How sure a survey figure is: NPS and CSAT with a 95 % margin of error, and a minimum n
below which a figure is reported as insufficient instead of as a number.

Both intervals are adjusted-Wald intervals: a few pseudo-answers are added before the
ordinary (Wald) normal-approximation interval is built, which keeps the interval honest for
the small n of a single partner, week or team. z is the standard normal quantile for the
confidence level (z = 1.959964 for 95 %), from statistics.NormalDist, never a table.

NPS (points, -100..100), adjusted-Wald for NPS (Rocks 2016, "Interval Estimation for the
'Net Promoter Score'", The American Statistician 70(4); the method MeasuringU recommends in
Lewis & Sauro, "Confidence Intervals for Net Promoter Scores",
https://measuringu.com/nps-confidence-intervals/):

    n    = promoters + passives + detractors
    NPS  = 100 * (promoters - detractors) / n                 (the reported value)
    n'   = n + 3
    pro' = (promoters + 3/4) / n'
    det' = (detractors + 3/4) / n'
    NPS' = pro' - det'                                        (the centre of the interval)
    var  = pro' + det' - (pro' - det')^2
    MoE  = z * sqrt(var / n')
    interval = 100 * [max(-1, NPS' - MoE), min(1, NPS' + MoE)], moe = 100 * MoE

The 3 pseudo-answers are split 3/4 promoter, 3/2 passive, 3/4 detractor, whatever the
confidence level: the defaults of Rocks' reference implementation (R package NPS,
nps_test(test = "adjusted.wald", pseudo_observations = c(0.75, 1.50, 0.75))), which also
reports the unadjusted score and centres the interval on the adjusted one, as done here.

Proportion (CSAT top-2-box and other rates, percent 0..100), adjusted-Wald for a binomial
proportion (Agresti & Coull 1998, "Approximate is better than 'exact' for interval
estimation of binomial proportions", The American Statistician 52(2); Sauro & Lewis,
"Quantifying the User Experience"):

    p    = 100 * x / n                                        (the reported value)
    n~   = n + z^2
    p~   = (x + z^2 / 2) / n~                                 (the centre of the interval)
    MoE  = z * sqrt(p~ * (1 - p~) / n~)
    interval = 100 * [max(0, p~ - MoE), min(1, p~ + MoE)], moe = 100 * MoE

Because the centre is the adjusted estimate, the interval is not symmetric about the
reported value, and after clamping not necessarily about its centre either; moe is the
half-width before clamping. With fewer than min_n answers (and always with none) every
figure is None and sufficient is False, so nobody reads a trend into three answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

MIN_N = 30  # below this many answers a figure is "insufficient", not a number


@dataclass(frozen=True)
class Estimate:
    """A survey figure with its uncertainty.

    value, low, high and moe are in the figure's own unit (NPS points −100..100, CSAT
    percent 0..100); all four are None when n < min_n (sufficient is False then).
    """

    n: int
    value: float | None
    low: float | None
    high: float | None
    moe: float | None
    sufficient: bool


# Rocks' pseudo-answers for the NPS: 3/4 promoter and 3/4 detractor (and 3/2 passive, which
# only shows in n'), whatever the confidence level.
_NPS_PSEUDO_EXTREME = 0.75
_NPS_PSEUDO_TOTAL = 3.0


def nps_estimate(
    promoters: int,
    passives: int,
    detractors: int,
    *,
    confidence: float = 0.95,
    min_n: int = MIN_N,
) -> Estimate:
    """The NPS of these counts with its adjusted-Wald interval (module docstring), in points."""
    _check_count("promoters", promoters)
    _check_count("passives", passives)
    _check_count("detractors", detractors)
    z = _z(confidence)
    _check_min_n(min_n)
    n = promoters + passives + detractors
    if n == 0 or n < min_n:
        return _insufficient(n)
    value = 100.0 * (promoters - detractors) / n
    n_adj = n + _NPS_PSEUDO_TOTAL
    pro = (promoters + _NPS_PSEUDO_EXTREME) / n_adj
    det = (detractors + _NPS_PSEUDO_EXTREME) / n_adj
    centre = pro - det
    variance = pro + det - centre**2
    moe = z * math.sqrt(variance / n_adj)
    return Estimate(
        n=n,
        value=value,
        low=100.0 * max(-1.0, centre - moe),
        high=100.0 * min(1.0, centre + moe),
        moe=100.0 * moe,
        sufficient=True,
    )


def proportion_estimate(
    successes: int,
    n: int,
    *,
    confidence: float = 0.95,
    min_n: int = MIN_N,
) -> Estimate:
    """successes out of n as a percentage with its adjusted-Wald (Agresti–Coull) interval."""
    _check_count("successes", successes)
    _check_count("n", n)
    if successes > n:
        raise ValueError(f"successes ({successes}) cannot exceed n ({n})")
    z = _z(confidence)
    _check_min_n(min_n)
    if n == 0 or n < min_n:
        return _insufficient(n)
    value = 100.0 * successes / n
    z2 = z * z
    n_adj = n + z2
    centre = (successes + z2 / 2.0) / n_adj
    moe = z * math.sqrt(centre * (1.0 - centre) / n_adj)
    return Estimate(
        n=n,
        value=value,
        low=100.0 * max(0.0, centre - moe),
        high=100.0 * min(1.0, centre + moe),
        moe=100.0 * moe,
        sufficient=True,
    )


def mean_value(total: float, n: int, *, min_n: int = MIN_N) -> float | None:
    """The mean of n answers summing to total (CES), or None below min_n or with none."""
    _check_count("n", n)
    _check_min_n(min_n)
    if n == 0 or n < min_n:
        return None
    return total / n


def _z(confidence: float) -> float:
    """The two-sided standard normal quantile: 1.959964 for 0.95."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def _check_count(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_min_n(min_n: int) -> None:
    if min_n < 0:
        raise ValueError(f"min_n must not be negative, got {min_n}")


def _insufficient(n: int) -> Estimate:
    return Estimate(n=n, value=None, low=None, high=None, moe=None, sufficient=False)
