import numpy as np


class NN(object):
    """Weights live on the object: backprop reads self.W1 and self.W2 (no parameters passed in)."""

    def __init__(self, layers, epsilon=0.12):
        self.layers = layers
        self.W1 = np.random.rand(layers[1], layers[0] + 1) * 2 * epsilon - epsilon
        self.W2 = np.random.rand(layers[2], layers[1] + 1) * 2 * epsilon - epsilon

    def g(self, z):
        return 1.0 / (1.0 + np.exp(-z))

    def backprop(self, X, Y, lam):
        m = X.shape[0]
        a1 = np.c_[np.ones(m), X]
        z2 = a1 @ self.W1.T
        a2 = np.c_[np.ones(m), self.g(z2)]
        a3 = self.g(a2 @ self.W2.T)
        J = -np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3)) / m
        J += lam / (2 * m) * (np.sum(self.W1[:, 1:] ** 2) + np.sum(self.W2[:, 1:] ** 2))
        d3 = a3 - Y
        d2 = (d3 @ self.W2[:, 1:]) * self.g(z2) * (1 - self.g(z2))
        D1 = d2.T @ a1 / m
        D2 = d3.T @ a2 / m
        D1[:, 1:] += lam / m * self.W1[:, 1:]
        D2[:, 1:] += lam / m * self.W2[:, 1:]
        return J, D1, D2
