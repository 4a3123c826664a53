"""Files: model files and resumable checkpoints (``.npz`` read without pickle, written atomically),
and the checked readers they rest on (``_npyio``: ``.npy`` headers; ``_filechecks``: what a file may
hold; ``_atomic``: write-then-rename).
"""
from .model_files import (load_checkpoint, load_model, read_metadata, restore_training_state, save_checkpoint,
                          save_model)

__all__ = ["save_model", "load_model", "save_checkpoint", "load_checkpoint", "restore_training_state",
           "read_metadata"]
