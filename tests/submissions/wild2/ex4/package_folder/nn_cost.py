import numpy as np

from .activations import sigmoid, sigmoid_gradient
from . import utils


def nn_cost_function(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    theta1, theta2 = utils.roll(nn_params, input_layer_size, hidden_layer_size, num_labels)
    m = X.shape[0]
    y_onehot = utils.one_hot(y, num_labels)

    a1 = utils.add_bias(X)
    z2 = a1 @ theta1.T
    a2 = utils.add_bias(sigmoid(z2))
    a3 = sigmoid(a2 @ theta2.T)

    J = -np.sum(y_onehot * np.log(a3) + (1 - y_onehot) * np.log(1 - a3)) / m
    J += lambda_ / (2 * m) * (np.sum(theta1[:, 1:] ** 2) + np.sum(theta2[:, 1:] ** 2))

    d3 = a3 - y_onehot
    d2 = (d3 @ theta2[:, 1:]) * sigmoid_gradient(z2)
    grad1 = d2.T @ a1 / m
    grad2 = d3.T @ a2 / m
    grad1[:, 1:] += lambda_ / m * theta1[:, 1:]
    grad2[:, 1:] += lambda_ / m * theta2[:, 1:]
    return J, utils.unroll(grad1, grad2)
