"""Models: ``Sequential``, a stack of layers with a loss, and ``MLP``, the Sequential of Dense
layers that the seed's ``MLPNumpy`` was.

Data flows ``forward`` (layer by layer) -> loss (from the raw outputs) -> ``backward`` (the chain rule,
layer by layer in reverse) -> an optimizer step; :mod:`mlpnumpy.training` runs that loop.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._modellock import reads_model
from .._validation import check_targets, check_X
from ..errors import InvalidArgumentError, check_dtype, check_in_range
from .layers import BatchNorm1d, Dense, Dropout, Layer, layer_config, layer_from_config
from .losses import Loss, get_loss, output_transform
from .._array_api import Placement, copy_array, is_array, namespace
from .parameter import Parameter

__all__ = ["Sequential", "MLP", "dense_stack", "dense_layers_in"]


class Sequential:
    """A stack of layers trained against one loss.

    Parameters
    ----------
    layers : sequence of Layer
    loss : str or Loss
        ``"cross_entropy"`` (default: softmax classification), ``"binary_cross_entropy"``
        (multi-label), ``"mse"``, ``"mae"``, ``"huber"`` (regression).
    seed : int or None
        Seeds the model's one ``np.random.Generator``; it draws the weights, the shuffles, the
        validation split and the dropout masks. Same seed, same everything.
    dtype : float32 (default) or float64
    path : {"reference", "fast", "auto"} or None
        Which code trains and predicts (:func:`~mlpnumpy.training.fit`'s ``path``); None (default):
        ``$MLPNUMPY_PATH``, else ``"auto"``, fast for NumPy arrays. ``forward`` and ``backward``, the
        seed's names, always run the reference path.
    """

    def __init__(self, layers: Sequence[Layer], *, loss="cross_entropy", seed: int | None = None,
                 dtype=np.float32, path: str | None = None):
        from .._kernels import resolve_path
        if path is not None:
            resolve_path(path)  # validates the name now
        self.path = path
        self.dtype = check_dtype(dtype)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.layers: list[Layer] = list(layers)
        if not self.layers:
            raise InvalidArgumentError("layers is empty; a model needs at least one layer")
        for layer in self.layers:
            if not isinstance(layer, Layer):
                raise InvalidArgumentError(f"layers holds {type(layer).__name__}; expected mlpnumpy Layer objects")
            layer.build(self.rng, self.dtype)  # draws what is not yet drawn, keeps (casts) the rest
        self.loss: Loss = get_loss(loss)
        self.preprocessor = None      # e.g. a Standardizer applied by fit/predict/evaluate
        self.class_names: list[str] | None = None
        self.optimizer = None         # kept between fits so training can continue
        self.lr_schedule = None
        self.history = None
        self.epochs_trained = 0
        self.stop_training = False
        self._placement = Placement()  # NumPy on the CPU until model.to(...) moves it
        self._placed_by_user = False

    # ------------------------------------------------------------------ where the arrays live
    @property
    def placement(self) -> Placement:
        """Where the model's arrays live: ``placement.xp`` (None for NumPy) and ``placement.device``."""
        return self.__dict__.get("_placement") or Placement()

    @property
    def device(self):
        """The device of the model's parameters (``"cpu"`` for NumPy)."""
        return "cpu" if self.placement.is_numpy else self.placement.device

    def to(self, target, device=None) -> Sequential:
        """Move the parameters, buffers and optimizer state to another array library and/or device.

        Parameters
        ----------
        target : array, namespace module or library name
            An array (the model joins its library and device: ``model.to(X)``), a namespace
            (``torch``, ``cupy``, ``array_api_strict``, ``numpy``) or its name (``"torch"``).
        device : optional
            The device within that library (``"cuda"``, ``"cuda:1"``,
            ``array_api_strict.Device("device1")``); default: the array's, else the library's default.

        Returns the model. Training, prediction, gradcheck and the internals tracker then take arrays of
        that library on that device; model files, ONNX export and ``to_torch`` copy to the host.

        Raises
        ------
        DataTypeError
            When the device cannot hold the model's dtype (e.g. float64 on a device without it).
        """
        from .._array_api import check_float_dtype
        where = Placement.of(target, device)
        if not where.is_numpy:
            check_float_dtype(where.xp, where.device, self.dtype, arg="the model's dtype")
        move = lambda a: where.move(a)  # noqa: E731
        for layer in self.layers:
            layer.apply_arrays(move)
        if self.optimizer is not None:
            self.optimizer.apply_arrays(move)
        self._placement = where
        self._placed_by_user = True
        self._pre_arrays = None
        return self

    def check_placement(self, X, arg: str = "X") -> None:
        """Raise naming both places when ``X`` lives elsewhere than the model."""
        self.placement.check(X, arg)

    def place_for_fit(self, X, others=()) -> None:
        """Where ``fit`` runs: a model never moved by :meth:`to` and never trained follows its data to
        that library and device (scikit-learn's convention); otherwise every array given must live where
        the model does, or one error names both places.

        Parameters
        ----------
        X : array of shape (n_samples, n_features)
        others : iterable of (name, array or None)
            The other arrays of the fit (``y``, ``sample_weight``, validation data), checked by name.
        """
        if is_array(X) and not self.placement.same_as(X) and not self.__dict__.get("_placed_by_user") \
                and self.epochs_trained == 0 and self.optimizer is None:
            self.to(X)
            self._placed_by_user = False
        self.check_placement(X, "X")
        for arg, a in others:
            if a is not None:
                self.check_placement(a, arg)

    def input_transform(self):
        """The preprocessor as a function of arrays where the model lives (``(X - mean) / scale``, its
        arrays moved once), or None without a preprocessor."""
        pre = self.preprocessor
        if pre is None:
            return None
        if self.placement.is_numpy:
            return pre.transform
        cached = self.__dict__.get("_pre_arrays")
        if cached is None:
            mean, scale = getattr(pre, "mean_", None), getattr(pre, "scale_", None)
            if mean is None or scale is None:
                raise InvalidArgumentError(f"the model's preprocessor {type(pre).__name__} runs on NumPy only; "
                                           "transform the data yourself, or use the model on NumPy arrays")
            cached = self._pre_arrays = (self.placement.move(mean, self.dtype), self.placement.move(scale, self.dtype))
        mean, scale = cached
        return lambda x: (x - mean) / scale

    # ------------------------------------------------------------------ structure
    @property
    def n_features_in(self) -> int:
        # the first layer that knows its input width (Dropout does not; Dense, Embedding, norms do)
        for layer in self.layers:
            n = getattr(layer, "in_features", None) or getattr(layer, "num_features", None) \
                or getattr(layer, "width", None)
            if n is not None:
                return n
        return None

    @property
    def n_outputs(self) -> int:
        n = self.n_features_in
        for layer in self.layers:
            n = layer.output_features(n)
        return n

    def parameters(self) -> list[Parameter]:
        """Every trainable parameter, layer by layer (the order optimizers and model files use)."""
        return [p for layer in self.layers for p in layer.parameters()]

    def count_params(self) -> int:
        return sum(p.size for p in self.parameters())

    def summary(self, print_fn=print) -> str:
        """A table of layers, output shapes and parameter counts; printed and returned."""
        rows = [("Layer", "Output shape", "Params")]
        n = self.n_features_in
        for i, layer in enumerate(self.layers):
            n = layer.output_features(n)
            rows.append((f"{i}: {layer!r}", f"(None, {n})", f"{sum(p.size for p in layer.parameters()):,}"))
        w = [max(len(r[c]) for r in rows) for c in range(3)]
        lines = [f"{r[0]:<{w[0]}}  {r[1]:<{w[1]}}  {r[2]:>{w[2]}}" for r in rows]
        rule = "-" * len(lines[0])
        text = "\n".join([lines[0], rule, *lines[1:], rule,
                          f"Total params: {self.count_params():,}  (dtype {self.dtype}, loss {self.loss.name})"])
        if print_fn is not None:
            print_fn(text)
        return text

    # ------------------------------------------------------------------ passes
    def forward(self, X: np.ndarray, training: bool = False, return_hidden: bool = False):
        """Run the layers in order and return the raw outputs (logits), shape ``(n, n_outputs)``.

        With ``return_hidden=True`` also returns, for each layer, a dict with its input ``"x"``,
        its pre-activation ``"z"`` (Dense layers) and its output ``"a"``.
        """
        hidden = [] if return_hidden else None
        out = X
        for layer in self.layers:
            x = out
            out = layer.forward(out, training=training)
            if return_hidden:
                rec = {"layer": type(layer).__name__, "x": x, "a": out}
                if isinstance(layer, Dense):
                    rec["z"] = layer.last_pre_activation()
                hidden.append(rec)
        return (out, hidden) if return_hidden else out

    __call__ = forward

    def backward(self, grad_out: np.ndarray, return_input_grad: bool = False):
        """Propagate ``dL/d outputs`` back through the layers, filling every parameter's ``grad``.

        Returns ``dL/dX`` when ``return_input_grad`` (otherwise the first layer skips that product).
        """
        first = self.layers[0]
        first.needs_input_grad = return_input_grad
        grad = grad_out
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        first.needs_input_grad = True
        return grad if return_input_grad else None

    def prepare_input(self, X) -> np.ndarray:
        """``X`` as the first layer takes it: checked (placement, dtype, width) and preprocessed."""
        self.check_placement(X)
        X = check_X(X, self.dtype, self.n_features_in)
        if self.preprocessor is not None:
            X = self.input_transform()(X)
        return X

    @reads_model
    def decision_function(self, X, batch_size: int = 4096) -> np.ndarray:
        """Raw outputs (logits) for ``X`` in evaluation mode, in batches of ``batch_size`` rows."""
        X = self.prepare_input(X)
        from .._kernels import resolve_path
        if resolve_path(getattr(self, "path", None), X) == "fast":
            from .._kernels.step import forward as fast_forward
            fwd = lambda x: fast_forward(self, x, training=False)  # noqa: E731
        else:
            fwd = lambda x: self.forward(x, training=False)  # noqa: E731
        if X.shape[0] <= batch_size:
            return fwd(X)
        n = X.shape[0]  # slices stop inside the array and name every axis, as the Array API standard asks
        return namespace(X).concat([fwd(X[i:min(i + batch_size, n), ...]) for i in range(0, n, batch_size)])

    @reads_model  # another thread's prediction waits for a running fit (see mlpnumpy.nn._modellock)
    def predict_proba(self, X, batch_size: int = 4096) -> np.ndarray:
        """Class probabilities ``(n, K)`` (softmax), or per-output probabilities (sigmoid) for
        binary cross-entropy; regression models return their outputs."""
        return output_transform(self.loss.output_transform, self.decision_function(X, batch_size))

    @reads_model
    def predict(self, X, batch_size: int = 4096) -> np.ndarray:
        """Class indices ``(n,)`` for cross-entropy, 0/1 rows for binary cross-entropy, values for
        regression."""
        out = self.decision_function(X, batch_size)
        xp = namespace(out)
        if self.loss.output_transform == "softmax":
            return xp.argmax(out, axis=1)
        if self.loss.output_transform == "sigmoid":
            return xp.astype(out > 0, xp.int64)  # sigmoid(z) > 0.5 exactly when z > 0
        return out

    @reads_model
    def evaluate(self, X, y, *, return_dict: bool = False, batch_size: int = 4096):
        """Accuracy (classification) or R² (regression) on ``(X, y)``; with ``return_dict`` a dict of
        ``loss`` and the metrics."""
        from . import metrics
        out = self.decision_function(X, batch_size)
        self.check_placement(y, "y")
        y = check_targets(y, out.shape[0], self.loss.name, out.shape[1], self.dtype)
        results = {"loss": self.loss.forward(out, y)}
        results.update(metrics.compute(self.loss.name, out, y))
        if return_dict:
            return results
        return results.get("accuracy", results.get("r2"))

    def score(self, X, y) -> float:
        return self.evaluate(X, y)

    # ------------------------------------------------------------------ training
    def fit(self, X, y, **kwargs):
        """Train with mini-batch gradient descent; see :func:`mlpnumpy.training.fit` for arguments.

        Returns the :class:`~mlpnumpy.training.callbacks.History` (a list of per-epoch training losses).
        """
        from ..training.fitting import fit
        return fit(self, X, y, **kwargs)

    # ------------------------------------------------------------------ state
    def named_arrays(self, prefix: str = "layer") -> dict[str, np.ndarray]:
        """Every parameter and buffer by name, ``f"{prefix}{i}.{name}"`` (e.g. ``layer0.W``), not copied."""
        return {f"{prefix}{i}.{name}": a for i, layer in enumerate(self.layers)
                for name, a in layer.named_arrays().items()}

    # ------------------------------------------------------------------ freezing
    def _pick_layers(self, layers) -> list[Layer]:
        picked = []
        for item in layers:
            if isinstance(item, Layer):
                if not any(item is l for l in self.layers):
                    raise InvalidArgumentError(f"{item!r} is not one of this model's layers")
                picked.append(item)
            elif isinstance(item, (int, np.integer)) and not isinstance(item, bool) \
                    and -len(self.layers) <= item < len(self.layers):
                picked.append(self.layers[item])
            else:
                raise InvalidArgumentError(f"layers holds {item!r}; expected layer indices in "
                                           f"0..{len(self.layers) - 1} or the model's Layer objects")
        return picked

    def freeze(self, *layers) -> Sequential:
        """Freeze layers (indices or Layer objects; none given: every layer): every optimizer then
        leaves their parameters as they are, as torch does for ``requires_grad=False``. Gradients still
        flow through them to the layers below. Saved with the model. Returns the model."""
        for layer in self._pick_layers(layers) if layers else self.layers:
            layer.trainable = False
        return self

    def unfreeze(self, *layers) -> Sequential:
        """Undo :meth:`freeze` for the layers given (none given: every layer). Returns the model."""
        for layer in self._pick_layers(layers) if layers else self.layers:
            layer.trainable = True
        return self

    def get_weights(self) -> list[np.ndarray]:
        """Copies of every parameter and buffer, in a fixed order."""
        out = [copy_array(p.data) for p in self.parameters()]
        out += [copy_array(b) for layer in self.layers for b in layer.buffers().values()]
        return out

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        """Copy arrays from :meth:`get_weights` back in (shapes are checked)."""
        targets = [p.data for p in self.parameters()] + [b for l in self.layers for b in l.buffers().values()]
        if len(weights) != len(targets):
            raise InvalidArgumentError(f"weights has {len(weights)} arrays; the model has {len(targets)}")
        if not self.placement.is_numpy:  # on a device: each array copied in place there
            weights = [self.placement.move(w, self.dtype) for w in weights]
            for i, (t, w) in enumerate(zip(targets, weights)):
                if tuple(w.shape) != tuple(t.shape):
                    raise InvalidArgumentError(f"weights[{i}] has shape {tuple(w.shape)}; expected {tuple(t.shape)}")
            for t, w in zip(targets, weights):
                t[...] = w
            return
        for i, (t, w) in enumerate(zip(targets, weights)):
            w = np.asarray(w)
            if w.shape != t.shape:
                raise InvalidArgumentError(f"weights[{i}] has shape {w.shape}; expected {t.shape}")
        for t, w in zip(targets, weights):
            np.copyto(t, w, casting="unsafe")

    def get_config(self) -> dict:
        return {"class": type(self).__name__, "layers": [layer_config(l) for l in self.layers],
                "loss": self.loss.get_config(), "dtype": str(self.dtype), "seed": self.seed}

    @classmethod
    def from_config(cls, config: dict) -> Sequential:
        dtype = np.dtype(config.get("dtype", "float32"))
        layers = [layer_from_config(c, dtype) for c in config["layers"]]
        model = Sequential.__new__(MLP if config.get("class") == "MLP" else Sequential)
        Sequential.__init__(model, layers, loss=config.get("loss", "cross_entropy"),
                            seed=config.get("seed"), dtype=dtype)
        if config.get("class") == "MLP":
            dense = dense_layers_in(layers)
            model.layer_dims = [model.n_features_in] + [l.out_features for l in dense]
        return model

    def save(self, path, *, include_optimizer: bool = False) -> None:
        """Write the model to one ``.npz`` file (architecture, weights, preprocessing, class names);
        with ``include_optimizer`` also what resuming training needs (:func:`mlpnumpy.io.save_checkpoint`:
        optimizer, schedule, generator state, epoch), as Keras's ``model.save``."""
        from ..io.writer import save_checkpoint, save_model
        if include_optimizer:
            save_checkpoint(self, path)
        else:
            save_model(self, path)

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(l) for l in self.layers)
        return f"{type(self).__name__}([\n  {inner}\n], loss={self.loss.name!r}, dtype={self.dtype})"


