from ex4_utils import *
import numpy as np
from scipy.io import loadmat
from scipy import optimize


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, (input_layer_size + 1)), order='F')
    Theta2 = np.reshape(nn_params[(hidden_layer_size * (input_layer_size + 1)):],
                        (num_labels, (hidden_layer_size + 1)), order='F')
    m = y.size
    J = 0
    Theta1_grad = np.zeros(Theta1.shape)
    Theta2_grad = np.zeros(Theta2.shape)

    for t in range(m):
        a1 = np.concatenate([[1], X[t]])
        z2 = Theta1 @ a1
        a2 = np.concatenate([[1], sigmoid(z2)])
        a3 = sigmoid(Theta2 @ a2)
        yk = np.zeros(num_labels)
        yk[y[t] % num_labels] = 1
        J += -np.sum(yk * np.log(a3) + (1 - yk) * np.log(1 - a3))
        d3 = a3 - yk
        d2 = (Theta2[:, 1:].T @ d3) * sigmoidGradient(z2)
        Theta1_grad += np.outer(d2, a1)
        Theta2_grad += np.outer(d3, a2)

    J = J / m + (lambda_ / (2 * m)) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    Theta1_grad = Theta1_grad / m
    Theta2_grad = Theta2_grad / m
    Theta1_grad[:, 1:] += (lambda_ / m) * Theta1[:, 1:]
    Theta2_grad[:, 1:] += (lambda_ / m) * Theta2[:, 1:]
    grad = np.concatenate([Theta1_grad.ravel(order='F'), Theta2_grad.ravel(order='F')])
    return J, grad


if __name__ == '__main__':
    data = loadmat('ex4data1.mat')
    X, y = data['X'], data['y'].ravel()
    displayData(X[:100])
    initial = np.concatenate([randInitializeWeights(400, 25).ravel(order='F'), randInitializeWeights(25, 10).ravel(order='F')])
    res = optimize.minimize(nnCostFunction, initial, args=(400, 25, 10, X, y, 1.0), jac=True, method='TNC',
                            options={'maxiter': 100})
    print('Training Set Accuracy:', res.fun)
