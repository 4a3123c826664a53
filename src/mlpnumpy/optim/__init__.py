"""Optimizers (torch's update rules) and learning-rate schedules.

``Optimizer.step()`` reads every ``Parameter.grad`` the backward pass filled and updates
``Parameter.value``; a :class:`~.schedules.Schedule` sets the optimizer's ``lr`` per epoch or step.
"""
from .optimizers import OPTIMIZERS, SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop, get_optimizer
from .schedules import SCHEDULES, Schedule, get_schedule

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get_optimizer", "OPTIMIZERS",
           "Schedule", "get_schedule", "SCHEDULES"]
