"""The problem the activation and optimizer studies share: an MLP on the embedded digits."""
from __future__ import annotations

import numpy as np

from .. import datasets
from ..datasets.preprocessing import Standardizer


def digits_problem(seed: int = 0):
    """``(X_train, y_train, X_val, y_val, X_test, y_test)`` of the digits, standardised on the
    training rows only; validation is a stratified 20% of the training set drawn from ``seed``."""
    from ..training.fitting import train_val_split
    d = datasets.load("digits")
    tr, va = train_val_split(d.y_train, 0.2, np.random.default_rng(seed), stratify=True)
    scaler = Standardizer().fit(d.X_train[tr])
    return (scaler.transform(d.X_train[tr]), d.y_train[tr], scaler.transform(d.X_train[va]), d.y_train[va],
            scaler.transform(d.X_test), d.y_test)
