"""Fill-rate curves with a tail beyond the largest demand sample (issue 12: carparts items above every sample)."""

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from optimization import ServiceType
from policy_selector import recommend_policies
from policy_selector.service_curves import (
    NB_WEIGHT,
    _body_moments,
    _exp_loss,
    _exp_tail,
    _fill_service,
    _loss,
    _nb_mix_loss,
    _tail_loss,
    item_curves,
)
from policy_selector.sizing import _samples, exposure


def _grid_of(ppf, k=200):
    """Sorted demand samples as the sizing builds them: a distribution's quantiles at the sizing's grid."""
    p = np.arange(1, k + 1) / k
    p[-1] = 1.0 - 0.5 / k
    return ppf(p)[None, :]


def _true_loss(dist, x, top=4000):
    """E[(D - x)^+] of a count distribution, summed over its support."""
    d = np.arange(top)
    return float((np.maximum(d - x, 0.0) * dist.pmf(d)).sum())


_NB = stats.nbinom(6.0**2 / (30.0 - 6.0), 6.0 / 30.0)  # mean 6, variance 30


def test_nb_mixture_reads_a_planted_negative_binomial_beyond_the_samples():
    """Above the largest sample the mixture's loss is w x the loss of the NB of the samples' moments."""
    samples = _grid_of(_NB.ppf)
    top = samples[0, -1]
    x = np.array([[top, top + 5.0, top + 10.0]])
    truth = np.array([[_true_loss(_NB, v) for v in x[0]]])
    assert np.all(_loss(samples, x) <= 1e-12)  # the samples alone: nothing short above the largest
    mixed = _nb_mix_loss(samples, x, integral=True)
    np.testing.assert_allclose(mixed / NB_WEIGHT, truth, rtol=0.15)
    assert np.all(_tail_loss(samples, x, True) == mixed)  # the default tail
    # below the largest sample: (1 - w) samples + w NB, both near the truth; the mean (loss at 0) is kept
    assert _nb_mix_loss(samples, np.array([[0.0]]), True)[0, 0] == pytest.approx(samples.mean(), rel=1e-3)
    mid = np.array([[6.0, 12.0]])
    np.testing.assert_allclose(_nb_mix_loss(samples, mid, True), [[_true_loss(_NB, v) for v in mid[0]]], rtol=0.05)


def test_exponential_tail_reads_a_planted_exponential_and_its_loss_beyond_the_samples():
    beta = 4.0
    samples = _grid_of(lambda p: 3.0 + stats.expon.ppf(p, scale=beta))
    u, p_u, b = _exp_tail(samples)
    assert p_u[0] == pytest.approx(0.1, abs=0.006)
    assert b[0] == pytest.approx(beta, rel=0.1)  # memoryless: the mean excess over any threshold is beta
    top = samples[0, -1]
    x = np.array([[top, top + 4.0, top + 10.0]])
    truth = beta * np.exp(-(x - 3.0) / beta)  # E[(D - x)^+] of 3 + Exp(beta)
    assert np.all(_loss(samples, x) <= 1e-12)
    tailed = _exp_loss(samples, x)
    # the grid reads each quantile at the top of its 1/k cell (its mean 7.05, not 7): beta 4.25, the loss
    # above the largest sample 1.3-1.5x the truth's, and the same order of magnitude 2.5 beta beyond it
    np.testing.assert_allclose(tailed, truth, rtol=0.6)
    assert np.all(tailed >= truth)
    below = np.array([[3.0, 5.0, float(u[0])]])  # below the threshold the samples' own loss stands
    np.testing.assert_allclose(_exp_loss(samples, below), _loss(samples, below))


def test_exponential_tail_of_a_planted_negative_binomial():
    """Mean excess over the top decile and the loss above the largest sample of NB(mean 6, var 30)."""
    samples = _grid_of(_NB.ppf)
    u, p_u, b = _exp_tail(samples)
    d = np.arange(4000)
    over = d > u[0]
    excess = ((d[over] - u[0]) * _NB.pmf(d[over])).sum() / _NB.pmf(d[over]).sum()
    assert b[0] == pytest.approx(excess, rel=0.15)
    top = samples[0, -1]
    x = np.array([[top, top + 5.0, top + 10.0]])
    truth = np.array([[_true_loss(_NB, v) for v in x[0]]])
    tailed = _exp_loss(samples, x)
    # the NB's mean excess falls as the threshold rises (its tail is lighter than an exponential's, shape
    # 1.5 > 1): the exponential errs on the side of shortfall, within a factor 2.5 up to 10 units beyond
    assert np.all(tailed >= truth) and np.all(tailed <= 2.5 * truth)


