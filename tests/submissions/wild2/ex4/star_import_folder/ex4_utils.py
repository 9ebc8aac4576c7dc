import numpy as np
from matplotlib import pyplot


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    g = sigmoid(z)
    return g * (1 - g)


def randInitializeWeights(L_in, L_out, epsilon_init=0.12):
    return np.random.rand(L_out, 1 + L_in) * 2 * epsilon_init - epsilon_init


def displayData(X, figsize=(10, 10)):
    fig, ax = pyplot.subplots(figsize=figsize)
    ax.imshow(X[0].reshape(20, 20, order='F'), cmap='Greys')
    pyplot.show()
