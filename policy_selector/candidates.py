"""The candidate space: (demand model, error distribution, policy) triples.

A candidate is everything needed to turn a demand history into a policy:
the forecaster whose point forecast centres the distribution over the
exposure H, the shape of that distribution (normal or empirical cumulative
forecast error, negative binomial, Poisson) and the policy family it sizes.
The classifier chooses among candidates by name, so names are the labels.

References
----------
Syntetos, A. A., Babai, M. Z. & Gardner, E. S. (2015). Forecasting
intermittent inventory demands: simple parametric methods vs. bootstrapping.
*Journal of Business Research* 68, 1746-1752 (pairing intermittent-demand
forecasts with a lead-time demand distribution).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from optimization import PolicyType

__all__ = ["Distribution", "Candidate", "CandidateSpace", "DEFAULT_CANDIDATES", "NO_STOCK"]


class Distribution(str, Enum):
    """Shape of the demand distribution over H used to size a candidate."""

    NORMAL = "normal"  # forecast + normal cumulative forecast error (ErrorModel)
    EMPIRICAL = "empirical"  # forecast + the series' own backtest error quantiles
    NEGBIN = "negbin"  # negative binomial (Poisson if under-dispersed) around the forecast
    POISSON = "poisson"  # Poisson with the forecast over H as mean
    NONE = "none"  # nothing to size (don't stock)


@dataclass(frozen=True)
class Candidate:
    """One (forecaster, distribution, policy) triple.

    Parameters
    ----------
    name : str
        Label used by the classifier and in every table.
    forecaster : str
        statsforecast model name (``forecasting.config.STAT_MODELS``); ignored for ``no_stock``.
    distribution : Distribution
    policy : PolicyType
    """

    name: str
    forecaster: str
    distribution: Distribution
    policy: PolicyType

    def __post_init__(self) -> None:
        object.__setattr__(self, "distribution", Distribution(self.distribution))
        object.__setattr__(self, "policy", PolicyType(self.policy))
        no_stock = self.policy is PolicyType.NO_STOCK
        if no_stock != (self.distribution is Distribution.NONE):
            raise ValueError(
                f"candidate {self.name!r}: no_stock goes with distribution 'none' and only "
                f"with it; got policy {self.policy.value}, distribution {self.distribution.value}"
            )
        if not self.name:
            raise ValueError("a candidate needs a non-empty name")


NO_STOCK = Candidate("no_stock", "none", Distribution.NONE, PolicyType.NO_STOCK)

#: The default candidate space: options for smooth and for intermittent demand, and "don't stock".
DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate("ets_rs_normal", "AutoETS", Distribution.NORMAL, PolicyType.R_S),
    Candidate("ets_rs_empirical", "AutoETS", Distribution.EMPIRICAL, PolicyType.R_S),
    Candidate("ets_sq_normal", "AutoETS", Distribution.NORMAL, PolicyType.S_Q),
    Candidate("sba_rs_negbin", "CrostonSBA", Distribution.NEGBIN, PolicyType.R_S),
    Candidate("tsb_rss_negbin", "TSB", Distribution.NEGBIN, PolicyType.R_S_S),
    Candidate("adida_rs_normal", "ADIDA", Distribution.NORMAL, PolicyType.R_S),
    Candidate("imapa_rs_negbin", "IMAPA", Distribution.NEGBIN, PolicyType.R_S),
    Candidate("sba_basestock_poisson", "CrostonSBA", Distribution.POISSON, PolicyType.BASE_STOCK),
    NO_STOCK,
)


@dataclass(frozen=True)
class CandidateSpace:
    """An ordered, validated set of candidates.

    Parameters
    ----------
    candidates : tuple of Candidate, default :data:`DEFAULT_CANDIDATES`

    Raises
    ------
    ValueError
        Empty space or duplicated names.

    Examples
    --------
    >>> space = CandidateSpace.from_names(["ets_rs_normal", "no_stock"])
    >>> space.names
    ('ets_rs_normal', 'no_stock')
    """

    candidates: tuple[Candidate, ...] = DEFAULT_CANDIDATES

    def __post_init__(self) -> None:
        object.__setattr__(self, "candidates", tuple(self.candidates))
        if not self.candidates:
            raise ValueError("the candidate space is empty; give at least one Candidate")
        names = [c.name for c in self.candidates]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"candidate names must be unique; repeated: {dup}")

    @classmethod
    def from_names(cls, names, pool: tuple[Candidate, ...] = DEFAULT_CANDIDATES) -> CandidateSpace:
        """Pick candidates of ``pool`` by name (order kept).

        Raises
        ------
        ValueError
            Unknown names; the message lists the known ones.
        """
        known = {c.name: c for c in pool}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"unknown candidate(s) {unknown}; choose from {sorted(known)}")
        return cls(tuple(known[n] for n in names))

    @property
    def names(self) -> tuple[str, ...]:
        """Candidate names in order (the class labels)."""
        return tuple(c.name for c in self.candidates)

    @property
    def forecasters(self) -> tuple[str, ...]:
        """Distinct forecasters the candidates need, in order of first use."""
        out: list[str] = []
        for c in self.candidates:
            if c.policy is not PolicyType.NO_STOCK and c.forecaster not in out:
                out.append(c.forecaster)
        return tuple(out)

    def __getitem__(self, name: str) -> Candidate:
        for c in self.candidates:
            if c.name == name:
                return c
        raise KeyError(f"no candidate {name!r}; known: {list(self.names)}")

    def __len__(self) -> int:
        return len(self.candidates)