class MLP(Sequential):
    """A multi-layer perceptron: Dense layers of sizes ``layer_dims``, as the seed's ``MLPNumpy``.

    Parameters
    ----------
    layer_dims : sequence of int
        ``[n_features, hidden_1, ..., n_outputs]``, at least two sizes, all positive.
    activations : str, sequence or None
        ``None``: ReLU in every hidden layer and the identity at the output (the logits). A string:
        that activation in every hidden layer. A sequence of ``len(layer_dims) - 1`` names, one per
        layer including the output (the seed's form, e.g. ``['relu', 'relu', 'none']``), or of
        ``len(layer_dims) - 2`` names for the hidden layers only.
    init : str, callable, or a sequence of them
        ``"auto"`` (He for the ReLU family, Xavier otherwise), any initialiser name, a callable, or one
        per layer.
    seed : int or None
    dtype : float32 (default) or float64
    loss : str or Loss
        ``"cross_entropy"`` by default.
    batch_norm : bool
        Insert :class:`~mlpnumpy.nn.layers.BatchNorm1d` after each hidden Dense layer (before its
        activation, as in Ioffe & Szegedy).
    dropout : float in [0, 1)
        Insert :class:`~mlpnumpy.nn.layers.Dropout` after each hidden layer's activation
        (:class:`~mlpnumpy.nn.layers.AlphaDropout` after a SELU, which plain dropout would de-normalise).
    path : {"reference", "fast", "auto"} or None
        See :class:`Sequential`.
    residual : bool
        Make each hidden layer after the first whose width equals its input's a
        :class:`~mlpnumpy.nn.blocks.Residual` block, ``x + f(x)`` (e.g. ``[784, 128, 128, 128, 10]``: two
        blocks). Needs at least one such layer.
    categorical : mapping {column: n_categories}, optional
        Integer-coded categorical columns of the input: an :class:`~mlpnumpy.nn.embedding.Embedding` first
        turns each into a learned vector (width ``embedding_dims``, default by the number of categories)
        concatenated with the numeric columns; ``layer_dims[0]`` stays the input's width.
    embedding_dims : int, sequence of int or None
        See ``categorical``.
    """

    def __init__(self, layer_dims: Sequence[int], activations=None, *, init="auto", seed=None,
                 dtype=np.float32, loss="cross_entropy", batch_norm: bool = False, dropout: float = 0.0,
                 path: str | None = None, residual: bool = False, categorical=None, embedding_dims=None):
        from ..errors import check_positive
        if isinstance(layer_dims, (str, bytes)) or not isinstance(layer_dims, Sequence) and \
                not isinstance(layer_dims, np.ndarray):
            raise InvalidArgumentError(f"layer_dims={layer_dims!r} is not a sequence; expected sizes like [784, 128, 10]")
        layer_dims = list(layer_dims)
        if len(layer_dims) < 2:
            raise InvalidArgumentError(f"layer_dims={layer_dims} has {len(layer_dims)} size(s); expected at least "
                                       "two: [n_features, ..., n_outputs]")
        for i, d in enumerate(layer_dims):
            check_positive(f"layer_dims[{i}]", d, integer=True)
        dropout = check_in_range("dropout", dropout, 0.0, 1.0)
        n_layers = len(layer_dims) - 1
        acts = _expand_activations(activations, n_layers)
        inits = list(init) if isinstance(init, (list, tuple)) else [init] * n_layers
        if len(inits) != n_layers:
            raise InvalidArgumentError(f"init has {len(inits)} entries; expected 1 or one per layer ({n_layers})")
        blocks = [0 < i < n_layers - 1 and layer_dims[i] == layer_dims[i + 1] for i in range(n_layers)]
        if residual and not any(blocks):
            raise InvalidArgumentError(f"residual=True needs a hidden layer after the first with the width of its "
                                       f"input (layer_dims={layer_dims}); expected e.g. [n_features, 64, 64, n_outputs]")
        layers: list[Layer] = []
        n_in = layer_dims[0]
        if categorical:
            from .embedding import Embedding
            layers.append(Embedding(n_in, categorical, embedding_dims, dtype=dtype))
            layer_dims = [layers[0].output_features(n_in), *layer_dims[1:]]
        layers += dense_stack(layer_dims, acts, inits=inits, dtype=dtype, batch_norm=batch_norm, dropout=dropout,
                              residual=blocks if residual else None)[0]
        self.layer_dims = [n_in, *layer_dims[1:]]
        super().__init__(layers, loss=loss, seed=seed, dtype=dtype, path=path)

    @property
    def dense_layers(self) -> list[Dense]:
        return [l for l in self.layers if isinstance(l, Dense)]


