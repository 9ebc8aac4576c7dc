import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def backpropagation(Theta1, Theta2, X, y, lambda_=0.0):
    """Forward pass, cost and backward pass. Returns (J, grads) with grads keyed like the weights."""
    m = X.shape[0]
    K = Theta2.shape[0]
    Y = np.zeros((m, K))
    Y[np.arange(m), y] = 1

    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((m, 1)), sigmoid(z2)])
    a3 = sigmoid(a2 @ Theta2.T)

    J = -(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)).sum() / m
    J += lambda_ / (2 * m) * ((Theta1[:, 1:] ** 2).sum() + (Theta2[:, 1:] ** 2).sum())

    delta3 = a3 - Y
    delta2 = (delta3 @ Theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    grads = {'Theta1': delta2.T @ a1 / m, 'Theta2': delta3.T @ a2 / m}
    grads['Theta1'][:, 1:] += lambda_ / m * Theta1[:, 1:]
    grads['Theta2'][:, 1:] += lambda_ / m * Theta2[:, 1:]
    return J, grads
