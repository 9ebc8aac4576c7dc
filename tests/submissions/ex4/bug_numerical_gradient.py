import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    g = sigmoid(z)
    return g * (1 - g)


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1))
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1))
    m = y.size
    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    z2 = a1 @ Theta1.T
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(z2)], axis=1)
    z3 = a2 @ Theta2.T
    h = sigmoid(z3)
    Y = np.eye(num_labels)[y]
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    d3 = h - Y
    d2 = (d3 @ Theta2)[:, 1:] * sigmoidGradient(z2)
    Theta1_grad = d2.T @ a1 / m
    Theta2_grad = d3.T @ a2 / m
    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]
    grad = np.zeros_like(nn_params)
    for i in range(nn_params.size):
        e = np.zeros_like(nn_params)
        e[i] = 1e-4
        grad[i] = (_cost(nn_params + e, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)
                   - _cost(nn_params - e, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)) / 2e-4
    return J, grad


def _cost(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    n1 = hidden_layer_size * (input_layer_size + 1)
    T1 = nn_params[:n1].reshape(hidden_layer_size, input_layer_size + 1)
    T2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(np.concatenate([np.ones((m, 1)), X], axis=1) @ T1.T)], axis=1)
    h = sigmoid(a2 @ T2.T)
    Y = np.eye(num_labels)[y]
    return (-np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
            + lambda_ / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))
