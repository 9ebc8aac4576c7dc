import numpy as np
from sklearn.preprocessing import OneHotEncoder


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cost_function(X, Y, nn_params, input_layer_size, hidden_layer_size, num_labels, lambda_reg):
    """Y is the one-hot matrix (m x num_labels) made once by encode_labels, not the label vector."""
    theta1 = nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape(hidden_layer_size, input_layer_size + 1)
    theta2 = nn_params[hidden_layer_size * (input_layer_size + 1):].reshape(num_labels, hidden_layer_size + 1)
    m = len(X)
    a1 = np.c_[np.ones(m), X]
    z2 = a1 @ theta1.T
    a2 = np.c_[np.ones(m), sigmoid(z2)]
    h = sigmoid(a2 @ theta2.T)
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m
    J += lambda_reg / (2 * m) * (np.sum(theta1[:, 1:] ** 2) + np.sum(theta2[:, 1:] ** 2))
    d3 = h - Y
    d2 = d3 @ theta2[:, 1:] * sigmoid(z2) * (1 - sigmoid(z2))
    D1 = d2.T @ a1 / m
    D2 = d3.T @ a2 / m
    D1[:, 1:] += lambda_reg / m * theta1[:, 1:]
    D2[:, 1:] += lambda_reg / m * theta2[:, 1:]
    return J, np.concatenate([D1.ravel(), D2.ravel()])


def encode_labels(y):
    return OneHotEncoder(sparse_output=False, categories='auto').fit_transform(y.reshape(-1, 1))
