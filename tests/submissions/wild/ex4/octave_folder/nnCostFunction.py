import numpy as np

from sigmoid import sigmoid
from sigmoidGradient import sigmoidGradient


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    """NNCOSTFUNCTION Implements the neural network cost function for a two layer
    neural network which performs classification.

    [J grad] = NNCOSTFUNCTON(nn_params, hidden_layer_size, num_labels, X, y, lambda)
    """
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1), order='F')
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1), order='F')
    m = X.shape[0]

    I = np.eye(num_labels)
    Y = np.zeros((m, num_labels))
    for i in range(m):
        Y[i, :] = I[y[i] - 1, :]

    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((z2.shape[0], 1)), sigmoid(z2)])
    z3 = a2 @ Theta2.T
    a3 = sigmoid(z3)
    h = a3

    p = np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2)
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m + lambda_ * p / (2 * m)

    sigma3 = a3 - Y
    sigma2 = (sigma3 @ Theta2) * sigmoidGradient(np.hstack([np.ones((z2.shape[0], 1)), z2]))
    sigma2 = sigma2[:, 1:]

    delta_1 = sigma2.T @ a1
    delta_2 = sigma3.T @ a2

    p1 = (lambda_ / m) * np.hstack([np.zeros((Theta1.shape[0], 1)), Theta1[:, 1:]])
    p2 = (lambda_ / m) * np.hstack([np.zeros((Theta2.shape[0], 1)), Theta2[:, 1:]])
    Theta1_grad = delta_1 / m + p1
    Theta2_grad = delta_2 / m + p2

    grad = np.concatenate([Theta1_grad.ravel(order='F'), Theta2_grad.ravel(order='F')])
    return J, grad
