"""Integer codes of the activations the fused kernels know (numba dispatches on plain integers)."""
IDENTITY, RELU, LEAKY_RELU, SIGMOID, TANH, ELU, GELU = range(7)

#: activation name -> (code, name of its one parameter or None)
CODES = {"identity": (IDENTITY, None), "relu": (RELU, None), "leaky_relu": (LEAKY_RELU, "negative_slope"),
         "sigmoid": (SIGMOID, None), "tanh": (TANH, None), "elu": (ELU, "alpha"), "gelu": (GELU, None)}
