"""Bridges to other libraries, each an optional extra imported on first use:
``sklearn`` (``MLPClassifier``/``MLPRegressor``, with scikit-learn's own update rules in
``_sklearn_solvers``), ``onnx_export`` (ONNX files) and ``interop`` (PyTorch and safetensors).

``mlpnumpy.sklearn`` is the short public name of ``mlpnumpy.integrations.sklearn``.
"""
