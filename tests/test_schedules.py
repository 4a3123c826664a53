"""Learning-rate schedules: parity with torch.optim.lr_scheduler, the loop contract, persistence."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mlpnumpy.errors import InvalidArgumentError, NotFittedError
from mlpnumpy.optim.optimizers import SGD
from mlpnumpy.optim.schedules import (SCHEDULES, CosineAnnealingLR, ExponentialLR, LambdaLR, LinearWarmup,
                                MultiStepLR, OneCycleLR, ReduceLROnPlateau, Schedule, StepLR,
                                get_schedule)

BASE_LR = 0.1


def _metrics(n: int = 80) -> list[float]:
    """A validation-loss curve with improvements, long plateaus, tiny gains and a rise."""
    rng = np.random.default_rng(0)
    out, v = [], 1.0
    for k in range(n):
        if k < 10:
            v *= 0.9
        elif 25 <= k < 30:
            v *= 0.99999  # gains below the 1e-4 relative threshold do not count
        elif 45 <= k < 50:
            v *= 0.8
        out.append(float(v + (0.05 if 60 <= k < 64 else 0.0) + 1e-3 * rng.random() * (k % 3 == 0)))
    return out


def _ours(schedule: Schedule, n: int, metrics=None) -> list[float]:
    opt = SGD(lr=BASE_LR)
    schedule.begin(opt)
    lrs = [opt.lr]
    for k in range(n):
        schedule.step(None if metrics is None else metrics[k])
        lrs.append(opt.lr)
    return lrs


def _torch(torch, make, n: int, metrics=None) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=BASE_LR)
    sched = make(torch.optim.lr_scheduler, opt)
    lrs = [opt.param_groups[0]["lr"]]
    for k in range(n):
        opt.step()
        sched.step() if metrics is None else sched.step(metrics[k])
        lrs.append(float(opt.param_groups[0]["lr"]))
    return lrs


def _seq(S, opt, first, second, milestone):
    return S.SequentialLR(opt, [first(opt), second(opt)], milestones=[milestone])


PARITY = [
    ("step", lambda: StepLR(7, gamma=0.5), lambda S, o: S.StepLR(o, 7, gamma=0.5), 60),
    ("multistep", lambda: MultiStepLR([30, 10, 45, 45], gamma=0.3),
     lambda S, o: S.MultiStepLR(o, [30, 10, 45, 45], gamma=0.3), 60),
    ("exponential", lambda: ExponentialLR(0.95), lambda S, o: S.ExponentialLR(o, 0.95), 60),
    ("cosine", lambda: CosineAnnealingLR(30), lambda S, o: S.CosineAnnealingLR(o, 30), 30),
    ("cosine-past-tmax", lambda: CosineAnnealingLR(20, eta_min=1e-3),
     lambda S, o: S.CosineAnnealingLR(o, 20, eta_min=1e-3), 70),
    ("lambda", lambda: LambdaLR(lambda e: 1 / (1 + 0.1 * e)),
     lambda S, o: S.LambdaLR(o, lambda e: 1 / (1 + 0.1 * e)), 50),
    ("warmup-alone", lambda: LinearWarmup(8, start_factor=0.1),
     lambda S, o: S.LinearLR(o, start_factor=0.1, total_iters=8), 30),
    ("warmup-cosine", lambda: LinearWarmup(5, start_factor=0.2, after=CosineAnnealingLR(40, eta_min=1e-4)),
     lambda S, o: _seq(S, o, lambda p: S.LinearLR(p, start_factor=0.2, total_iters=5),
                       lambda p: S.CosineAnnealingLR(p, 40, eta_min=1e-4), 5), 45),
    ("warmup-step", lambda: LinearWarmup(4, after=StepLR(5, gamma=0.5)),
     lambda S, o: _seq(S, o, lambda p: S.LinearLR(p, total_iters=4), lambda p: S.StepLR(p, 5, gamma=0.5), 4),
     40),
    ("warmup-exponential", lambda: LinearWarmup(3, start_factor=0.5, after=ExponentialLR(0.9)),
     lambda S, o: _seq(S, o, lambda p: S.LinearLR(p, start_factor=0.5, total_iters=3),
                       lambda p: S.ExponentialLR(p, 0.9), 3), 30),
    ("onecycle", lambda: OneCycleLR(1.0, 100),
     lambda S, o: S.OneCycleLR(o, 1.0, total_steps=100, cycle_momentum=False), 99),
    ("onecycle-linear-3phase", lambda: OneCycleLR(0.5, 64, pct_start=0.25, anneal_strategy="linear",
                                                  div_factor=10, final_div_factor=100, three_phase=True),
     lambda S, o: S.OneCycleLR(o, 0.5, total_steps=64, pct_start=0.25, anneal_strategy="linear",
                               div_factor=10, final_div_factor=100, three_phase=True,
                               cycle_momentum=False), 63),
    ("onecycle-cos-3phase", lambda: OneCycleLR(2.0, 50, pct_start=0.4, three_phase=True),
     lambda S, o: S.OneCycleLR(o, 2.0, total_steps=50, pct_start=0.4, three_phase=True,
                               cycle_momentum=False), 49),
]


@pytest.mark.parametrize("name,ours,theirs,n", PARITY, ids=[p[0] for p in PARITY])
def test_parity_with_torch(name, ours, theirs, n):
    torch = pytest.importorskip("torch")
    got, want = _ours(ours(), n), _torch(torch, theirs, n)
    assert len(set(np.round(want, 12))) > 2, "the reference schedule is constant; the test proves nothing"
    assert np.allclose(got, want, rtol=1e-12, atol=0), list(zip(got, want))


PLATEAU = [
    dict(),
    dict(patience=3, factor=0.5),
    dict(patience=2, factor=0.5, cooldown=3, min_lr=0.01),
    dict(patience=1, threshold=0.01, threshold_mode="abs", factor=0.7),
    dict(patience=0, factor=0.9, eps=0.005, min_lr=0.07),
    dict(mode="max", patience=2, factor=0.5),
]


@pytest.mark.parametrize("kwargs", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_plateau_parity_with_torch(kwargs):
    torch = pytest.importorskip("torch")
    metrics = _metrics()
    if kwargs.get("mode") == "max":
        metrics = [-m for m in metrics]
    got = _ours(ReduceLROnPlateau(**kwargs), len(metrics), metrics)
    want = _torch(torch, lambda S, o: S.ReduceLROnPlateau(o, **kwargs), len(metrics), metrics)
    assert len(set(want)) > 1, "the metric sequence never triggered a reduction"
    assert np.allclose(got, want, rtol=1e-12, atol=0), list(zip(got, want))


def test_plateau_needs_the_metric():
    s = ReduceLROnPlateau()
    s.begin(SGD(lr=0.1))
    with pytest.raises(InvalidArgumentError, match="metric=None"):
        s.step()


def test_warmup_then_plateau_passes_the_metric_on():
    s = LinearWarmup(2, start_factor=0.5, after=ReduceLROnPlateau(patience=0, factor=0.5))
    lrs = _ours(s, 5, [1.0, 1.0, 1.0, 1.0, 1.0])
    # warm-up 0.05, 0.075; base 0.1 at the hand-over; then every flat epoch past patience 0 halves it
    # (the first metric after the hand-over sets "best", the next is a bad epoch).
    assert np.allclose(lrs, [0.05, 0.075, 0.1, 0.1, 0.05, 0.025], rtol=1e-15)


def test_hand_worked_values():
    assert np.allclose(_ours(StepLR(2, gamma=0.5), 5), [0.1, 0.1, 0.05, 0.05, 0.025, 0.025], rtol=1e-15)
    assert np.allclose(_ours(LinearWarmup(4, start_factor=0.2), 6),
                       [0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.1], rtol=1e-15)
    lrs = _ours(CosineAnnealingLR(4), 4)
    assert np.allclose(lrs, [0.1, 0.1 * (1 + math.sqrt(0.5)) / 2, 0.05, 0.1 * (1 - math.sqrt(0.5)) / 2, 0.0],
                       rtol=1e-14, atol=1e-17)
    oc = _ours(OneCycleLR(1.0, 10, pct_start=0.5, anneal_strategy="linear", div_factor=10,
                          final_div_factor=10), 9)
    assert oc[0] == pytest.approx(0.1) and max(oc) == pytest.approx(1.0) and oc[-1] == pytest.approx(0.01)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_onecycle_holds_the_final_rate_after_the_last_step(strategy):
    """After total_steps steps torch extrapolates (negative for three-phase linear); we hold the end."""
    s = OneCycleLR(0.5, 64, pct_start=0.25, anneal_strategy=strategy, div_factor=10,
                   final_div_factor=100, three_phase=True)
    lrs = _ours(s, 64)
    assert lrs[-1] == pytest.approx(0.5 / 10 / 100, rel=1e-12) and min(lrs) == lrs[-1]


def test_onecycle_ignores_optimizer_lr_and_refuses_to_overrun():
    s = OneCycleLR(1.0, 5)
    opt = SGD(lr=123.0)
    s.begin(opt)
    assert opt.lr == pytest.approx(1.0 / 25)
    for _ in range(5):
        s.step()
    with pytest.raises(InvalidArgumentError, match="total_steps=5"):
        s.step()


@pytest.mark.parametrize("make", [
    lambda: StepLR(3, gamma=0.5),
    lambda: CosineAnnealingLR(12, eta_min=0.001),
    lambda: LinearWarmup(4, after=CosineAnnealingLR(10)),
    lambda: LinearWarmup(4, after=ReduceLROnPlateau(patience=1, factor=0.5)),
    lambda: OneCycleLR(1.0, 30),
    lambda: ReduceLROnPlateau(patience=1, factor=0.5, cooldown=1),
], ids=["step", "cosine", "warmup-cosine", "warmup-plateau", "onecycle", "plateau"])
def test_state_dict_round_trip(make):
    metrics = _metrics(30)
    full = _ours(make(), 20, metrics)

    first = make()
    opt = SGD(lr=BASE_LR)
    first.begin(opt)
    for k in range(8):
        first.step(metrics[k])
    saved = first.state_dict()
    assert all(v is None or isinstance(v, (int, float, str, dict)) for v in saved.values())

    resumed = make()
    opt2 = SGD(lr=0.5)  # a different lr: the saved base_lr wins
    resumed.load_state_dict(saved)
    resumed.begin(opt2)
    lrs = [opt2.lr]
    for k in range(8, 20):
        resumed.step(metrics[k])
        lrs.append(opt2.lr)
    assert lrs == full[8:]  # bit-identical continuation
    assert len(set(full)) > 2


def test_begin_again_keeps_progress_and_reset_starts_over():
    s = ExponentialLR(0.5)
    opt = SGD(lr=1.0)
    s.begin(opt)
    s.step()
    s.step()
    assert opt.lr == 0.25
    opt.lr = 0.9  # someone else changed it between fits
    s.begin(opt)  # continued fit
    assert opt.lr == 0.25 and s.last_epoch == 2
    s.reset()
    assert opt.lr == 1.0  # the base rate is back, not the decayed one
    s.begin(opt)
    assert opt.lr == 1.0 and s.last_epoch == 0 and s.base_lr == 1.0


def test_step_before_begin_raises():
    with pytest.raises(NotFittedError, match="begin"):
        StepLR(3).step()


def test_load_state_dict_of_another_schedule_raises():
    s = StepLR(2)
    s.begin(SGD())
    with pytest.raises(InvalidArgumentError, match="StepLR"):
        ExponentialLR(0.9).load_state_dict(s.state_dict())


def test_intervals():
    assert StepLR(3).interval == "epoch"
    assert OneCycleLR(1.0, 10).interval == "step"
    assert LinearWarmup(3, after=CosineAnnealingLR(10, interval="step")).interval == "step"
    assert LinearWarmup(3).interval == "epoch"
    with pytest.raises(InvalidArgumentError, match="interval"):
        LinearWarmup(3, after=CosineAnnealingLR(10, interval="step"), interval="epoch")
    with pytest.raises(InvalidArgumentError, match="interval='batch'"):
        StepLR(3, interval="batch")


@pytest.mark.parametrize("make,fragment", [
    (lambda: StepLR(0), "step_size=0"),
    (lambda: StepLR(2.5), "step_size=2.5"),
    (lambda: StepLR(3, gamma=-0.1), "gamma=-0.1"),
    (lambda: MultiStepLR([5, -1]), "milestones=-1"),
    (lambda: ExponentialLR(0), "gamma=0"),
    (lambda: CosineAnnealingLR(0), "T_max=0"),
    (lambda: CosineAnnealingLR(10, eta_min=-1.0), "eta_min=-1.0"),
    (lambda: LinearWarmup(0), "warmup=0"),
    (lambda: LinearWarmup(5, start_factor=0.0), "start_factor=0.0"),
    (lambda: LinearWarmup(5, start_factor=1.5), "start_factor=1.5"),
    (lambda: LinearWarmup(5, after="cosine"), "after='cosine'"),
    (lambda: OneCycleLR(1.0, 0), "total_steps=0"),
    (lambda: OneCycleLR(1.0, 10, pct_start=1.5), "pct_start=1.5"),
    (lambda: OneCycleLR(1.0, 10, anneal_strategy="exp"), "anneal_strategy='exp'"),
    (lambda: OneCycleLR(-1.0, 10), "max_lr=-1.0"),
    (lambda: OneCycleLR(1.0, 10, pct_start=0.1), "pct_start=0.1"),
    (lambda: ReduceLROnPlateau(mode="up"), "mode='up'"),
    (lambda: ReduceLROnPlateau(factor=1.0), "factor=1.0"),
    (lambda: ReduceLROnPlateau(threshold_mode="pct"), "threshold_mode='pct'"),
    (lambda: ReduceLROnPlateau(patience=-1), "patience=-1"),
    (lambda: ReduceLROnPlateau(min_lr=-0.1), "min_lr=-0.1"),
    (lambda: LambdaLR(3.0), "lr_lambda=3.0"),
])
def test_invalid_arguments(make, fragment):
    with pytest.raises(InvalidArgumentError) as info:
        make()
    msg = str(info.value)
    assert fragment in msg and ("expected" in msg or "is not one of" in msg)


def test_get_schedule():
    s = get_schedule("cosine", T_max=50)
    assert isinstance(s, CosineAnnealingLR) and s.T_max == 50
    assert get_schedule("Plateau", patience=3).patience == 3
    built = StepLR(3)
    assert get_schedule(built) is built
    lam = get_schedule(lambda e: 0.5 ** e)
    assert isinstance(lam, LambdaLR)
    assert _ours(lam, 2) == [0.1, 0.05, 0.025]
    with pytest.raises(InvalidArgumentError) as info:
        get_schedule("cosin")
    for name in SCHEDULES:
        assert name in str(info.value)
    with pytest.raises(InvalidArgumentError, match="already built"):
        get_schedule(built, gamma=0.5)


def test_repr():
    assert repr(StepLR(3, gamma=0.5)) == "StepLR(step_size=3, gamma=0.5, interval='epoch')"
    r = repr(LinearWarmup(2, after=CosineAnnealingLR(10)))
    assert r.startswith("LinearWarmup(warmup=2,") and "after=CosineAnnealingLR(T_max=10, eta_min=0.0" in r
