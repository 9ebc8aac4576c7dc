import numpy as np
from scipy.special import expit          # numerically safe sigmoid
from scipy.optimize import minimize      # used for training below
from scipy.io import loadmat


def sigmoidGradient(z):
    return expit(z) * (1 - expit(z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, (input_layer_size + 1)))
    Theta2 = np.reshape(nn_params[(hidden_layer_size * (input_layer_size + 1)):],
                        (num_labels, (hidden_layer_size + 1)))
    m = y.size

    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    z2 = a1.dot(Theta1.T)
    a2 = np.concatenate([np.ones((m, 1)), expit(z2)], axis=1)
    a3 = expit(a2.dot(Theta2.T))

    y_vec = np.eye(num_labels)[y.reshape(-1)]

    temp1 = Theta1
    temp2 = Theta2
    reg_term = (lambda_ / (2 * m)) * (np.sum(np.square(temp1[:, 1:])) + np.sum(np.square(temp2[:, 1:])))
    J = -np.sum((np.log(a3) * y_vec) + np.log(1 - a3) * (1 - y_vec)) + reg_term

    delta_3 = a3 - y_vec
    delta_2 = delta_3.dot(Theta2)[:, 1:] * sigmoidGradient(z2)

    Delta1 = delta_2.T.dot(a1)
    Delta2 = delta_3.T.dot(a2)

    Theta1_grad = (1 / m) * Delta1
    Theta1_grad[:, 1:] = Theta1_grad[:, 1:] + (lambda_ / m) * Theta1[:, 1:]
    Theta2_grad = (1 / m) * Delta2
    Theta2_grad[:, 1:] = Theta2_grad[:, 1:] + (lambda_ / m) * Theta2[:, 1:]

    grad = np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])
    return J, grad


def train(X, y, input_layer_size=400, hidden_layer_size=25, num_labels=10, lambda_=1.0):
    rng = np.random.default_rng(0)
    init = rng.uniform(-0.12, 0.12, hidden_layer_size * (input_layer_size + 1) + num_labels * (hidden_layer_size + 1))
    res = minimize(nnCostFunction, init, jac=True, method='TNC', options={'maxfun': 100},
                   args=(input_layer_size, hidden_layer_size, num_labels, X, y, lambda_))
    return res.x
