# Rede neural -- exercício 4 (custo e gradiente)
import numpy as np

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))

def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    # número de parâmetros de Theta1
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape((n1 / (input_layer_size + 1), input_layer_size + 1))
    Theta2 = nn_params[n1:].reshape((num_labels, hidden_layer_size + 1))
    m = X.shape[0]
    Y = np.zeros((m, num_labels))
    for i in xrange(m):
	Y[i, y[i]] = 1
    a1 = np.c_[np.ones(m), X]
    z2 = a1.dot(Theta1.T)
    a2 = np.c_[np.ones(m), sigmoid(z2)]
    h = sigmoid(a2.dot(Theta2.T))
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m
    J = J + lamb / (2.0 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    print "J =", J
    d3 = h - Y
    d2 = d3.dot(Theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    grad1 = d2.T.dot(a1) / m
    grad2 = d3.T.dot(a2) / m
    grad1[:, 1:] = grad1[:, 1:] + lamb / float(m) * Theta1[:, 1:]
    grad2[:, 1:] = grad2[:, 1:] + lamb / float(m) * Theta2[:, 1:]
    return J, np.concatenate((grad1.ravel(), grad2.ravel()))
