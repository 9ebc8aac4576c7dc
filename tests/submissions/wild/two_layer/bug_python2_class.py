import numpy as np
import matplotlib.pyplot as plt


class TwoLayerNet(object):

  def __init__(self, input_size, hidden_size, output_size, std=1e-4):
    self.params = {}
    self.params['W1'] = std * np.random.randn(input_size, hidden_size)
    self.params['b1'] = np.zeros(hidden_size)
    self.params['W2'] = std * np.random.randn(hidden_size, output_size)
    self.params['b2'] = np.zeros(output_size)

  def loss(self, X, y=None, reg=0.0):
    W1, b1 = self.params['W1'], self.params['b1']
    W2, b2 = self.params['W2'], self.params['b2']
    N, D = X.shape

    z1 = X.dot(W1) + b1
    a1 = np.maximum(0, z1)
    scores = a1.dot(W2) + b2
    if y is None:
      return scores

    scores -= np.max(scores, axis=1).reshape(N, 1)
    correct = scores[np.arange(N), y]
    loss = np.sum(np.log(np.sum(np.exp(scores), axis=1)) - correct) / N
    loss += 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))

    grads = {}
    p = np.exp(scores) / np.sum(np.exp(scores), axis=1).reshape(N, 1)
    p[np.arange(N), y] -= 1
    grads['W2'] = a1.T.dot(p) + reg * W2
    grads['b2'] = np.sum(p, axis=0)
    da1 = p.dot(W2.T)
    da1[z1 <= 0] = 0
    grads['W1'] = X.T.dot(da1) + reg * W1
    grads['b1'] = np.sum(da1, axis=0)
    return loss, grads

  def train(self, X, y, learning_rate=1e-3, reg=1e-5, num_iters=100, batch_size=200, verbose=False):
    for it in xrange(num_iters):
      idx = np.random.choice(X.shape[0], batch_size)
      loss, grads = self.loss(X[idx], y=y[idx], reg=reg)
      for k in self.params:
        self.params[k] -= learning_rate * grads[k]
      if verbose and it % 100 == 0:
        print 'iteration %d / %d: loss %f' % (it, num_iters, loss)
