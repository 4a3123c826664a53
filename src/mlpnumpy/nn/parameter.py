"""A trainable array and its gradient: what layers own and optimizers update."""
from __future__ import annotations

import numpy as np

from ..errors import DataTypeError, InvalidDataError


class Parameter:
    """A trainable array ``data`` and the gradient ``grad`` of the loss with respect to it.

    Layers fill ``grad`` in their ``backward``; optimizers update ``data`` **in place**, so views and
    attributes that alias it (``Dense.W``) stay valid.

    Parameters
    ----------
    data : ndarray
        Initial value; its shape and dtype are fixed for the life of the parameter.
    name : str
        Short name used in summaries, model files and error messages (``"W"``, ``"b"``, ``"gamma"``).
    """

    __slots__ = ("data", "grad", "name", "trainable")

    def __init__(self, data: np.ndarray, name: str = "param", trainable: bool = True):
        from .._array_api import is_array, namespace
        # an array of another Array API library (a torch tensor, a CuPy array) stays where it is
        self.data = data if is_array(data) and not isinstance(data, np.ndarray) else np.ascontiguousarray(data)
        #: ``dL/d data``, same shape and dtype as ``data``; the layer's backward writes it.
        self.grad = namespace(self.data).zeros_like(self.data)
        self.name = name
        #: False: every optimizer leaves ``data`` as it is (torch's ``requires_grad=False``); the
        #: gradient is still computed, since the layers below need the chain rule through it.
        self.trainable = bool(trainable)

    def __getstate__(self):
        return {"data": self.data, "grad": self.grad, "name": self.name, "trainable": self.trainable}

    def __setstate__(self, state):
        # joblib may hand back read-only memory maps; training needs to write in place
        data, grad = state["data"], state["grad"]
        writeable = lambda a: not isinstance(a, np.ndarray) or a.flags.writeable  # noqa: E731
        self.data = data if writeable(data) else data.copy()
        self.grad = grad if writeable(grad) else grad.copy()
        self.name = state["name"]
        self.trainable = state.get("trainable", True)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def size(self) -> int:
        return self.data.size

    def assign(self, value, arg: str | None = None) -> None:
        """Copy ``value`` into ``data`` after checking its shape; the dtype is kept.

        Raises
        ------
        InvalidDataError
            If the shape differs or the values are not finite.
        """
        arg = arg or self.name
        from .._array_api import device_of, is_array, is_numpy, namespace, to_host
        if not is_numpy(self.data):  # on a device: check on the host, then copy in place there
            host = np.array(to_host(self.data))
            Parameter(host, self.name).assign(to_host(value) if is_array(value) else value, arg)
            self.data[...] = namespace(self.data).asarray(host, device=device_of(self.data))
            return
        try:
            value = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise DataTypeError(f"{arg}: cannot convert {type(value).__name__} to an array") from exc
        if value.dtype.kind not in "biuf":
            raise DataTypeError(f"{arg} has dtype {value.dtype}; expected a real numeric array")
        if value.shape != self.data.shape:
            raise InvalidDataError(f"{arg} has shape {value.shape}; expected {self.data.shape}")
        if not np.all(np.isfinite(value)):
            raise InvalidDataError(f"{arg} contains NaN or infinity; expected finite values")
        np.copyto(self.data, value, casting="unsafe")

    def __repr__(self) -> str:
        return f"Parameter({self.name}, shape={self.data.shape}, dtype={self.data.dtype})"
