import numpy as np
from sklearn.preprocessing import OneHotEncoder
from sklearn.metrics import classification_report


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward_propagate(X, theta1, theta2):
    m = X.shape[0]
    a1 = np.insert(X, 0, values=np.ones(m), axis=1)
    z2 = a1 @ theta1.T
    a2 = np.insert(sigmoid(z2), 0, values=np.ones(m), axis=1)
    z3 = a2 @ theta2.T
    h = sigmoid(z3)
    return a1, z2, a2, z3, h


def nnCostFunction(nn_params, input_size, hidden_size, num_labels, X, y, learning_rate):
    m = X.shape[0]
    theta1 = np.reshape(nn_params[:hidden_size * (input_size + 1)], (hidden_size, (input_size + 1)))
    theta2 = np.reshape(nn_params[hidden_size * (input_size + 1):], (num_labels, (hidden_size + 1)))

    encoder = OneHotEncoder(categories=[list(range(num_labels))], sparse_output=False)
    y_onehot = encoder.fit_transform(np.asarray(y).reshape(-1, 1))

    a1, z2, a2, z3, h = forward_propagate(X, theta1, theta2)

    J = 0
    for i in range(m):
        first_term = -y_onehot[i, :] @ np.log(h[i, :])
        second_term = (1 - y_onehot[i, :]) @ np.log(1 - h[i, :])
        J += first_term - second_term
    J = J / m
    J += (float(learning_rate) / 2) * (np.sum(np.power(theta1[:, 1:], 2)) + np.sum(np.power(theta2[:, 1:], 2)))

    d3 = h - y_onehot
    d2 = (d3 @ theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    delta1 = d2.T @ a1 / m
    delta2 = d3.T @ a2 / m
    delta1[:, 1:] = delta1[:, 1:] + theta1[:, 1:] * learning_rate
    delta2[:, 1:] = delta2[:, 1:] + theta2[:, 1:] * learning_rate

    grad = np.concatenate((np.ravel(delta1), np.ravel(delta2)))
    return J, grad
