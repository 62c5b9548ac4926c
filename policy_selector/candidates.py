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

import math
import re
from dataclasses import dataclass, replace
from enum import Enum

from optimization import PolicyType

__all__ = [
    "Distribution",
    "Candidate",
    "CandidateSpace",
    "DEFAULT_CANDIDATES",
    "NO_STOCK",
    "shortfall_variant",
    "variant_bases",
    "variant_scale",
]


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
    shortfall_scale : float, default 1.0
        The service level the candidate sizes to, as a multiple of the item's own shortfall:
        a target alpha (CSL or fill rate) is sized as ``1 - shortfall_scale * (1 - alpha)``
        (0.5 sizes a 90 % target to 95 %, 2 to 80 %). 1.0 = the item's target (every
        candidate of :data:`DEFAULT_CANDIDATES`). Items without a target (``service_type``
        ``cost``: the newsvendor ratio) are sized as at 1.0. The labels keep pricing the
        shortfall at the item's own target, so a scale pays for itself or not in the cost.
    """

    name: str
    forecaster: str
    distribution: Distribution
    policy: PolicyType
    shortfall_scale: float = 1.0

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
        scale = self.shortfall_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
            raise ValueError(
                f"candidate {self.name!r}: shortfall_scale must be a finite number > 0 (1 = the item's own "
                f"target), got {scale!r}"
            )
        if no_stock and scale != 1.0:
            raise ValueError(f"candidate {self.name!r}: no_stock sizes nothing; its shortfall_scale must be 1")
        object.__setattr__(self, "shortfall_scale", float(scale))


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


#: ``<candidate>_x<scale>``: a candidate sized to ``scale`` times the item's shortfall.
_VARIANT = re.compile(r"^(?P<base>.+)_x(?P<scale>[^_]+)$")


def shortfall_variant(candidate: Candidate, scale: float) -> Candidate:
    """``candidate`` sized to ``scale`` times the item's shortfall, named ``<name>_x<scale>``.

    Raises
    ------
    ValueError
        A scale that is not a finite number > 0, or a variant of a variant or of ``no_stock``.

    Examples
    --------
    >>> shortfall_variant(DEFAULT_CANDIDATES[2], 0.5).name
    'ets_sq_normal_x0.5'
    """
    if candidate.shortfall_scale != 1.0:
        raise ValueError(f"candidate {candidate.name!r} is already a shortfall variant; scale its base candidate")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"shortfall scale must be a finite number > 0, got {scale!r} (for {candidate.name!r})")
    if float(scale) == 1.0:
        return candidate
    return replace(candidate, name=f"{candidate.name}_x{float(scale):g}", shortfall_scale=float(scale))


def variant_bases(names) -> dict[str, str]:
    """Per name, the candidate it is a shortfall variant of (``<base>_x<scale>`` with ``<base>`` among
    ``names``), else itself.

    Examples
    --------
    >>> variant_bases(["ets_sq_normal", "ets_sq_normal_x2", "odd_x2"])
    {'ets_sq_normal': 'ets_sq_normal', 'ets_sq_normal_x2': 'ets_sq_normal', 'odd_x2': 'odd_x2'}
    """
    names = [str(n) for n in names]
    out = {}
    for n in names:
        m = _VARIANT.match(n)
        out[n] = m["base"] if m is not None and m["base"] in names else n
    return out


def variant_scale(name: str) -> float:
    """The shortfall scale a candidate name carries (``<base>_x<scale>``; 1 for a base candidate or a name
    whose tail is not a number).

    Examples
    --------
    >>> variant_scale("ets_sq_normal_x0.5"), variant_scale("ets_sq_normal"), variant_scale("odd_xabc")
    (0.5, 1.0, 1.0)
    """
    m = _VARIANT.match(str(name))
    try:
        return float(m["scale"]) if m is not None else 1.0
    except ValueError:
        return 1.0


def _from_pool(name: str, known: dict[str, Candidate]) -> Candidate | None:
    """A pool candidate by name, or the shortfall variant ``<base>_x<scale>`` of one (None if neither)."""
    if name in known:
        return known[name]
    m = _VARIANT.match(name)
    if m is None or m["base"] not in known:
        return None
    try:
        scale = float(m["scale"])
    except ValueError:
        raise ValueError(
            f"candidate {name!r}: shortfall scale {m['scale']!r} is not a number (e.g. {m['base']}_x0.5)"
        ) from None
    variant = shortfall_variant(known[m["base"]], scale)
    if variant.name != name:
        raise ValueError(f"candidate {name!r}: write the scale as {variant.name!r}")
    return variant


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

        A name ``<candidate>_x<scale>`` is that pool candidate sized to ``scale`` times the
        item's shortfall (:func:`shortfall_variant`), e.g. ``tsb_rss_negbin_x0.5``.

        Raises
        ------
        ValueError
            Unknown names (the message lists the known ones); a variant whose scale is not a
            finite number > 0.
        """
        known = {c.name: c for c in pool}
        found = {n: _from_pool(n, known) for n in names}
        unknown = [n for n, c in found.items() if c is None]
        if unknown:
            raise ValueError(
                f"unknown candidate(s) {unknown}; choose from {sorted(known)} "
                "(or <candidate>_x<scale> for one sized to scale times the item's shortfall)"
            )
        return cls(tuple(found[n] for n in names))

    def with_shortfall_scales(self, scales, names=None) -> CandidateSpace:
        """This space plus, for each candidate in ``names`` (default: every stocking one), its
        shortfall variants at ``scales`` (:func:`shortfall_variant`), after the candidates.

        Raises
        ------
        ValueError
            A name not in the space, or an invalid scale.

        Examples
        --------
        >>> CandidateSpace.from_names(["ets_sq_normal", "no_stock"]).with_shortfall_scales([0.5, 2]).names
        ('ets_sq_normal', 'no_stock', 'ets_sq_normal_x0.5', 'ets_sq_normal_x2')
        """
        base = [c for c in self.candidates if c.policy is not PolicyType.NO_STOCK and c.shortfall_scale == 1.0]
        if names is not None:
            unknown = sorted(set(names) - set(self.names))
            if unknown:
                raise ValueError(f"cannot scale the shortfall of {unknown}: not in the space {list(self.names)}")
            base = [self[n] for n in names]
        extra = tuple(shortfall_variant(c, s) for c in base for s in scales if float(s) != 1.0)
        return CandidateSpace(self.candidates + extra)

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
