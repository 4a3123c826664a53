"""Optimizers: parity with torch.optim, dtype preservation, validation, state round trip."""
from __future__ import annotations

import numpy as np
import pytest

from mlpnumpy.errors import InvalidArgumentError
from mlpnumpy.optim.optimizers import (OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop,
                                 get_optimizer)
from mlpnumpy.nn.parameter import Parameter

SHAPES = [(3, 4), (4,), (2, 3, 2)]
N = sum(int(np.prod(s)) for s in SHAPES)

# (id, our class, torch class name, kwargs); the kwargs mean the same thing on both sides.
CASES = [
    ("sgd", SGD, "SGD", dict(lr=0.05)),
    ("sgd-momentum", SGD, "SGD", dict(lr=0.05, momentum=0.9)),
    ("sgd-dampening", SGD, "SGD", dict(lr=0.05, momentum=0.9, dampening=0.3)),
    ("sgd-nesterov", SGD, "SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd-wd", SGD, "SGD", dict(lr=0.05, weight_decay=0.1)),
    ("sgd-all", SGD, "SGD", dict(lr=0.05, momentum=0.8, weight_decay=0.05, nesterov=True)),
    ("sgd-mom-damp-wd", SGD, "SGD", dict(lr=0.05, momentum=0.8, dampening=0.5, weight_decay=0.05)),
    ("adam", Adam, "Adam", dict(lr=0.02)),
    ("adam-wd", Adam, "Adam", dict(lr=0.02, weight_decay=0.1)),
    ("adam-amsgrad", Adam, "Adam", dict(lr=0.02, amsgrad=True, betas=(0.8, 0.99))),
    ("adam-amsgrad-wd", Adam, "Adam", dict(lr=0.02, amsgrad=True, weight_decay=0.1, eps=1e-6)),
    ("adamw", AdamW, "AdamW", dict(lr=0.02)),
    ("adamw-wd", AdamW, "AdamW", dict(lr=0.02, weight_decay=0.3)),
    ("adamw-amsgrad", AdamW, "AdamW", dict(lr=0.02, weight_decay=0.1, amsgrad=True)),
    ("rmsprop", RMSprop, "RMSprop", dict(lr=0.01)),
    ("rmsprop-momentum", RMSprop, "RMSprop", dict(lr=0.005, momentum=0.9)),
    ("rmsprop-centered", RMSprop, "RMSprop", dict(lr=0.005, centered=True, alpha=0.9)),
    ("rmsprop-wd", RMSprop, "RMSprop", dict(lr=0.01, weight_decay=0.1)),
    ("rmsprop-all", RMSprop, "RMSprop", dict(lr=0.005, momentum=0.5, centered=True, weight_decay=0.1)),
    ("adagrad", Adagrad, "Adagrad", dict(lr=0.1)),
    ("adagrad-lr-decay", Adagrad, "Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("adagrad-wd", Adagrad, "Adagrad", dict(lr=0.1, weight_decay=0.1)),
    ("adagrad-init-acc", Adagrad, "Adagrad", dict(lr=0.1, initial_accumulator_value=0.5, eps=1e-6)),
]


def _problem(seed: int = 0):
    """A fixed smooth non-quadratic loss over all parameters flattened into one vector x.

    ``L(x) = 0.5 x'Qx - c'x + 0.25 * sum(x^4)``, so ``grad = Qx - c + x^3`` (computed the same way
    in NumPy and torch, from the current weights, every step).
    """
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((N, N))
    Q = M @ M.T / N + 0.5 * np.eye(N)
    c = rng.standard_normal(N)
    w0 = [rng.standard_normal(s) for s in SHAPES]
    return Q, c, w0


def _np_grads(params, Q, c):
    x = np.concatenate([p.data.ravel() for p in params])
    g = Q @ x - c + x ** 3
    off = 0
    for p in params:
        p.grad[...] = g[off:off + p.data.size].reshape(p.data.shape)
        off += p.data.size


def _torch_grads(torch, tparams, Qt, ct):
    with torch.no_grad():
        x = torch.cat([t.reshape(-1) for t in tparams])
        g = Qt @ x - ct + x ** 3
        off = 0
        for t in tparams:
            t.grad = g[off:off + t.numel()].reshape(t.shape).clone()
            off += t.numel()


def _run_numpy(opt: Optimizer, params, Q, c, steps: int, lr_change_at: int | None = None):
    for k in range(steps):
        if k == lr_change_at:
            opt.lr = opt.lr * 0.5
        _np_grads(params, Q, c)
        opt.step(params)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_parity_with_torch(case):
    """50 full-batch steps (lr halved at step 25, as a schedule would) agree with torch.optim.

    Tolerance: relative 1e-9 with an absolute floor of 1e-12 for entries near zero.
    """
    torch = pytest.importorskip("torch")
    _, cls, tname, kwargs = case
    Q, c, w0 = _problem()
    params = [Parameter(w.copy()) for w in w0]
    opt = cls(**kwargs)
    _run_numpy(opt, params, Q, c, 50, lr_change_at=25)

    tparams = [torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in w0]
    topt = getattr(torch.optim, tname)(tparams, **kwargs)
    Qt, ct = torch.from_numpy(Q), torch.from_numpy(c)
    for k in range(50):
        if k == 25:
            for group in topt.param_groups:
                group["lr"] *= 0.5
        _torch_grads(torch, tparams, Qt, ct)
        topt.step()

    moved = False
    for p, t, w in zip(params, tparams, w0):
        assert p.data.dtype == np.float64
        np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-9, atol=1e-12)
        moved |= not np.allclose(p.data, w, rtol=0, atol=1e-3)
    assert moved, "the optimizer did not change the weights, so the parity check proved nothing"
    assert opt.iterations == 50


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_float32_stays_float32_in_place_and_grad_untouched(case):
    _, cls, _, kwargs = case
    Q, c, w0 = _problem(1)
    params = [Parameter(w.astype(np.float32)) for w in w0]
    buffers = [p.data for p in params]
    opt = cls(**kwargs)
    for _ in range(5):
        _np_grads(params, Q, c)
        grads = [p.grad.copy() for p in params]
        opt.step(params)
        for p, g in zip(params, grads):
            np.testing.assert_array_equal(p.grad, g)  # the optimizer never writes into grad
    for p, buf in zip(params, buffers):
        assert p.data.dtype == np.float32 and p.grad.dtype == np.float32
        assert p.data is buf  # updated in place
        assert np.all(np.isfinite(p.data))
    for state in opt.state:
        assert all(v.dtype == np.float32 for v in state.values())


