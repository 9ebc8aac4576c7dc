import numpy as np
import scipy.io as sio


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1.0 - sigmoid(z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    """y is the (m, 1) column of labels 1..num_labels, exactly as sio.loadmat('ex4data1.mat') gives it."""
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape((input_layer_size + 1, hidden_layer_size)).T
    Theta2 = nn_params[n1:].reshape((hidden_layer_size + 1, num_labels)).T
    m = X.shape[0]

    # (m, 1) == (K,) broadcasts to the (m, K) label matrix
    Y = (y == np.arange(1, num_labels + 1)).astype(float)

    a1 = np.hstack((np.ones((m, 1)), X))
    z2 = a1.dot(Theta1.T)
    a2 = np.hstack((np.ones((m, 1)), sigmoid(z2)))
    a3 = sigmoid(a2.dot(Theta2.T))

    J = -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / m
    J += lambda_ / (2.0 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    delta3 = a3 - Y
    delta2 = delta3.dot(Theta2[:, 1:]) * sigmoidGradient(z2)
    Theta1_grad = delta2.T.dot(a1) / m
    Theta2_grad = delta3.T.dot(a2) / m
    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]

    # unroll column by column, like Octave
    return J, np.concatenate((Theta1_grad.T.ravel(), Theta2_grad.T.ravel()))