@pytest.mark.parametrize("loss", [_exp_loss, lambda s, x: _nb_mix_loss(s, x, False)], ids=["exp", "nb"])
def test_tail_loss_is_convex_falling_and_positive_above_the_samples(loss):
    rng = np.random.default_rng(4)
    samples = np.sort(np.maximum(rng.gamma(0.6, 5.0, size=(30, 200)) - 1.0, 0.0), axis=1)
    samples[:3] = 0.0  # items without demand have no tail
    samples[3, -1] = 400.0  # one outlier: the exponential is lighter there, the samples' loss stands
    x = np.linspace(0.0, 1.5 * samples.max(), 300)[None, :].repeat(30, axis=0)
    out = loss(samples, x)
    assert np.all(np.diff(out, axis=1) <= 1e-12)
    slope = np.diff(out, axis=1) / np.diff(x, axis=1)
    assert np.all(np.diff(slope, axis=1) >= -1e-9)
    assert np.all(out[:3] <= 1e-6)  # the normal of a zero variance is floored at sd 1e-6
    first = np.argmax(x[4:] > samples[4:, -1:], axis=1)  # the first point above each item's largest sample
    assert np.all(out[4:][np.arange(26), first] > 0)  # still a shortfall there (the samples' own loss: 0)
    assert np.all(_loss(samples[4:], x[4:])[np.arange(26), first] == 0)
    if loss is _exp_loss:
        assert np.all(out >= _loss(samples, x) - 1e-12)  # never below what the samples show


def test_a_top_decile_of_one_value_starts_the_exponential_tail_at_the_next_value_below():
    """Intermittent demand over H: 85 % of the grid at 0, 15 % at 1 (the few largest errors equal)."""
    samples = np.concatenate([np.zeros(170), np.ones(30)])[None, :]
    u, p_u, b = _exp_tail(samples)
    assert (u[0], p_u[0], b[0]) == (0.0, 0.15, 1.0)  # the samples' mean 0.15 is kept
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(_exp_loss(samples, x), 0.15 * np.exp(-x))
    flat = np.full((1, 200), 2.0)  # no spread at all: no tail
    assert _exp_tail(flat)[2][0] == 0.0
    assert _exp_loss(flat, np.array([[2.0, 3.0]])).tolist() == [[0.0, 0.0]]


@pytest.fixture(scope="module")
def recs(tiny_demo, tiny_config, cutoff):
    return recommend_policies(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), cutoff=cutoff
    )


def _tops_and_forecasts(data, rec, config, stocked):
    """Each stocked item's largest sample of demand over H, the mean of its samples and its forecast over H."""
    econ = data.economics
    top, mean, fc, H_of = (np.full(len(rec), np.nan) for _ in range(4))
    for name in set(rec.loc[stocked, "candidate"]):
        rows = np.flatnonzero(stocked & rec["candidate"].eq(name).to_numpy())
        cand = config.space[name]
        H = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon)
        f = data.cum_forecast[cand.forecaster][np.arange(len(rec)), H - 1]
        s = _samples(data, cand, H, f, config)[rows]
        top[rows], mean[rows], fc[rows], H_of[rows] = s.max(axis=1), s.mean(axis=1), f[rows], H[rows]
    return top, mean, fc, H_of


