# -*- coding: utf-8 -*-
import numpy as np
from sklearn.utils import resample


class TwoLayerNet:
    """input - fully connected layer - ReLU - fully connected layer - softmax"""

    def __init__(self, input_size, hidden_size, output_size, std=None, random_state=None):
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = output_size
        if std is None:
            self.stds = {'W1': 1.0 / np.sqrt(input_size), 'W2': 1.0 / np.sqrt(hidden_size)}
        else:
            self.stds = {'W1': std, 'W2': std}
        self.gen = np.random.RandomState(random_state)
        self.params = {}
        self.params['W1'] = self.stds['W1'] * self.gen.randn(input_size, hidden_size)
        self.params['b1'] = np.zeros((1, hidden_size))
        self.params['W2'] = self.stds['W2'] * self.gen.randn(hidden_size, output_size)
        self.params['b2'] = np.zeros((1, output_size))

    def loss(self, X, y=None, reg=0.0):
        W1, b1 = self.params['W1'], self.params['b1']
        W2, b2 = self.params['W2'], self.params['b2']
        N, D = X.shape
        C = self.output_size

        X_output1 = np.dot(X, W1) + b1
        mask = X_output1 < 0
        X_output_relu = X_output1.copy()
        X_output_relu[mask] = 0
        scores = np.dot(X_output_relu, W2) + b2
        if y is None:
            return scores

        # softmax loss, ½·reg·ΣW² as in the 2016 notes
        scores = scores - np.max(scores, axis=1)[:, None]
        Z = np.log(np.sum(np.exp(scores), axis=1))
        scores = scores - Z[:, None]
        loss = -np.mean(scores[np.arange(N), y])
        loss += 0.5 * reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
        probas = np.exp(scores)

        grads = {}
        grad_output2 = (probas - np.eye(C)[y]) / N                       # [B, C]
        grads['W2'] = np.dot(X_output_relu.T, grad_output2) + reg * W2   # [H, C]
        grads['b2'] = np.sum(grad_output2, axis=0, keepdims=True)        # [1, C]
        grad_output1 = np.dot(grad_output2, W2.T)                        # [B, H]
        grad_output1[mask] = 0.0
        grads['W1'] = np.dot(X.T, grad_output1) + reg * W1               # [D, H]
        grads['b1'] = np.sum(grad_output1, axis=0)[None, :]              # [1, H]
        return loss, grads

    def train(self, X, y, reg=0.0, learning_rate=1e-3, n_epochs=10, batch_size=200):
        for epoch in range(n_epochs):
            X_batch, y_batch = resample(X, y, n_samples=batch_size, random_state=epoch)
            loss, grads = self.loss(X_batch, y=y_batch, reg=reg)
            for name in self.params:
                self.params[name] -= learning_rate * grads[name]
