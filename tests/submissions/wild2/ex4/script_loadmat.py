# Machine Learning Online Class - Exercise 4 Neural Network Learning (Python port)
import numpy as np
import scipy.io as sio
import scipy.optimize as opt
import matplotlib.pyplot as plt

## =========== Part 1: Loading and Visualizing Data =============
print('Loading and Visualizing Data ...')
data = sio.loadmat('ex4data1.mat')
X = data['X']
y = data['y'].flatten()
m = X.shape[0]

## ================ Part 2: Loading Parameters ================
weights = sio.loadmat('ex4weights.mat')
Theta1 = weights['Theta1']
Theta2 = weights['Theta2']
nn_params = np.concatenate([Theta1.flatten(), Theta2.flatten()])

input_layer_size = 400
hidden_layer_size = 25
num_labels = 10


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    return sigmoid(z) * (1 - sigmoid(z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lmbda):
    Theta1 = nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[hidden_layer_size * (input_layer_size + 1):].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]

    # recode the labels (1..10) as vectors of 0s and 1s
    Y = np.zeros((m, num_labels))
    for i in range(m):
        Y[i, y[i] - 1] = 1

    a1 = np.hstack((np.ones((m, 1)), X))
    z2 = a1.dot(Theta1.T)
    a2 = np.hstack((np.ones((m, 1)), sigmoid(z2)))
    z3 = a2.dot(Theta2.T)
    a3 = sigmoid(z3)

    J = np.sum(-Y * np.log(a3) - (1 - Y) * np.log(1 - a3)) / m
    J = J + lmbda / (2.0 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    d3 = a3 - Y
    d2 = d3.dot(Theta2[:, 1:]) * sigmoidGradient(z2)
    Theta1_grad = d2.T.dot(a1) / m
    Theta2_grad = d3.T.dot(a2) / m
    Theta1_grad[:, 1:] += lmbda / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lmbda / m * Theta2[:, 1:]

    grad = np.concatenate([Theta1_grad.flatten(), Theta2_grad.flatten()])
    return J, grad


## ================ Part 3: Compute Cost (Feedforward) ================
lmbda = 0
J, _ = nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lmbda)
print('Cost at parameters (loaded from ex4weights): %f \n(this value should be about 0.287629)' % J)

## =================== Part 8: Training NN ===================
initial_nn_params = np.random.rand(nn_params.size) * 0.24 - 0.12
res = opt.minimize(nnCostFunction, initial_nn_params, args=(input_layer_size, hidden_layer_size, num_labels, X, y, 1),
                   method='CG', jac=True, options={'maxiter': 50})
plt.imshow(res.x[:400].reshape(20, 20))
plt.show()
