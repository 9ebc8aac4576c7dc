import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    """The per-example loop of the lecture: correct, but it sums in another order."""
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    J = 0.0
    D1 = np.zeros_like(Theta1)
    D2 = np.zeros_like(Theta2)
    for t in range(m):
        a1 = np.concatenate([[1.0], X[t]])
        z2 = Theta1 @ a1
        a2 = np.concatenate([[1.0], sigmoid(z2)])
        a3 = sigmoid(Theta2 @ a2)
        yk = np.zeros(num_labels)
        yk[y[t]] = 1.0
        J += -np.sum(yk * np.log(a3) + (1 - yk) * np.log(1 - a3))
        d3 = a3 - yk
        d2 = (Theta2[:, 1:].T @ d3) * sigmoid(z2) * (1 - sigmoid(z2))
        D1 += np.outer(d2, a1)
        D2 += np.outer(d3, a2)
    J = J / m + lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    G1, G2 = D1 / m, D2 / m
    G1[:, 1:] += lambda_ / m * Theta1[:, 1:]
    G2[:, 1:] += lambda_ / m * Theta2[:, 1:]
    return J, np.concatenate([G1.ravel(), G2.ravel()])
