"""``fit``: check the arguments, hold out validation rows, and give the training driver
(:mod:`mlpnumpy.training.driver`: callbacks, schedules, Ctrl-C, divergence) one epoch's work: shuffle,
batch, forward, loss, backward, optimizer step.

One epoch walks a fresh permutation of the row indices (the data itself is never copied to
shuffle it); every batch, the last partial one included, takes one optimizer step.
"""
from __future__ import annotations

import math

import numpy as np

from .._validation import check_sample_weight, check_targets, check_X
from .._array_api import is_array, namespace, to_host
from .callbacks import CallbackList, History, ProgressBar
from .driver import TrainingDriver, all_finite
from ..nn._modellock import exclusive_fit
from ..errors import InvalidArgumentError, InvalidDataError, check_choice, check_in_range, check_positive
from ..nn.metrics import compute as compute_metrics
from ..optim.optimizers import SGD, Optimizer, get_optimizer
from ..datasets.splits import held_out_size, train_val_split

__all__ = ["fit", "clip_grad_norm", "train_val_split", "evaluate_arrays"]


def clip_grad_norm(params, max_norm: float) -> float:
    r"""Scale all gradients together so their global L2 norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``: :math:`g \leftarrow g \cdot \min(1, c / (\lVert g \rVert + 10^{-6}))`.

    Returns the norm before clipping: a float, or for arrays of another library a 0-d array on their
    device (the clipping then runs there with no number brought back to the host).
    """
    from .._array_api import is_numpy, namespace
    params = list(params)
    if params and not is_numpy(params[0].grad):
        xp = namespace(params[0].grad)
        total = xp.sqrt(sum(xp.sum(p.grad * p.grad) for p in params))
        coef = xp.clip(max_norm / (total + 1e-6), max=1.0)
        for p in params:
            p.grad *= coef
        return total
    total = math.sqrt(sum(float(np.sum(np.square(p.grad, dtype=np.float64))) for p in params))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for p in params:
            p.grad *= p.grad.dtype.type(coef)
    return total


_clip = clip_grad_norm  # the fit argument of the same name shadows it inside fit


def evaluate_arrays(model, X: np.ndarray, y: np.ndarray, batch_size: int = 4096) -> dict[str, float]:
    """Loss and metrics of already-validated, already-preprocessed arrays, in evaluation mode."""
    n = X.shape[0]  # slices stop inside the array and name every axis, as the Array API standard asks
    outs = [model.forward(X[i:min(i + batch_size, n), ...], training=False) for i in range(0, n, batch_size)]
    out = outs[0] if len(outs) == 1 else namespace(outs[0]).concat(outs)
    res = {"loss": model.loss.forward(out, y)}
    res.update(compute_metrics(model.loss.name, out, y))
    return res


class _RegressionStats:
    """Running sums for the epoch's MSE and R² from the training batches' outputs."""

    def __init__(self):
        self.n = 0
        self.sse = self.sy = self.syy = 0.0

    def add(self, out, y):
        d = out - y
        self.n += out.shape[0]
        if not isinstance(out, np.ndarray):  # summed on the device (in its dtype) until the epoch ends
            xp = namespace(out)
            self.sse = self.sse + xp.sum(d * d, axis=0)
            self.sy = self.sy + xp.sum(y, axis=0)
            self.syy = self.syy + xp.sum(y * y, axis=0)
            return
        self.sse = self.sse + np.sum(d * d, axis=0, dtype=np.float64)
        self.sy = self.sy + np.sum(y, axis=0, dtype=np.float64)
        self.syy = self.syy + np.sum(y * y, axis=0, dtype=np.float64)

    def result(self) -> dict[str, float]:
        from ..nn.metrics import r2_from_sums
        self.sse, self.sy, self.syy = (np.asarray(to_host(v), dtype=np.float64) if not isinstance(v, float)
                                       else v for v in (self.sse, self.sy, self.syy))
        sst = np.maximum(self.syy - self.sy * self.sy / self.n, 0.0)  # float64 sums; clip round-off
        return {"mse": float(np.mean(self.sse) / self.n), "r2": r2_from_sums(self.sse, sst)}


