import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def nnCostFunctionVectorized(Theta1, Theta2, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
    """Theta1 and Theta2 in, their gradients out, as a list [Theta1_grad, Theta2_grad]."""
    m = X.shape[0]
    Y = np.eye(num_labels)[y.ravel() - 1]

    A1 = np.c_[np.ones(m), X]
    Z2 = A1.dot(Theta1.T)
    A2 = np.c_[np.ones(m), sigmoid(Z2)]
    A3 = sigmoid(A2.dot(Theta2.T))
    J = np.sum(-Y * np.log(A3) - (1 - Y) * np.log(1 - A3)) / m \
        + Lambda / (2. * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    D3 = A3 - Y
    D2 = D3.dot(Theta2[:, 1:]) * sigmoid(Z2) * (1 - sigmoid(Z2))
    Theta1_grad = D2.T.dot(A1) / m
    Theta2_grad = D3.T.dot(A2) / m
    Theta1_grad[:, 1:] += Lambda / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += Lambda / m * Theta2[:, 1:]
    return J, [Theta1_grad, Theta2_grad]