@pytest.mark.parametrize(("kind", "body"), [("nb", "forecast"), ("nb", "samples"), ("exp", "forecast")])
def test_fill_rate_curve_above_the_largest_sample_stays_below_one_and_monotone(labelled, recs, tiny_config, kind, body):
    data, rec = labelled[0], recs
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.TAIL", kind)
        mp.setattr("policy_selector.service_curves.BODY", body)
        curves = item_curves(data, rec, tiny_config, ServiceType.FILL_RATE)
    plain = item_curves(data, rec, tiny_config, ServiceType.FILL_RATE, tail=False)
    stocked = np.isfinite(curves.level).any(axis=1)
    assert np.all(np.diff(curves.level[stocked], axis=1) >= 0)
    assert np.all(np.diff(curves.service[stocked], axis=1) >= 0)  # monotone in the level
    top, mean, fc, H = _tops_and_forecasts(data, rec, tiny_config, stocked)
    if kind == "exp" or body == "samples":  # the tail keeps each item's mean demand
        np.testing.assert_allclose(curves.weight, plain.weight, rtol=1e-12)
    else:  # the weight is the mixture's mean: (1 - w) the samples' + w the forecast's
        want = ((1 - NB_WEIGHT) * mean + NB_WEIGHT * np.maximum(fc, 0)) / H
        np.testing.assert_allclose(curves.weight[stocked], want[stocked], rtol=1e-9)
    np.testing.assert_allclose(plain.weight[stocked], (mean / H)[stocked], rtol=1e-9)
    above = stocked[:, None] & (curves.level > top[:, None]) & (top[:, None] > 0)
    rows = np.flatnonzero(above.any(axis=1))
    assert len(rows) >= 5  # the curves reach above the largest sample
    first = curves.service[rows, np.argmax(above[rows], axis=1)]  # the first level above it
    assert (first < 1.0).mean() >= 0.6, first
    if kind == "nb" and body == "forecast":  # count data: the NB of the forecast has mass above every sample
        assert np.all(first < 1.0), first
    # above the largest sample the tail only adds shortfall: never more service than the samples' model
    # at the same level (the tailed curve's levels are the plain one's plus the tail's), less for most
    less = []
    for i in np.flatnonzero(stocked):
        cols = np.flatnonzero(plain.level[i] > top[i])
        at = np.searchsorted(curves.level[i], plain.level[i, cols], side="right") - 1
        assert np.all(curves.level[i, at] == plain.level[i, cols])
        assert np.all(curves.service[i, at] <= plain.service[i, cols] + 1e-12)
        less += list(curves.service[i, at] < plain.service[i, cols] - 1e-12)
    # the exponential adds a shortfall there; the NB of the samples' moments adds next to none on the tiny
    # demo's normal-family items (their normal tail is as thin as the samples'): tested on count data above
    assert len(less) >= 5 and np.mean(less) >= (0.0 if (kind, body) == ("nb", "samples") else 0.6)
    csl = item_curves(data, rec, tiny_config, ServiceType.CSL)  # CSL curves keep the samples
    csl_plain = item_curves(data, rec, tiny_config, ServiceType.CSL, tail=False)
    np.testing.assert_array_equal(csl.service, csl_plain.service)


