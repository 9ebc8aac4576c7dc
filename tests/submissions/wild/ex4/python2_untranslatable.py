import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    try:
        m = X.shape[0]
    except AttributeError, e:
        raise ValueError, "X must be an array: " + `e`
    exec "n1 = hidden_layer_size * (input_layer_size + 1)"
    return 0.0, np.zeros(nn_params.size)
