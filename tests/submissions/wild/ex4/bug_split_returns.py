import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, l):
    # Theta1 is hidden x (input+1), Theta2 is labels x (hidden+1)
    t1_size = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:t1_size].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[t1_size:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]

    # y holds 1..num_labels
    y_matrix = np.zeros((m, num_labels))
    y_matrix[np.arange(m), y - 1] = 1

    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((m, 1)), sigmoid(z2)])
    a3 = sigmoid(a2 @ Theta2.T)

    J = np.sum(-y_matrix * np.log(a3) - (1 - y_matrix) * np.log(1 - a3)) / m
    J = J + l / (2 * m) * (np.sum(Theta1[:, 1:] * Theta1[:, 1:]) + np.sum(Theta2[:, 1:] * Theta2[:, 1:]))

    delta3 = a3 - y_matrix
    delta2 = (delta3 @ Theta2)[:, 1:] * sigmoid(z2) * (1 - sigmoid(z2))

    Theta1_grad = (delta2.T @ a1) / m
    Theta2_grad = (delta3.T @ a2) / m

    return J, Theta1_grad, Theta2_grad
