"""Training: ``fit`` (one epoch's batches: forward, loss, backward, step), the driver that runs the
epochs (:class:`~.driver.TrainingDriver`, shared with the scikit-learn estimators), callbacks,
train-time augmentation and the internals tracker.

The flow: ``fitting.fit`` checks its arguments, splits off validation rows and hands each epoch's
work to ``driver.TrainingDriver``, which calls the ``callbacks`` around every epoch and batch.
"""
from .callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History, LambdaCallback,
                        LearningRateScheduler, ModelCheckpoint, MonitorCallback, ProgressBar, TerminateOnNaN)
from .driver import TrainingDriver
from .fitting import clip_grad_norm, evaluate_arrays, fit, train_val_split

__all__ = ["fit", "clip_grad_norm", "train_val_split", "evaluate_arrays", "TrainingDriver", "Callback",
           "CallbackList", "History", "ProgressBar", "MonitorCallback", "EarlyStopping", "ModelCheckpoint",
           "CSVLogger", "TerminateOnNaN", "LearningRateScheduler", "LambdaCallback"]
