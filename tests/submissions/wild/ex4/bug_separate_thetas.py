"""Neural network cost function (ex4), written with the two weight matrices passed separately."""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1.0 - sigmoid(z))


def nnCostFunction(Theta1, Theta2, input_layer_size, hidden_layer_size, num_labels, X, y, lmbda):
    m = X.shape[0]

    # recode the labels (0..num_labels-1) as vectors of 0s and 1s
    Y = np.zeros((m, num_labels))
    for k in range(num_labels):
        Y[:, k] = (y == k)

    a1 = np.insert(X, 0, 1, axis=1)
    z2 = a1.dot(Theta1.T)
    a2 = np.insert(sigmoid(z2), 0, 1, axis=1)
    z3 = a2.dot(Theta2.T)
    a3 = sigmoid(z3)

    J = (1.0 / m) * np.sum(-Y * np.log(a3) - (1 - Y) * np.log(1 - a3))
    J += (lmbda / (2.0 * m)) * (np.sum(np.square(Theta1[:, 1:])) + np.sum(np.square(Theta2[:, 1:])))

    d3 = a3 - Y
    d2 = d3.dot(Theta2[:, 1:]) * sigmoidGradient(a2[:, 1:])

    Theta1_grad = d2.T.dot(a1) / m
    Theta2_grad = d3.T.dot(a2) / m
    Theta1_grad[:, 1:] += (lmbda / m) * Theta1[:, 1:]
    Theta2_grad[:, 1:] += (lmbda / m) * Theta2[:, 1:]

    return J, Theta1_grad, Theta2_grad
