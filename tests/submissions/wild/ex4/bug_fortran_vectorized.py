import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def sigmoid_gradient(z):
    s = sigmoid(z)
    return s * (1 - s)


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_reg):
    """Vectorized cost and gradient; nn_params = [Theta1(:); Theta2(:)] (Fortran order), y in 1..K."""
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape((hidden_layer_size, input_layer_size + 1), order='F')
    Theta2 = nn_params[n1:].reshape((num_labels, hidden_layer_size + 1), order='F')
    m = len(y)

    # one-hot, labels are 1-based
    Y = np.eye(num_labels)[y - 1]

    A1 = np.c_[np.ones(m), X]
    Z2 = A1 @ Theta1.T
    A2 = np.c_[np.ones(m), sigmoid(Z2)]
    H = sigmoid(A2 @ Theta2.T)

    cost = -(Y * np.log(H) + (1 - Y) * np.log(1 - H)).sum() / m
    penalty = (Theta1[:, 1:] ** 2).sum() + (Theta2[:, 1:] ** 2).sum()
    J = cost + lambda_reg * penalty / (2 * m)

    D3 = H - Y
    D2 = (D3 @ Theta2[:, 1:]) * sigmoid_gradient(Z2)
    Delta1 = D2.T @ A1
    Delta2 = D3.T @ A2

    reg1 = np.c_[np.zeros(hidden_layer_size), Theta1[:, 1:]]
    reg2 = np.c_[np.zeros(num_labels), Theta2[:, 1:]]
    Theta1_grad = Delta1 + (lambda_reg / m) * reg1
    Theta2_grad = Delta2 + (lambda_reg / m) * reg2

    grad = np.concatenate([Theta1_grad.ravel(order='F'), Theta2_grad.ravel(order='F')])
    return J, grad
