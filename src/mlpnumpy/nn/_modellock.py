"""One training at a time per model, and no prediction in the middle of a training step.

A model's layers keep what their backward needs from the last forward (caches, dropout masks), so a
``predict`` run by another thread between a training step's forward and backward would hand the
step another input's cache. :func:`exclusive_fit` refuses a second ``fit`` of a model that is being
trained and holds the model's lock for the whole of ``fit``; :func:`reads_model` makes ``predict`` and
``evaluate`` take the same lock, so another thread's prediction waits for the training to finish
(the training thread itself, from a callback, goes straight in: the lock is re-entrant).

The locks live in weak tables beside the models, not in them: a model stays picklable.
"""
from __future__ import annotations

import functools
import threading
import weakref

from ..errors import InvalidArgumentError

__all__ = ["model_lock", "exclusive_fit", "reads_model"]

_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FITTING: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> name of the thread training it
_GUARD = threading.Lock()


def model_lock(model) -> threading.RLock:
    """The re-entrant lock of ``model`` (made on first use)."""
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def exclusive_fit(fit):
    """Decorate ``fit(model, ...)``: refuse a second training of the same model, hold its lock."""
    @functools.wraps(fit)
    def guarded(model, *args, **kwargs):
        me = threading.current_thread().name
        with _GUARD:
            owner = _FITTING.get(model)
            if owner is not None:
                where = "this same thread (a callback?)" if owner == me else f"thread {owner!r}"
                raise InvalidArgumentError(
                    f"fit is already running on this model in {where}; one model trains one fit at a time: "
                    "wait for it to return, or train a copy (mlpnumpy.io.load_model of a saved file)")
            _FITTING[model] = me
        try:
            with model_lock(model):
                return fit(model, *args, **kwargs)
        finally:
            with _GUARD:
                _FITTING.pop(model, None)
    return guarded


def reads_model(method):
    """Decorate a method that runs the model forward (predict, evaluate): it waits for a ``fit``
    running in another thread, instead of writing layer caches that fit's step is about to read."""
    @functools.wraps(method)
    def locked(self, *args, **kwargs):
        with model_lock(self):
            return method(self, *args, **kwargs)
    return locked
