import numpy as np
import matplotlib.pyplot as plt


def init_two_layer_model(input_size, hidden_size, output_size):
  # initialize a model
  model = {}
  model['W1'] = 0.00001 * np.random.randn(input_size, hidden_size)
  model['b1'] = np.zeros(hidden_size)
  model['W2'] = 0.00001 * np.random.randn(hidden_size, output_size)
  model['b2'] = np.zeros(output_size)
  return model


def two_layer_net(X, model, y=None, reg=0.0):
  """
  Compute the loss and gradients for a two layer fully connected neural network.
  Softmax loss and L2 regularization of the weight matrices (no regularization on
  the biases); "multiply the regularization loss by 0.5" so that results match ours.
  """
  # unpack variables from the model dictionary
  W1, b1, W2, b2 = model['W1'], model['b1'], model['W2'], model['b2']
  N, D = X.shape

  # compute the forward pass
  first = X.dot(W1) + b1
  hidden = np.maximum(first, 0)
  scores = hidden.dot(W2) + b2
  if y is None:
    return scores

  # compute the loss
  shifted = scores - scores.max()
  probs = np.exp(shifted) / np.sum(np.exp(shifted), axis=1, keepdims=True)
  data_loss = -np.sum(np.log(probs[np.arange(N), y])) / N
  reg_loss = 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
  loss = data_loss + reg_loss

  # compute the gradients
  grads = {}
  dscores = probs.copy()
  dscores[np.arange(N), y] -= 1
  dscores /= N
  grads['W2'] = hidden.T.dot(dscores) + reg * W2
  grads['b2'] = dscores.sum(axis=0)
  dhidden = dscores.dot(W2.T) * (first > 0)
  grads['W1'] = X.T.dot(dhidden) + reg * W1
  grads['b1'] = dhidden.sum(axis=0)

  return loss, grads