@pytest.mark.parametrize("body", ["forecast", "errors", "samples"])
@pytest.mark.parametrize("w", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_fill_rate_curves_are_monotone_in_the_level_for_every_mixture_weight(labelled, recs, tiny_config, w, body):
    """Up to fill 1 (w = 0.5 once dipped by 2.5e-6 there: the mixture's D_H against the NB of D_L)."""
    data, rec = labelled[0], recs
    raw = []

    def unsmoothed(*args, **kwargs):  # the curve before the running max, recorded
        raw.append(_fill_service(*args, **kwargs, monotone=False)[0])
        return _fill_service(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.NB_WEIGHT", w)
        mp.setattr("policy_selector.service_curves.BODY", body)
        mp.setattr("policy_selector.service_curves._fill_service", unsmoothed)
        curves = item_curves(data, rec, tiny_config, ServiceType.FILL_RATE)
    stocked = np.isfinite(curves.level).any(axis=1)
    assert raw and all(np.nanmax(np.maximum.accumulate(f, axis=1) - f) < 1e-5 for f in raw)  # only tiny dips hidden
    assert np.all(np.diff(curves.service[stocked], axis=1) >= 0)
    assert np.all((curves.service[stocked] >= 0) & (curves.service[stocked] <= 1))
    near = curves.service[stocked] > 0.999  # near fill 1 as well
    assert near.any()
    top, *_ = _tops_and_forecasts(data, rec, tiny_config, stocked)
    if w > 0 and body != "samples":  # the first level above every sample still falls short (count data)
        above = (curves.level[stocked] > top[stocked, None]) & (top[stocked, None] > 0)
        rows = np.flatnonzero(above.any(axis=1))
        assert len(rows) >= 20
        first = curves.service[stocked][rows, np.argmax(above[rows], axis=1)]
        # the errors' body: an item whose backtest bias cancels its forecast has no demand in that regime
        assert np.all(first < 1.0) if body == "forecast" else (first < 1.0).mean() >= 0.8, first


def test_untailed_curves_are_the_samples_model_whatever_the_mixture(labelled, recs, tiny_config):
    """``tail=False`` is the sizing's (the simulation's) model: its curves do not read the mixture's weight."""
    data, rec = labelled[0], recs
    out = []
    for w in (0.0, 0.5, 1.0):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("policy_selector.service_curves.NB_WEIGHT", w)
            out.append(item_curves(data, rec, tiny_config, ServiceType.FILL_RATE, tail=False))
    for other in out[1:]:
        np.testing.assert_array_equal(other.service, out[0].service)
        np.testing.assert_array_equal(other.level, out[0].level)


def _planted_history(law, periods=20000, items=3, seed=5):
    return law.rvs(size=(items, periods), random_state=np.random.default_rng(seed)).astype(float)


def test_forecast_body_reads_a_planted_negative_binomial_and_its_fill_rate():
    """Demand NB(mean 2, variance 6) a period, H = 3, L = 1: the body is NB(6, 18), whatever the samples say.

    The samples are the true grid shrunk to 0.6 (the calibrated empirical grid's body on carparts: its mean
    36 % below the demand that came); the forecast is right. The body law alone (w = 1) gives the true loss
    and fill rate; the shrunk samples alone promise fill rates well above the truth.
    """
    per = stats.nbinom(2.0**2 / (6.0 - 2.0), 2.0 / 6.0)
    H, L = 3, 1
    over_H, over_L = stats.nbinom(3 * per.args[0], per.args[1]), per  # sums of i.i.d. NB periods
    data = SimpleNamespace(integral=True, history=_planted_history(per))
    truth = _grid_of(over_H.ppf).repeat(3, axis=0)
    samples, f_h = 0.6 * truth, np.full(3, 6.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.BODY", "forecast")
        mean, var = _body_moments(data, np.arange(3), samples, f_h)
    np.testing.assert_allclose(mean, 6.0)
    np.testing.assert_allclose(var, 18.0, rtol=0.05)  # the history's index of dispersion (3) at the forecast
    y = np.array([2.0, 6.0, 10.0, 14.0, 20.0])
    x = np.broadcast_to(y, (3, len(y)))
    loss = np.array([_true_loss(over_H, v) for v in y])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.NB_WEIGHT", 1.0)
        got = _nb_mix_loss(samples, x, True, (mean, var))
        np.testing.assert_allclose(got[:, :4], loss[None, :4].repeat(3, 0), rtol=0.1)
        np.testing.assert_allclose(got[:, 4], loss[4], rtol=0.25)  # 20: the 0.998 quantile
        fill = _fill_service(samples, (mean, var), x[:, :, None], np.ones((3, 1)), np.full(3, L), np.full(3, H), True)
    short = loss - np.array([_true_loss(over_L, v) for v in y])
    true_fill = 1.0 - short / (2.0 * (H - L))
    np.testing.assert_allclose(fill[0][0], true_fill, atol=0.01)
    assert np.all(np.diff(fill[0], axis=1) >= 0) and np.all(fill[0][:, -1] < 1.0)  # short of 1 above the truth's top
    np.testing.assert_allclose(fill[1], 6.0)  # the curves' mean demand over H: the forecast's
    plain, _ = _fill_service(samples, None, x[:, :, None], np.ones((3, 1)), np.full(3, L), np.full(3, H), True)
    assert np.all(plain[0, 1:4] > true_fill[1:4] + 0.03)  # the shrunk samples alone: optimistic
    assert plain[0, -1] == 1.0  # and above their largest sample nothing is short
    half = _fill_service  # w = 0.5: between the two, never above the samples' own promise
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.NB_WEIGHT", 0.5)
        mid, _ = half(samples, (mean, var), x[:, :, None], np.ones((3, 1)), np.full(3, L), np.full(3, H), True)
    assert np.all(mid[0] <= plain[0] + 1e-12) and np.all(mid[0] >= fill[0][0] - 1e-12)


def test_forecast_body_of_planted_gamma_demand_keeps_the_samples_spread():
    """Non-count demand Gamma(shape 4, scale 1.5) over H: the body is the gamma of the forecast and the samples'
    variance; with the samples the true grid, the curve's loss matches the truth for every weight."""
    law = stats.gamma(4.0, scale=1.5)  # mean 6, variance 9
    samples = _grid_of(law.ppf).repeat(2, axis=0)
    data = SimpleNamespace(integral=False, history=_planted_history(stats.gamma(1.0, scale=2.0), items=2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.BODY", "forecast")
        mean, var = _body_moments(data, np.arange(2), samples, np.full(2, 6.0), scale=np.array([1.0, 2.0]))
    np.testing.assert_allclose(mean, [6.0, 12.0])  # the scale moves the forecast's law as it moves the samples
    np.testing.assert_allclose(var, 9.0, rtol=0.05)  # the samples' variance (the caller scales the samples)
    y = np.array([4.0, 6.0, 8.0, 10.0, 12.0])
    truth = np.array([law.expect(lambda d, v=v: max(d - v, 0.0)) for v in y])
    for w in (0.0, 0.5, 1.0):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("policy_selector.service_curves.NB_WEIGHT", w)
            got = _nb_mix_loss(samples[:1], y[None, :], False, (mean[:1], var[:1]))
            # the grid reads each quantile at the top of its cell: a little above the truth in the tail
        np.testing.assert_allclose(got[0], truth, rtol=0.12 if w < 1 else 0.05)


def test_forecast_body_does_not_count_a_season_as_noise():
    """A planted season (amplitude 6 on NB(mean 8, variance 16) periods) is forecast, not dispersion: the
    body's index of dispersion stays the NB's 2 (the plain variance of the history would read ~3)."""
    per = stats.nbinom(8.0**2 / (16.0 - 8.0), 8.0 / 16.0)
    noise = _planted_history(per, periods=2400, items=2)
    season = np.round(6.0 * np.sin(2 * np.pi * np.arange(2400) / 52.0))
    data = SimpleNamespace(integral=True, history=noise + season[None, :])
    assert np.var(data.history[0]) / np.mean(data.history[0]) > 3.0  # the season inflates the plain index
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.BODY", "forecast")
        mean, var = _body_moments(data, np.arange(2), np.zeros((2, 10)), np.full(2, 24.0))
    np.testing.assert_allclose(mean, 24.0)
    np.testing.assert_allclose(var / mean, 2.0, rtol=0.1)


def test_errors_body_is_the_forecast_plus_the_uncalibrated_error_moments():
    """``BODY = "errors"``: mean forecast + the backtest errors' mean over H, variance theirs plus the lead
    time's; the error model's table (no conformal level map); series it does not know keep the samples'."""
    import pandas as pd

    table = pd.DataFrame(
        {"unique_id": ["a", "b"], "model": "CrostonSBA", "H": 2.0, "mean": [-1.5, 2.0], "std": [2.0, 3.0]}
    )
    em = SimpleNamespace(ids_=np.array(["a", "b"]), table=lambda horizons, quantiles: table)
    econ = SimpleNamespace(lead_time_std=np.array([0.0, 1.0, 0.0]))
    data = SimpleNamespace(integral=True, ids=np.array(["a", "b", "c"]), error_models={"empirical": em}, economics=econ)
    cand = SimpleNamespace(distribution="empirical", forecaster="CrostonSBA")
    samples = np.array([[0.0, 1.0, 2.0, 5.0]] * 3)
    f_h = np.array([6.0, 4.0, 3.0])
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.BODY", "errors")
        mean, var = _body_moments(data, np.arange(3), samples, f_h, None, cand, np.array([2, 2, 2]))
        scaled = _body_moments(data, np.arange(3), samples, f_h, np.full(3, 2.0), cand, np.array([2, 2, 2]))
    np.testing.assert_allclose(mean, [4.5, 6.0, 2.0])  # c: not in the error model, the samples' mean
    np.testing.assert_allclose(var, [4.5, 9.0 + (4.0 / 2 * 1.0) ** 2, samples[2].var()])  # a: at least Poisson
    np.testing.assert_allclose(scaled[0][:2], 2 * mean[:2])


def test_an_unknown_body_law_is_refused(labelled, recs, tiny_config):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_curves.BODY", "forcast")
        with pytest.raises(ValueError, match="BODY must be 'samples', 'forecast' or 'errors', got 'forcast'"):
            item_curves(labelled[0], recs, tiny_config, ServiceType.FILL_RATE)
