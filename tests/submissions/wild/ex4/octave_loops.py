# Machine Learning - Exercise 4: Neural Network Learning
# Python port of my Octave solution. Labels are 1..10 like in ex4data1.mat
# and the parameters are unrolled the Octave way ([Theta1(:) ; Theta2(:)]).
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    g = sigmoid(z)
    return g * (1 - g)


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, Lambda):
    # Reshape nn_params back into Theta1 and Theta2 (column-major, as Octave's reshape)
    Theta1 = np.reshape(nn_params[0:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1), order='F')
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1), order='F')

    m = X.shape[0]
    J = 0
    Theta1_grad = np.zeros(Theta1.shape)
    Theta2_grad = np.zeros(Theta2.shape)

    # Part 1 + 2: feedforward and backpropagation, one example at a time
    for t in range(m):
        a1 = np.hstack(([1], X[t, :]))
        z2 = np.dot(Theta1, a1)
        a2 = np.hstack(([1], sigmoid(z2)))
        z3 = np.dot(Theta2, a2)
        a3 = sigmoid(z3)

        yk = np.zeros(num_labels)
        yk[int(y[t]) - 1] = 1          # label k is stored in position k-1

        J = J + np.sum(-yk * np.log(a3) - (1 - yk) * np.log(1 - a3))

        delta3 = a3 - yk
        delta2 = np.dot(Theta2[:, 1:].T, delta3) * sigmoidGradient(z2)

        Theta2_grad = Theta2_grad + np.outer(delta3, a2)
        Theta1_grad = Theta1_grad + np.outer(delta2, a1)

    J = J / m
    # regularization (skip the bias column)
    J = J + (Lambda / (2.0 * m)) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    Theta1_grad = Theta1_grad / m
    Theta2_grad = Theta2_grad / m
    Theta1_grad[:, 1:] = Theta1_grad[:, 1:] + (Lambda / m) * Theta1[:, 1:]
    Theta2_grad[:, 1:] = Theta2_grad[:, 1:] + (Lambda / m) * Theta2[:, 1:]

    # Unroll gradients
    grad = np.concatenate((Theta1_grad.flatten('F'), Theta2_grad.flatten('F')))
    return J, grad