def dense_layers_in(layers) -> list[Dense]:
    """The Dense layers in order, those inside Residual blocks included."""
    out = []
    for l in layers:
        if isinstance(l, Dense):
            out.append(l)
        elif hasattr(l, "layers"):
            out += dense_layers_in(l.layers)
    return out




def dense_stack(layer_dims: Sequence[int], activations: Sequence, *, inits: Sequence | None = None,
                dtype=np.float32, batch_norm: bool = False, norm_bias: bool = False, dropout: float = 0.0,
                alpha_dropout: bool = True, residual: Sequence[bool] | None = None) -> tuple[list[Layer], list[int]]:
    """The layers of a multi-layer perceptron, for :class:`MLP` and the scikit-learn estimators.

    Parameters
    ----------
    layer_dims : sizes ``[n_in, hidden..., n_out]``
    activations : one per Dense layer (the output's last)
    inits : one initialiser per Dense layer; None: each Dense layer's default (``"auto"``)
    batch_norm : each hidden layer becomes Dense (no activation) -> BatchNorm1d -> ActivationLayer;
        its Dense layer has a bias only with ``norm_bias`` (the norm removes it; scikit-learn's
        estimators keep one so that their parameter lists match scikit-learn's)
    dropout : after each hidden activation; AlphaDropout after a SELU when ``alpha_dropout``
    residual : per Dense layer, whether its block is wrapped in a :class:`~mlpnumpy.nn.blocks.Residual`

    Returns
    -------
    layers, hidden_ends
        The layers, and for each hidden layer the index of its last layer before any dropout (the
        layer whose output is that hidden layer's activations).
    """
    from .layers import ActivationLayer, AlphaDropout
    n_layers = len(layer_dims) - 1
    layers: list[Layer] = []
    hidden_ends: list[int] = []
    for i in range(n_layers):
        hidden = i < n_layers - 1
        init = "auto" if inits is None else inits[i]
        if hidden and batch_norm:
            # He/Xavier choice still follows the activation that comes after the batch norm.
            dense = Dense(layer_dims[i], layer_dims[i + 1], None, init if inits is None else
                          _init_for(init, activations[i]), dtype=dtype, bias=norm_bias)
            block = [dense, BatchNorm1d(layer_dims[i + 1], dtype=dtype), ActivationLayer(activations[i])]
        else:
            block = [Dense(layer_dims[i], layer_dims[i + 1], activations[i], init, dtype=dtype)]
        if residual is not None and residual[i]:
            from .blocks import Residual
            block = [Residual(block, dtype=dtype)]
        layers += block
        if hidden:
            hidden_ends.append(len(layers) - 1)
        if hidden and dropout > 0:
            from .activations import get_activation
            selu = alpha_dropout and get_activation(activations[i]).name == "selu"
            layers.append(AlphaDropout(dropout) if selu else Dropout(dropout))
    return layers, hidden_ends


def _init_for(init, activation):
    """Resolve ``"auto"`` against the activation that follows (for Dense layers that have none)."""
    from .activations import get_activation
    from .initializers import auto_initializer
    if isinstance(init, str) and init == "auto":
        return auto_initializer(get_activation(activation).name)
    return init


def _expand_activations(activations, n_layers: int) -> list:
    from .activations import get_activation
    for a in ([activations] if isinstance(activations, str) else activations or []):
        get_activation(a)  # validate every name, used or not, so a typo never passes silently
    if activations is None:
        return ["relu"] * (n_layers - 1) + ["identity"]
    if isinstance(activations, str) or not isinstance(activations, (list, tuple)):
        return [activations] * (n_layers - 1) + ["identity"]
    acts = list(activations)
    if len(acts) == n_layers:
        return acts
    if len(acts) == n_layers - 1:
        return acts + ["identity"]
    raise InvalidArgumentError(f"activations has {len(acts)} entries; expected {n_layers} (one per layer) "
                               f"or {n_layers - 1} (hidden layers only)")
