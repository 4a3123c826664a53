"""Embeddings for tabular data: integer-coded categorical columns become learned vectors, concatenated
with the numeric columns, as the first layer of a model (Guo & Berkhahn, "Entity Embeddings of
Categorical Variables", 2016).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .._array_api import device_of, is_numpy, namespace, to_host
from ..errors import InvalidArgumentError, InvalidDataError, NotFittedError, check_dtype, check_positive
from .layers import Layer, register_layer
from .parameter import Parameter

__all__ = ["Embedding", "default_embedding_dim"]


def default_embedding_dim(n_categories: int) -> int:
    """fast.ai's rule of thumb, ``min(50, round(1.6 * n ** 0.56))``, at least 1."""
    return max(1, min(50, int(round(1.6 * n_categories ** 0.56))))


class Embedding(Layer):
    r"""The numeric columns of ``x`` as they are, then one learned vector per categorical column.

    Row ``x`` (``in_features`` wide) holds integer codes ``0..K_j-1`` in the categorical columns
    ``c_j``. The output row is ``[x[numeric columns], E_0[x[c_0]], E_1[x[c_1]], ...]``, where table
    ``E_j`` (``K_j`` x ``d_j``) is a parameter: each code looks up its row, as ``torch.nn.Embedding``.

    Backward: :math:`dL/dE_j[k] = \sum_{i: x_{i,c_j} = k} dL/dy_{i, \text{slice}_j}` (rows that share a
    code add up); :math:`dL/dx` is the upstream gradient for the numeric columns and 0 for the codes,
    which are not differentiable.

    Parameters
    ----------
    in_features : int
        Width of ``x``.
    categorical : mapping {column: K} or sequence of (column, K)
        Each categorical column (0-based, in ``x``) and its number of categories ``K >= 1``.
    dims : int, sequence of int or None
        Width of each column's vectors; None: :func:`default_embedding_dim` of its ``K``.
    rng : numpy.random.Generator, optional
        Draws the tables (``N(0, 1)``, torch's default) now; otherwise a model's ``build`` does.
    dtype : float32 (default) or float64

    Raises
    ------
    InvalidDataError
        In ``forward``, for a code that is not an integer in ``0..K-1`` (a category unseen in training).
    """

    def __init__(self, in_features: int, categorical=None, dims=None, *, rng: np.random.Generator | None = None,
                 dtype=np.float32, columns=None, cardinalities=None):
        check_positive("in_features", in_features, integer=True)
        self.in_features = int(in_features)
        if columns is not None or cardinalities is not None:  # the form get_config writes
            categorical = list(zip(columns or [], cardinalities or []))
        pairs = list(categorical.items()) if isinstance(categorical, Mapping) else list(categorical or [])
        if not pairs:
            raise InvalidArgumentError("categorical is empty; expected {column: n_categories, ...}")
        cols, cards = [], []
        for item in pairs:
            try:
                c, k = item
            except (TypeError, ValueError):
                raise InvalidArgumentError(f"categorical holds {item!r}; expected (column, n_categories) "
                                           "pairs") from None
            c = check_positive("categorical column", c, integer=True, allow_zero=True)
            k = check_positive(f"categorical[{c}] (its number of categories)", k, integer=True)
            if c >= self.in_features:
                raise InvalidArgumentError(f"categorical column {c} is out of range; x has {self.in_features} "
                                           f"columns (0..{self.in_features - 1})")
            if c in cols:
                raise InvalidArgumentError(f"categorical column {c} is given twice")
            cols.append(int(c))
            cards.append(int(k))
        order = np.argsort(cols)
        self.columns = [cols[i] for i in order]
        self.cardinalities = [cards[i] for i in order]
        if dims is None:
            self.dims = [default_embedding_dim(k) for k in self.cardinalities]
        elif isinstance(dims, (int, np.integer)) and not isinstance(dims, bool):
            self.dims = [int(dims)] * len(self.columns)
        else:
            dims = list(dims)
            if len(dims) != len(self.columns):
                raise InvalidArgumentError(f"dims has {len(dims)} entries; expected 1 or one per categorical "
                                           f"column ({len(self.columns)})")
            self.dims = [int(d) for d in (dims if columns is not None else [dims[i] for i in order])]
        for d in self.dims:
            check_positive("dims", d, integer=True)
        self.numeric = [c for c in range(self.in_features) if c not in set(self.columns)]
        self.dtype = check_dtype(dtype)
        self.tables = [Parameter(np.zeros((k, d), self.dtype), f"E{j}")
                       for j, (k, d) in enumerate(zip(self.cardinalities, self.dims))]
        self._built = False
        self._cache = None
        if rng is not None:
            self.build(rng, self.dtype)

    def build(self, rng, dtype):
        if self._built:
            self.cast(dtype)
            return
        self.dtype = check_dtype(dtype)
        self.tables = [Parameter(rng.standard_normal((k, d)).astype(self.dtype), f"E{j}", self.trainable)
                       for j, (k, d) in enumerate(zip(self.cardinalities, self.dims))]
        self._built = True

    def parameters(self):
        return list(self.tables)

    def output_features(self, in_features):
        return len(self.numeric) + sum(self.dims)

    def codes(self, x: np.ndarray) -> np.ndarray:
        """The categorical columns of ``x`` as int64 codes ``(n, n_categorical)``, each checked."""
        raw = x[:, self.columns]
        for j, (c, k) in enumerate(zip(self.columns, self.cardinalities)):
            col = raw[:, j]
            with np.errstate(invalid="ignore"):
                ok = np.isfinite(col) & (col == np.rint(col)) & (col >= 0) & (col < k)
            if not ok.all():
                i = int(np.flatnonzero(~ok)[0])
                raise InvalidDataError(f"categorical column {c} holds {float(col[i]):g} (row {i}); expected integer "
                                       f"codes 0..{k - 1}, the categories the embedding was made for")
        return raw.astype(np.int64)

    def _device_constants(self, xp, dev, dtype):
        """Column indices, cardinalities and the numeric columns' placement matrix on ``dev`` (copied
        there once per library, device and dtype, not per batch)."""
        key = (xp.__name__, str(dev), str(dtype))
        cached = self.__dict__.get("_on_device")
        if cached is None or cached[0] != key:
            place = np.zeros((len(self.numeric), self.in_features))
            place[np.arange(len(self.numeric)), self.numeric] = 1
            as_dev = lambda a, dt: xp.asarray(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
            cached = self._on_device = (key, as_dev(self.numeric, xp.int64), as_dev(self.columns, xp.int64),
                                        as_dev(self.cardinalities, dtype), as_dev(place, dtype))
        return cached[1:]

    def _forward_xp(self, x):
        """:meth:`forward` for arrays of other libraries, on their device (gathers by ``take``)."""
        xp, dev = namespace(x), device_of(x)
        numeric, columns, ks, _ = self._device_constants(xp, dev, x.dtype)
        raw = xp.take(x, columns, axis=1)
        ok = xp.isfinite(raw) & (raw == xp.round(raw)) & (raw >= 0) & (raw < ks)
        if not bool(xp.all(ok)):  # one number back per batch: the codes are the user's data
            self.codes(to_host(x))  # raises naming the first bad code
        codes = xp.astype(raw, xp.int64)
        self._cache = codes
        parts = [xp.take(x, numeric, axis=1)] + [xp.take(t.data, codes[:, j], axis=0)
                                                  for j, t in enumerate(self.tables)]
        return xp.concat(parts, axis=1)

    def _backward_xp(self, grad_out):
        xp, dev = namespace(grad_out), device_of(grad_out)
        codes, start = self._cache, len(self.numeric)
        for j, (t, k, d) in enumerate(zip(self.tables, self.cardinalities, self.dims)):
            # rows sharing a code add up: one-hot(codes).T @ grad, the standard having no scatter-add
            hot = xp.astype(codes[:, j][:, None] == xp.arange(k, dtype=xp.int64, device=dev)[None, :],
                            grad_out.dtype)
            t.grad = hot.T @ grad_out[:, start:start + d]
            start += d
        if not self.needs_input_grad:
            return None
        return grad_out[:, :len(self.numeric)] @ self._device_constants(xp, dev, grad_out.dtype)[3]

    def forward(self, x, training=False):
        """``x`` (n, in_features) to ``[numeric, E_0[codes_0], ...]`` (n, output width)."""
        if not is_numpy(x):
            return self._forward_xp(x)
        codes = self.codes(x)
        parts = [x[:, self.numeric]] + [t.data[codes[:, j]] for j, t in enumerate(self.tables)]
        self._cache = codes
        return np.concatenate(parts, axis=1)

    def backward(self, grad_out):
        if self._cache is None:
            raise NotFittedError("Embedding.backward called before forward; call forward(x) first")
        if not is_numpy(grad_out):
            return self._backward_xp(grad_out)
        codes = self._cache
        start = len(self.numeric)
        for j, (t, d) in enumerate(zip(self.tables, self.dims)):
            g = np.zeros_like(t.data)
            np.add.at(g, codes[:, j], grad_out[:, start:start + d])  # rows sharing a code add up
            t.grad = g
            start += d
        if not self.needs_input_grad:
            return None
        dx = np.zeros((grad_out.shape[0], self.in_features), grad_out.dtype)
        dx[:, self.numeric] = grad_out[:, :len(self.numeric)]
        return dx

    @classmethod
    def from_config(cls, cfg, dtype=np.float32):
        return cls(**cfg, dtype=dtype)

    @classmethod
    def config_shapes(cls, cfg, size, inner):
        size(cfg.get("in_features"), "in_features")
        cards, dims = cfg.get("cardinalities"), cfg.get("dims")
        if not isinstance(cards, list) or not isinstance(dims, list) or len(cards) != len(dims) or not cards:
            raise InvalidDataError("(Embedding) needs equal lists of cardinalities and dims")
        return {f"E{j}": (size(k, f"cardinalities[{j}]"), size(d, f"dims[{j}]"))
                for j, (k, d) in enumerate(zip(cards, dims))}

    def get_config(self):
        return {"type": "Embedding", "in_features": self.in_features, "columns": list(self.columns),
                "cardinalities": list(self.cardinalities), "dims": list(self.dims)}

    def __repr__(self):
        cats = ", ".join(f"{c}: {k}->{d}" for c, k, d in zip(self.columns, self.cardinalities, self.dims))
        return f"Embedding({self.in_features}, {{{cats}}})"


register_layer(Embedding)
