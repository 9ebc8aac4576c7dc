import numpy as np
import matplotlib.pyplot as plt
from scipy.optimize import minimize


class NeuralNetwork:
    """A 3-layer network (input, one hidden layer, output) for the digits of ex4."""

    def __init__(self, input_layer_size=400, hidden_layer_size=25, num_labels=10):
        self.input_layer_size = input_layer_size
        self.hidden_layer_size = hidden_layer_size
        self.num_labels = num_labels

    @staticmethod
    def sigmoid(z):
        return 1.0 / (1.0 + np.exp(-z))

    def sigmoid_gradient(self, z):
        g = self.sigmoid(z)
        return g * (1 - g)

    def unroll(self, nn_params):
        n1 = self.hidden_layer_size * (self.input_layer_size + 1)
        Theta1 = nn_params[:n1].reshape(self.hidden_layer_size, self.input_layer_size + 1)
        Theta2 = nn_params[n1:].reshape(self.num_labels, self.hidden_layer_size + 1)
        return Theta1, Theta2

    def cost_function(self, nn_params, X, y, lambda_):
        Theta1, Theta2 = self.unroll(nn_params)
        m = X.shape[0]
        Y = np.eye(self.num_labels)[y.astype(int) - 1]

        a1 = np.c_[np.ones(m), X]
        z2 = a1.dot(Theta1.T)
        a2 = np.c_[np.ones(m), self.sigmoid(z2)]
        a3 = self.sigmoid(a2.dot(Theta2.T))

        J = (-1.0 / m) * np.sum(Y * np.log(a3) + (1 - Y) * np.log(1 - a3))
        J += (lambda_ / (2.0 * m)) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

        delta3 = a3 - Y
        delta2 = delta3.dot(Theta2[:, 1:]) * self.sigmoid_gradient(z2)
        Theta1_grad = delta2.T.dot(a1) / m
        Theta2_grad = delta3.T.dot(a2) / m
        Theta1_grad[:, 1:] += (lambda_ / m) * Theta1[:, 1:]
        Theta2_grad[:, 1:] += (lambda_ / m) * Theta2[:, 1:]
        return J, np.hstack((Theta1_grad.ravel(), Theta2_grad.ravel()))

    def train(self, X, y, lambda_=1.0, maxiter=50):
        eps = 0.12
        n = self.hidden_layer_size * (self.input_layer_size + 1) + self.num_labels * (self.hidden_layer_size + 1)
        initial = np.random.rand(n) * 2 * eps - eps
        res = minimize(self.cost_function, initial, args=(X, y, lambda_), jac=True, method='TNC', options={'maxiter': maxiter})
        self.Theta1, self.Theta2 = self.unroll(res.x)
        return self

    def predict(self, X):
        m = X.shape[0]
        h1 = self.sigmoid(np.c_[np.ones(m), X].dot(self.Theta1.T))
        h2 = self.sigmoid(np.c_[np.ones(m), h1].dot(self.Theta2.T))
        return np.argmax(h2, axis=1) + 1

    def plot_hidden(self):
        plt.imshow(self.Theta1[:, 1:].reshape(-1, 20, 20)[0])
        plt.show()
