import numpy as np
from scipy import optimize as op


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1 - sigmoid(z))


def reshape_params(nn_params, input_layer_size, hidden_layer_size, num_labels):
    theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)], (hidden_layer_size, input_layer_size + 1), 'F')
    theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):], (num_labels, hidden_layer_size + 1), 'F')
    return theta1, theta2


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lam):
    """Only the cost: fmin_cg takes the gradient from nnGradFunction (fprime)."""
    theta1, theta2 = reshape_params(nn_params, input_layer_size, hidden_layer_size, num_labels)
    m = len(y)
    ones = np.ones((m, 1))
    a1 = np.hstack((ones, X))
    a2 = sigmoid(a1 @ theta1.T)
    a2 = np.hstack((ones, a2))
    h = sigmoid(a2 @ theta2.T)
    y_d = np.zeros((m, num_labels))
    for i in range(1, num_labels + 1):
        y_d[:, i - 1] = np.where(y == i, 1, 0)
    temp1 = np.multiply(y_d, np.log(h))
    temp2 = np.multiply(1 - y_d, np.log(1 - h))
    temp3 = np.sum(temp1 + temp2)
    sum1 = np.sum(np.sum(np.power(theta1[:, 1:], 2), axis=1))
    sum2 = np.sum(np.sum(np.power(theta2[:, 1:], 2), axis=1))
    return np.sum(temp3 / (-m)) + (sum1 + sum2) * lam / (2 * m)


def nnGradFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lam):
    theta1, theta2 = reshape_params(nn_params, input_layer_size, hidden_layer_size, num_labels)
    m = len(y)
    y_d = np.zeros((m, num_labels))
    for i in range(1, num_labels + 1):
        y_d[:, i - 1] = np.where(y == i, 1, 0)
    delta1 = np.zeros(theta1.shape)
    delta2 = np.zeros(theta2.shape)
    for i in range(m):
        a1 = np.hstack(([1], X[i]))
        z2 = theta1 @ a1
        a2 = np.hstack(([1], sigmoid(z2)))
        a3 = sigmoid(theta2 @ a2)
        d3 = a3 - y_d[i]
        d2 = (theta2[:, 1:].T @ d3) * sigmoidGradient(z2)
        delta1 += np.outer(d2, a1)
        delta2 += np.outer(d3, a2)
    delta1 /= m
    delta2 /= m
    delta1[:, 1:] += theta1[:, 1:] * lam / m
    delta2[:, 1:] += theta2[:, 1:] * lam / m
    return np.hstack((delta1.ravel(order='F'), delta2.ravel(order='F')))


def train(initial, X, y, lam=1.0):
    return op.fmin_cg(nnCostFunction, initial, fprime=nnGradFunction, args=(400, 25, 10, X, y, lam), maxiter=50)