INVALID = [
    (SGD, dict(lr=-0.1), "lr=-0.1"),
    (SGD, dict(momentum=-0.5), "momentum=-0.5"),
    (SGD, dict(weight_decay=-1.0), "weight_decay=-1.0"),
    (SGD, dict(nesterov=True), "momentum=0"),
    (SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "dampening=0.1"),
    (Adam, dict(lr=-1e-3), "lr=-0.001"),
    (Adam, dict(betas=(1.0, 0.999)), "betas[0]=1.0"),
    (Adam, dict(betas=(-0.1, 0.999)), "betas[0]=-0.1"),
    (Adam, dict(betas=(0.9, 1.5)), "betas[1]=1.5"),
    (Adam, dict(eps=-1e-8), "eps=-1e-08"),
    (Adam, dict(weight_decay=-0.1), "weight_decay=-0.1"),
    (AdamW, dict(betas=(0.9, 1.0)), "betas[1]=1.0"),
    (AdamW, dict(weight_decay=-0.01), "weight_decay=-0.01"),
    (RMSprop, dict(alpha=-0.1), "alpha=-0.1"),
    (RMSprop, dict(eps=-1.0), "eps=-1.0"),
    (RMSprop, dict(momentum=-0.9), "momentum=-0.9"),
    (RMSprop, dict(weight_decay=-0.5), "weight_decay=-0.5"),
    (Adagrad, dict(lr_decay=-0.1), "lr_decay=-0.1"),
    (Adagrad, dict(initial_accumulator_value=-1.0), "initial_accumulator_value=-1.0"),
    (Adagrad, dict(eps=-1e-10), "eps=-1e-10"),
    (Adagrad, dict(lr=-0.5), "lr=-0.5"),
]


@pytest.mark.parametrize("cls,kwargs,fragment", INVALID,
                         ids=[f"{c.__name__}-{'-'.join(k)}" for c, k, _ in INVALID])
def test_invalid_arguments_raise_like_torch(cls, kwargs, fragment):
    with pytest.raises(InvalidArgumentError, match="Invalid") as info:
        cls(**kwargs)
    assert isinstance(info.value, ValueError)
    assert fragment in str(info.value)
    assert "expected" in str(info.value)  # says what is accepted
    torch = pytest.importorskip("torch")
    with pytest.raises(ValueError):  # torch rejects exactly the same settings
        getattr(torch.optim, cls.__name__)([torch.zeros(1, requires_grad=True)], **kwargs)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop, Adagrad])
def test_zero_lr_accepted_as_in_torch_and_lr_assignment_validated(cls):
    opt = cls(lr=0.0)
    assert opt.lr == 0.0
    opt.lr = 0.25
    assert opt.lr == 0.25 and isinstance(opt.lr, float)
    with pytest.raises(InvalidArgumentError, match=r"Invalid learning rate: lr=-1"):
        opt.lr = -1
    with pytest.raises(InvalidArgumentError, match="lr=nan"):
        opt.lr = float("nan")


