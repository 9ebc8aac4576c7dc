import numpy as np
import pandas as pd


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def cost_function(params, input_size, hidden_size, num_labels, X, Y, reg):
    """X already has the column of ones (added once in load_data), Y is one-hot (pd.get_dummies)."""
    theta1 = params[:hidden_size * (input_size + 1)].reshape(hidden_size, input_size + 1)
    theta2 = params[hidden_size * (input_size + 1):].reshape(num_labels, hidden_size + 1)
    m = X.shape[0]
    z2 = X @ theta1.T
    a2 = np.insert(sigmoid(z2), 0, 1, axis=1)
    h = sigmoid(a2 @ theta2.T)
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m
    J += reg / (2 * m) * (np.sum(theta1[:, 1:] ** 2) + np.sum(theta2[:, 1:] ** 2))
    d3 = h - Y
    d2 = (d3 @ theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    g1 = d2.T @ X / m
    g2 = d3.T @ a2 / m
    g1 += reg / m * theta1
    g2 += reg / m * theta2
    return J, np.concatenate((g1.flatten(), g2.flatten()))


def load_data(path):
    df = pd.read_csv(path)
    X = df.drop(columns='label').values / 255.0
    X = np.insert(X, 0, 1, axis=1)
    Y = pd.get_dummies(df['label']).values
    return X, Y
