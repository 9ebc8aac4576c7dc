import numpy as np


def sigmoid(z):
    """SIGMOID Compute sigmoid function: g = 1 ./ (1 + exp(-z))."""
    return 1.0 / (1.0 + np.exp(-z))
