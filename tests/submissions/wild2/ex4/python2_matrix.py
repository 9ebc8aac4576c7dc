# -*- coding: utf-8 -*-
import numpy as np
from numpy import matrix, multiply, log


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def costFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    # Theta1 and Theta2 rolled back from the vector, as in Octave
    Theta1 = matrix(np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                               (hidden_layer_size, input_layer_size + 1), order='F'))
    Theta2 = matrix(np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                               (num_labels, hidden_layer_size + 1), order='F'))
    m = X.shape[0]
    X = matrix(X)
    Y = matrix(np.zeros((m, num_labels)))
    for i in xrange(m):
        Y[i, int(y[i]) - 1] = 1

    a1 = np.hstack((np.ones((m, 1)), X))
    z2 = a1 * Theta1.T
    a2 = np.hstack((np.ones((m, 1)), sigmoid(z2)))
    a3 = sigmoid(a2 * Theta2.T)

    J = 0.0
    for i in xrange(m):
        J += -(Y[i] * log(a3[i]).T + (1 - Y[i]) * log(1 - a3[i]).T)[0, 0]
    J = J / m
    J += float(lamb) / (2 * m) * (np.sum(np.power(Theta1[:, 1:], 2)) + np.sum(np.power(Theta2[:, 1:], 2)))
    print "cost:", J

    d3 = a3 - Y
    d2 = multiply(d3 * Theta2[:, 1:], multiply(sigmoid(z2), 1 - sigmoid(z2)))
    Theta1_grad = d2.T * a1 / m
    Theta2_grad = d3.T * a2 / m
    Theta1_grad[:, 1:] += float(lamb) / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += float(lamb) / m * Theta2[:, 1:]

    grad = np.concatenate((np.ravel(Theta1_grad, order='F'), np.ravel(Theta2_grad, order='F')))
    return J, grad