class _ReferenceStep:
    """One batch on the reference path: the model's forward, the loss, the model's backward (the
    chain rule, layer by layer), then the optimizer's step. :class:`mlpnumpy._kernels.step.FastStep`
    is its fast twin, with the same two methods."""

    def __init__(self, model, loss, optimizer, clip=None):
        self.model, self.loss, self.opt, self.clip = model, loss, optimizer, clip
        self.params = model.parameters()

    def forward(self, xb, yb, wb=None):
        out = self.model.forward(xb, training=True)
        if not isinstance(out, np.ndarray):  # the loss stays on the device: no host round trip per batch
            return out, self.loss.forward_array(out, yb, wb)
        return out, self.loss.forward(out, yb, wb)

    def backward_update(self) -> None:
        self.model.backward(self.loss.backward())
        if self.clip is not None:
            self.clip([p for p in self.params if p.trainable])
        self.opt.step(self.params)


def _resolve_optimizer(model, optimizer, lr) -> tuple[Optimizer, float | None]:
    """The optimizer to train with, and the learning rate to give it once every check has passed
    (None: keep its own). Nothing is changed here."""
    if lr is not None:
        check_positive("lr", lr)
    if optimizer is None:
        if model.optimizer is not None:  # continue training with the same state
            return model.optimizer, lr
        return SGD(lr=0.01 if lr is None else lr), None
    if isinstance(optimizer, Optimizer):
        return optimizer, lr
    return get_optimizer(optimizer, lr), None