def _plain(obj) -> bool:
    if isinstance(obj, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in obj.items())
    if isinstance(obj, list):
        return all(_plain(v) for v in obj)
    return obj is None or isinstance(obj, (bool, int, float, np.ndarray))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_state_dict_round_trip_continues_bit_identically(case):
    _, cls, _, kwargs = case
    Q, c, w0 = _problem(2)
    params = [Parameter(w.copy()) for w in w0]
    opt = cls(**kwargs)
    _run_numpy(opt, params, Q, c, 10)
    saved = opt.state_dict()
    snapshot = [p.data.copy() for p in params]
    assert _plain(saved)
    _run_numpy(opt, params, Q, c, 10)

    fresh_params = [Parameter(w.copy()) for w in snapshot]
    fresh = cls(**kwargs)
    fresh.load_state_dict(saved)
    assert fresh.iterations == 10
    _run_numpy(fresh, fresh_params, Q, c, 10)
    for p, q in zip(params, fresh_params):
        np.testing.assert_array_equal(p.data, q.data)
    assert not np.array_equal(snapshot[0], params[0].data)  # the second leg really moved


def test_reset_forgets_state_and_mismatched_params_raise():
    Q, c, w0 = _problem(3)
    params = [Parameter(w.copy()) for w in w0]
    opt = Adam(lr=0.01)
    _run_numpy(opt, params, Q, c, 3)
    with pytest.raises(InvalidArgumentError, match="params has 2 parameters"):
        opt.step(params[:2])
    opt.reset()
    assert opt.state is None and opt.iterations == 0
    opt.step(params[:2])
    assert len(opt.state) == 2


def test_load_state_dict_rejects_garbage():
    with pytest.raises(InvalidArgumentError, match="state_dict"):
        SGD().load_state_dict({"lr": 0.1})


def test_get_optimizer_by_name_and_instance():
    for name, cls in OPTIMIZERS.items():
        opt = get_optimizer(name)
        assert type(opt) is cls
        assert get_optimizer(name.upper(), lr=0.5).lr == 0.5
    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "rmsprop", "adagrad"}
    assert get_optimizer("adam").lr == 1e-3 and get_optimizer("sgd").lr == 0.01
    assert get_optimizer("adamw").weight_decay == 1e-2 and get_optimizer("adam").weight_decay == 0.0
    opt = RMSprop(lr=0.1)
    assert get_optimizer(opt) is opt


def test_get_optimizer_unknown_name_lists_valid_ones():
    with pytest.raises(InvalidArgumentError) as info:
        get_optimizer("adma")
    msg = str(info.value)
    assert "'adma'" in msg
    for name in OPTIMIZERS:
        assert name in msg


def test_adam_is_adamw_without_decoupled_decay():
    """The two share one implementation; only the weight-decay placement differs."""
    Q, c, w0 = _problem(4)
    a = [Parameter(w.copy()) for w in w0]
    b = [Parameter(w.copy()) for w in w0]
    _run_numpy(Adam(lr=0.01, weight_decay=0.1), a, Q, c, 5)
    _run_numpy(AdamW(lr=0.01, weight_decay=0.1, decoupled_weight_decay=False), b, Q, c, 5)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)
    assert isinstance(Adam(), AdamW)


def test_repr_shows_hyperparameters():
    r = repr(SGD(lr=0.1, momentum=0.9))
    assert r.startswith("SGD(lr=0.1,") and "momentum=0.9" in r and "state" not in r
    assert "betas=(0.9, 0.999)" in repr(AdamW())


def test_adam_state_saved_by_an_older_mlpnumpy_continues_the_same(rng):
    # before the two paths, Adam kept m / (1 - beta1) and v / (1 - beta2) as grad_sum, sq_grad_sum
    from mlpnumpy.nn.parameter import Parameter
    p = Parameter(rng.standard_normal(5))
    opt = Adam(lr=0.01, amsgrad=True)
    for _ in range(3):
        p.grad = rng.standard_normal(5)
        opt.step([p])
    st = opt.state[0]
    old = {"lr": 0.01, "iterations": 3, "state": [{"grad_sum": st["exp_avg"] / 0.1, "sq_grad_sum": st["exp_avg_sq"] / 0.001,
                                                    "max_sq_grad_sum": st["max_exp_avg_sq"] / 0.001}]}
    q = Parameter(p.data.copy())
    resumed = Adam(lr=0.01, amsgrad=True)
    resumed.load_state_dict(old)
    for _ in range(3):
        g = rng.standard_normal(5)
        p.grad, q.grad = g, g.copy()
        opt.step([p])
        resumed.step([q])
    np.testing.assert_allclose(q.data, p.data, rtol=1e-12)
    assert set(resumed.state[0]) == {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
