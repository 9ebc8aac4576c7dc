"""Neural network cost -- ex4, written as a reusable module."""
import numpy as np
from scipy.special import expit


def nn_cost_function(nn_params, X, y, input_layer_size=400, hidden_layer_size=25, num_labels=10, lmbda=0.0):
    """Return (J, grad). y holds labels 1..num_labels (the .mat file's convention)."""
    split = hidden_layer_size * (input_layer_size + 1)
    theta1 = np.reshape(nn_params[:split], (hidden_layer_size, input_layer_size + 1), order='F')
    theta2 = np.reshape(nn_params[split:], (num_labels, hidden_layer_size + 1), order='F')
    m = X.shape[0]
    y_k = (np.arange(1, num_labels + 1) == y.reshape(-1, 1)).astype(float)

    a1 = np.column_stack([np.ones(m), X])
    z2 = a1 @ theta1.T
    a2 = np.column_stack([np.ones(m), expit(z2)])
    h = expit(a2 @ theta2.T)

    J = -np.sum(y_k * np.log(h) + (1 - y_k) * np.log(1 - h)) / m
    J += lmbda / (2 * m) * (np.sum(np.square(theta1[:, 1:])) + np.sum(np.square(theta2[:, 1:])))

    delta3 = y_k - h
    delta2 = (delta3 @ theta2)[:, 1:] * expit(z2) * (1 - expit(z2))
    theta1_grad = delta2.T @ a1 / m
    theta2_grad = delta3.T @ a2 / m
    theta1_grad[:, 1:] += lmbda / m * theta1[:, 1:]
    theta2_grad[:, 1:] += lmbda / m * theta2[:, 1:]
    return J, np.concatenate([theta1_grad.ravel(order='F'), theta2_grad.ravel(order='F')])
