"""The network maths: parameters, initialisers, activations, layers, losses, the model, gradient checks.

Data flows through these modules in this order::

    parameter -> initializers -> activations -> layers (Dense, BatchNorm1d, Dropout, ...)
      -> blocks (Residual), embedding -> losses (the batch mean, once) -> model (Sequential, MLP)
      -> gradcheck (finite differences against any of the above); metrics scores predictions.

Each layer has ``forward(x, training)`` and ``backward(grad_out) -> grad_in``; see :mod:`.layers`.
"""
from .activations import get_activation
from .blocks import Residual
from .embedding import Embedding
from .gradcheck import gradcheck
from .layers import (ActivationLayer, AlphaDropout, BatchNorm1d, Dense, Dropout, Layer, LayerNorm,
                     register_layer)
from .losses import MAE, MSE, BinaryCrossEntropy, CrossEntropy, Huber, Loss, get_loss
from .model import MLP, Sequential
from .parameter import Parameter

__all__ = ["Parameter", "get_activation", "Layer", "Dense", "ActivationLayer", "Dropout", "AlphaDropout",
           "BatchNorm1d", "LayerNorm", "register_layer", "Residual", "Embedding", "Loss", "CrossEntropy",
           "BinaryCrossEntropy", "MSE", "MAE", "Huber", "get_loss", "Sequential", "MLP", "gradcheck"]
