import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from scipy import optimize


def sigmoid(z):
    g = 1 / (1 + np.exp(-z))
    return g


def sigmoidGradient(z):
    g = np.zeros(z.shape)
    a = sigmoid(z)
    g = a * (1 - a)
    return g


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    Theta1 = np.reshape(nn_params[0:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, (input_layer_size + 1)), order="F")
    Theta2 = np.reshape(nn_params[(hidden_layer_size * (input_layer_size + 1)):],
                        (num_labels, (hidden_layer_size + 1)), order="F")
    m, n = X.shape

    # one-hot with pandas; the categories are fixed so every label 1..K gets a column
    labels = pd.Series(y.ravel()).astype(pd.CategoricalDtype(categories=range(1, num_labels + 1)))
    yk = pd.get_dummies(labels).to_numpy(dtype=float)

    X = np.concatenate((np.ones((m, 1)), X), axis=1)
    z2 = X @ Theta1.T
    a2 = np.concatenate((np.ones((m, 1)), sigmoid(z2)), axis=1)
    a3 = sigmoid(a2 @ Theta2.T)

    J = np.sum(-yk * np.log(a3) - (1 - yk) * np.log(1 - a3)) / m
    J = J + lamb / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    delta3 = a3 - yk
    delta2 = (delta3 @ Theta2[:, 1:]) * sigmoidGradient(z2)

    Theta1_grad = delta2.T @ X / m
    Theta2_grad = delta3.T @ a2 / m
    Theta1_grad[:, 1:] += lamb / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lamb / m * Theta2[:, 1:]

    grad = np.concatenate((Theta1_grad.flatten(order="F"), Theta2_grad.flatten(order="F")))
    return J, grad
