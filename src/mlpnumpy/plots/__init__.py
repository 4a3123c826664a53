"""Figures (matplotlib, the ``plot`` extra, imported on first use): training curves, weights,
confusion matrices, misclassified images, the seed's figure, decision boundaries.
"""
from .boundary import BoundarySnapshots, decision_grid
from .figures import (plot_boundary_grid, plot_confusion_matrix, plot_decision_boundary, plot_history,
                      plot_misclassified, plot_seed_figure, plot_weight_histograms, save_figure)

__all__ = ["save_figure", "plot_history", "plot_weight_histograms", "plot_confusion_matrix",
           "plot_misclassified", "plot_seed_figure", "plot_decision_boundary", "plot_boundary_grid",
           "decision_grid", "BoundarySnapshots"]
