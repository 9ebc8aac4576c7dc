import numpy as np

from computeNumericalGradient import computeNumericalGradient
from debugInitializeWeights import debugInitializeWeights
from nnCostFunction import nnCostFunction


def checkNNGradients(lambda_=0):
    input_layer_size, hidden_layer_size, num_labels, m = 3, 5, 3, 5
    Theta1 = debugInitializeWeights(hidden_layer_size, input_layer_size)
    Theta2 = debugInitializeWeights(num_labels, hidden_layer_size)
    X = debugInitializeWeights(m, input_layer_size - 1)
    y = 1 + np.mod(np.arange(1, m + 1), num_labels)
    nn_params = np.concatenate([Theta1.ravel(order='F'), Theta2.ravel(order='F')])

    def costFunc(p):
        return nnCostFunction(p, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)

    cost, grad = costFunc(nn_params)
    numgrad = computeNumericalGradient(costFunc, nn_params)
    diff = np.linalg.norm(numgrad - grad) / np.linalg.norm(numgrad + grad)
    print('Relative Difference: %g' % diff)
    return diff