@exclusive_fit  # one fit per model at a time; predict from another thread waits (mlpnumpy.nn._modellock)
def fit(model, X, y, *, epochs: int = 100, lr: float | None = None, batch_size: int = 32,
        optimizer=None, lr_schedule=None, validation_data=None, validation_split: float = 0.0,
        shuffle: bool = True, callbacks=(), verbose=True, sample_weight=None,
        clip_grad_norm: float | None = None, on_nonfinite: str = "raise", path: str | None = None,
        l1: float = 0.0, l1_bias: float = 0.0) -> History:
    """Train ``model`` on ``(X, y)`` with mini-batch gradient descent.

    Parameters
    ----------
    X : array, shape (n, n_features)
        NumPy, or an array of any Array API library (PyTorch, CuPy, array_api_strict) on any device:
        the model then trains there (a model never moved by ``model.to`` and never trained follows its
        data), with every array of the call on that library and device; only the per-epoch numbers
        come back to the host.
    y : array, shape (n,) integer labels or (n, K) one-hot/probability rows for cross-entropy;
        (n, k) targets for the other losses.
    epochs : int
        Passes over the data.
    lr : float, optional
        Learning rate. Default: 0.01 for plain SGD (the seed's), the optimizer's own default when one
        is named, the current one when training continues.
    batch_size : int
        Rows per step; the last, partial batch is used too.
    optimizer : str or Optimizer, optional
        ``"sgd"`` (default), ``"adam"``, ... or an instance. When omitted on a second ``fit``, the
        model's optimizer and its state carry on.
    lr_schedule : schedule, optional
        A :mod:`mlpnumpy.optim.schedules` object or name; stepped per batch or per epoch as it declares.
    validation_data : (X_val, y_val), optional
    validation_split : float in [0, 1)
        Fraction of rows held out for validation, drawn at random from the model's generator and
        stratified by class for cross-entropy. Ignored when ``validation_data`` is given.
        The two parts are copied out of ``X``: memory for a second ``X``, also when ``X`` is a
        ``np.memmap`` (measured: +259 MB peak RSS for a 256 MB memmap). To train from a memmap
        without that copy, hold out rows by slicing, which gives views: ``fit(X[:n], y[:n],
        validation_data=(X[n:], y[n:]))`` (shuffle the file's rows once beforehand).
    shuffle : bool
        A fresh permutation each epoch (from the model's generator); otherwise rows in order.
    callbacks : sequence of Callback
    verbose : bool or int
        0: silent; 1/True: a progress bar on a terminal, ~10 summary lines otherwise; 2: a line per epoch.
    sample_weight : array, shape (n,), optional
    l1, l1_bias : float
        L1 penalties ``l1 * sum(|W|)`` on the Dense weights and ``l1_bias * sum(|b|)`` on their
        biases (:mod:`mlpnumpy.nn.regularizers`), beside the optimizer's ``weight_decay`` (L2); their
        gradients join the backward pass's before clipping. The logged loss is the data's, without them.
    clip_grad_norm : float, optional
        Clip the global gradient norm to this value before each step.
    on_nonfinite : {"raise", "warn"}
        What a non-finite loss or gradient does: raise :class:`~mlpnumpy.errors.DivergenceError` or
        warn and stop. Either way the model keeps its last finite weights.
    path : {"reference", "fast", "auto"}, optional
        Which code trains: the reference path (the layers', loss's and optimizer's own methods, the
        maths as written) or the fast path (:mod:`mlpnumpy._kernels`: fused kernels, the same
        results within rounding). Default: the model's ``path``, else ``$MLPNUMPY_PATH``, else
        ``"auto"`` (fast for NumPy arrays). On the fast path, plain and momentum SGD fold the weight
        gradient of large layers into their update, so ``layer.dW`` is not kept after a step unless a
        per-batch callback (which may read it) or gradient clipping asks for the gradients.

    Returns
    -------
    History
        The per-epoch training losses, with ``history.history`` holding ``loss``, ``accuracy`` (or
        ``mse``/``r2``), ``val_*`` when validating, ``lr`` and ``seconds``.

    Notes
    -----
    Ctrl-C (SIGINT, main thread) stops training after the current batch and returns with
    ``history.interrupted`` True; a second Ctrl-C raises KeyboardInterrupt at once. Either way the
    unfinished epoch is undone: weights, buffers, optimizer state, schedule, generator state and
    ``epochs_trained`` go back to the epoch's start, so the model holds whole epochs only and another
    ``fit`` (optimizer omitted) continues exactly as an uninterrupted run would have.

    One model trains one ``fit`` at a time: a second ``fit`` of it (from another thread, or from a
    callback) raises :class:`~mlpnumpy.errors.InvalidArgumentError`, and ``predict``/``evaluate`` called
    from another thread wait until the running ``fit`` returns (they would otherwise overwrite layer
    caches the training step is about to read); callbacks in the training thread predict freely.
    """
    # ---- validate everything before touching any state
    epochs = check_positive("epochs", epochs, integer=True)
    batch_size = check_positive("batch_size", batch_size, integer=True)
    validation_split = check_in_range("validation_split", validation_split, 0.0, 1.0)
    on_nonfinite = check_choice("on_nonfinite", on_nonfinite, ["raise", "warn"])
    from ..nn.regularizers import check_l1
    l1, l1_bias = check_l1(l1, l1_bias)
    if clip_grad_norm is not None:
        clip_grad_norm_value = check_positive("clip_grad_norm", clip_grad_norm)
    else:
        clip_grad_norm_value = None
    loss_name, k = model.loss.name, model.n_outputs
    model.place_for_fit(X, [("y", y), ("sample_weight", sample_weight),
                              *((("validation_data[0]", validation_data[0]), ("validation_data[1]", validation_data[1]))
                                if isinstance(validation_data, (tuple, list)) and len(validation_data) == 2 else ())])
    X = check_X(X, model.dtype, model.n_features_in)
    y = check_targets(y, X.shape[0], loss_name, k, model.dtype)
    sw = check_sample_weight(sample_weight, X.shape[0], model.dtype)
    if loss_name == "cross_entropy" and y.ndim == 1 and X.shape[0] > 1:
        classes = np.unique(y) if isinstance(y, np.ndarray) else to_host(namespace(y).unique_values(y))
        if classes.size < 2:
            raise InvalidDataError(f"y holds a single class ({classes[0]}); a classifier needs at least two "
                                   "classes to learn from")
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise InvalidArgumentError("validation_data must be a pair (X_val, y_val)")
        Xv = check_X(validation_data[0], model.dtype, model.n_features_in, arg="validation_data[0]")
        yv = check_targets(validation_data[1], Xv.shape[0], loss_name, k, model.dtype, arg="validation_data[1]")
    else:
        Xv = yv = None
    opt, new_lr = _resolve_optimizer(model, optimizer, lr)
    from .._kernels import resolve_path
    path = resolve_path(path if path is not None else getattr(model, "path", None), X)
    split = Xv is None and validation_split > 0
    stratify = loss_name == "cross_entropy"
    if split and X.shape[0] < 2:
        raise InvalidArgumentError(f"validation_split={validation_split} needs at least 2 rows; X has {X.shape[0]}")
    n_train = X.shape[0] - (held_out_size(y, validation_split, stratify) if split else 0)
    if split and n_train == X.shape[0]:
        raise InvalidArgumentError(f"validation_split={validation_split} holds out no rows of {X.shape[0]}; "
                                   "use a larger fraction or pass validation_data")
    schedule = None
    if isinstance(lr_schedule, str):  # a name: settings derived from this run's length
        from ..optim.schedules import schedule_for_run
        schedule = schedule_for_run(lr_schedule, epochs=epochs, lr=opt.lr if new_lr is None else new_lr,
                                    steps_per_epoch=-(-n_train // batch_size))
    elif lr_schedule is not None:
        from ..optim.schedules import get_schedule
        schedule = get_schedule(lr_schedule)
    elif optimizer is None and model.lr_schedule is not None:
        schedule = model.lr_schedule  # continuing: the schedule goes on with the optimizer
    user_callbacks = list(callbacks)
    CallbackList(user_callbacks)  # type-checks the callbacks now

    # ---- state changes start here
    if new_lr is not None:
        opt.lr = float(new_lr)
    rng = model.rng
    on_device = not model.placement.is_numpy
    if on_device:  # rows gathered on the device by indices drawn on the host (one copy per epoch)
        xp, dev = model.placement.xp, model.placement.device
        gather = lambda A, i: xp.take(A, i, axis=0)  # noqa: E731
    else:
        gather = lambda A, i: A[i]  # noqa: E731
    if split:
        tr, va = train_val_split(to_host(y), validation_split, rng, stratify=stratify)
        if on_device:
            tr, va = xp.asarray(tr, device=dev), xp.asarray(va, device=dev)
        Xv, yv = gather(X, va), gather(y, va)
        X, y = gather(X, tr), gather(y, tr)
        sw = None if sw is None else gather(sw, tr)
    pre = model.preprocessor
    pre_transform = model.input_transform()
    if Xv is not None and pre is not None:
        Xv = pre_transform(Xv)
    model.optimizer = opt
    if schedule is not None:
        model.lr_schedule = schedule
    history = History()
    model.history = history
    if verbose and not any(isinstance(c, ProgressBar) for c in user_callbacks):
        user_callbacks.append(ProgressBar("epochs" if verbose == 2 else "auto"))
    n = X.shape[0]
    steps = -(-n // batch_size)
    # History last, as in Keras: callbacks may add keys to the epoch's logs before it records them.
    driver = TrainingDriver(model, [*user_callbacks, history], opt, schedule=schedule, on_device=on_device,
                            params={"epochs": epochs, "steps": steps, "batch_size": batch_size, "samples": n},
                            history=history)
    loss = model.loss
    classify = loss_name == "cross_entropy"
    clip = None if clip_grad_norm_value is None else (lambda ps: _clip(ps, clip_grad_norm_value))
    if l1 or l1_bias:  # the penalty's gradient joins the data's, then clipping sees the sum
        from ..nn.regularizers import add_l1_grad
        clip_only = clip

        def clip(ps):
            add_l1_grad(ps, l1, l1_bias)
            if clip_only is not None:
                clip_only(ps)
    if path == "fast":
        from .._kernels.step import FastStep
        # a callback run per batch may read the gradients (ProgressBar does not): keep them then
        step = FastStep(model, loss, opt, clip=clip,
                        keep_grads=any(not isinstance(c, ProgressBar) for c in driver.batch_hooks.callbacks))
    else:
        step = _ReferenceStep(model, loss, opt, clip)
    # On the fast path a Standardizer's arithmetic is done by the gather of the batch's rows (one pass,
    # the same numbers). Runs of whole batches in one compiled call when nothing needs to happen between
    # two batches (no callback that needs every batch, no sample weights, no per-batch input transform
    # but that one; a per-batch schedule gives the run's learning rates ahead); the loss check and the
    # counts below are the per-batch loop's, in its order.
    standardize = None
    if path == "fast" and not on_device and pre is not None:
        from .._kernels.step import standardizer_arrays
        standardize = standardizer_arrays(pre, X)
    run_length = 0
    if path == "fast" and not on_device and sw is None and (pre is None or standardize is not None) \
            and driver.batches_may_run:
        from .._kernels.step import RUN_BATCHES as run_length
    full_steps = n // batch_size

    def run_epoch(epoch: int) -> dict | None:
        """One pass over the batches; the epoch's logs, or None when it ended without them."""
        perm = rng.permutation(n) if shuffle else None
        if on_device and perm is not None:
            perm = xp.asarray(perm, device=dev)  # drawn on the host from the model's seed, sent once
        total, correct, seen = 0.0, 0, 0
        reg = _RegressionStats() if not classify and loss_name != "binary_cross_entropy" else None
        order = (perm if perm is not None else np.arange(n)) if run_length else None
        runs = run_length
        retry = opt.state is None  # runs start after the step that creates the optimizer state
        b = 0
        while b < steps:
            if runs and b < full_steps:
                k = min(runs, full_steps - b)
                lrs = driver.learning_rates_ahead(k)
                ran = step.run_batches(X, y, order[b * batch_size:(b + k) * batch_size], batch_size, lrs,
                                       standardize)
                if ran is None:  # not taken: this batch alone, and runs again after it only if it creates the state
                    if lrs is not None:
                        driver.rewind_schedule(0)
                    runs, retry = (runs if retry else 0), False
                else:
                    sums, hits = ran
                    correct += hits
                    for j, v in enumerate(sums):
                        lval = float(v) / batch_size
                        if not math.isfinite(lval):
                            if lrs is not None:
                                driver.rewind_schedule(j)
                            driver.diverged(epoch, b + j, f"the loss is {lval}", on_nonfinite)
                            break
                        total += lval * batch_size
                        seen += batch_size
                    else:
                        b += k
                        if driver.step_done(b - 1, lambda: {"loss": total / seen, "accuracy": correct / seen}):
                            return None  # Ctrl-C: the driver undoes the epoch
                        continue
                    break  # diverged, as the per-batch loop's break
            s, e = b * batch_size, min((b + 1) * batch_size, n)  # the standard has no stop past the end
            if perm is None:
                xb, yb = X[s:e, ...], y[s:e, ...]
                wb = None if sw is None else sw[s:e]
            else:
                idx = perm[s:e]
                xb, yb = gather(X, idx) if standardize is None else step.gather(X, idx, standardize), gather(y, idx)
                wb = None if sw is None else gather(sw, idx)
            if pre is not None and (standardize is None or perm is None):
                xb = pre_transform(xb)
            out, lval = step.forward(xb, yb, wb)
            # on a device the loss is a 0-d array there: it is checked once, at the epoch's end
            if not on_device and not math.isfinite(lval):
                # A non-finite gradient shows up here one step later, through the weights it
                # spoiled, or at the end-of-epoch check; either way the weights are restored.
                driver.diverged(epoch, b, f"the loss is {lval}", on_nonfinite)
                break
            step.backward_update()
            m = xb.shape[0]
            total += lval * m
            seen += m
            if on_device and reg is None:  # counted on the device
                if classify:
                    labels = yb if yb.ndim == 1 else xp.argmax(yb, axis=1)
                    correct = correct + xp.sum(xp.astype(xp.argmax(out, axis=1) == labels, xp.int64))
                else:
                    hits = xp.sum(xp.astype((out > 0) == (yb > 0.5), xp.int64))
                    correct = correct + xp.astype(hits, out.dtype) / out.shape[1]
            elif classify:
                labels = yb if yb.ndim == 1 else np.argmax(yb, axis=1)
                pred = getattr(loss, "predicted", None)  # the loss's argmax of out, when it found it
                if pred is None:
                    pred = np.argmax(out, axis=1)
                correct += int(np.count_nonzero(pred == labels))
            elif reg is None:  # multi-label: element-wise accuracy
                correct += int(np.count_nonzero((out > 0) == (yb > 0.5))) / out.shape[1]
            else:
                reg.add(out, yb)
            # on a device, a callback asking per batch costs a round trip
            if driver.step_done(b, lambda: {"loss": float(total) / seen,
                                            **({"accuracy": float(correct) / seen} if reg is None else {})}):
                return None  # Ctrl-C: the driver undoes the epoch
            b += 1
        if seen == 0:
            return None
        if on_device:  # the epoch's numbers come back to the host here, once
            total, correct = float(total), float(correct)
            if not math.isfinite(total) and not model.stop_training:
                driver.diverged(epoch, steps - 1, f"the epoch's mean loss is {total / seen}", on_nonfinite)
                return None
        if not model.stop_training and not all(all_finite(a) for a in model.named_arrays().values()):
            # a non-finite gradient got past the per-step checks into the weights, or the batch-norm
            # statistics overflowed: every array prediction uses is checked, buffers included
            driver.diverged(epoch, steps - 1, "a weight or batch-norm statistic is not finite", on_nonfinite)
            return None
        logs = {"loss": total / seen}
        if reg is None:
            logs["accuracy"] = correct / seen
        else:
            logs.update(reg.result())
        if Xv is not None:
            for key, v in evaluate_arrays(model, Xv, yv).items():
                logs["val_" + key] = v
        model.epochs_trained += 1
        return logs

    driver.run(epochs, run_epoch)
    return history
