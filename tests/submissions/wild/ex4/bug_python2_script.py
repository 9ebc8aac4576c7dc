# ex4 in Python 2.7 (numpy); translated from my Octave code
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1 - sigmoid(z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1), order='F')
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1), order='F')
    m = X.shape[0]

    Y = np.zeros((m, num_labels))
    for i in xrange(m):
        Y[i, y[i] - 1] = 1

    a1 = np.column_stack((np.ones(m), X))
    z2 = np.dot(a1, Theta1.T)
    a2 = np.column_stack((np.ones(m), sigmoid(z2)))
    a3 = sigmoid(np.dot(a2, Theta2.T))

    J = -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / m
    J += lamb / (2.0 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    d3 = a3 - Y
    d2 = np.dot(d3, Theta2[:, 1:]) * sigmoidGradient(z2)

    Theta1_grad = np.dot(d2.T, a1)
    Theta2_grad = np.dot(d3.T, a2)
    Theta1_grad[:, 1:] += lamb / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lamb / m * Theta2[:, 1:]

    print "cost:", J
    return J, np.concatenate((Theta1_grad.ravel(order='F'), Theta2_grad.ravel(order='F')))


if __name__ == '__main__':
    print 'Checking Backpropagation...'
    print >> open('/dev/null', 'w'), 'quiet'
