"""Two-layer net as plain functions: affine - relu - affine - softmax."""
import numpy as np


def softmax_loss(scores, y):
    shifted = scores - np.max(scores, axis=1, keepdims=True)
    log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    N = scores.shape[0]
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1
    dscores /= -N
    return loss, dscores


def two_layer_loss(W1, b1, W2, b2, X, y, reg):
    h_pre = X @ W1 + b1
    h = np.maximum(0, h_pre)
    scores = h @ W2 + b2
    loss, dscores = softmax_loss(scores, y)
    loss += reg * (np.sum(W1 ** 2) + np.sum(W2 ** 2))

    dW2 = h.T @ dscores + 2 * reg * W2
    db2 = dscores.sum(axis=0)
    dh = dscores @ W2.T
    dh_pre = dh * (h_pre > 0)
    dW1 = X.T @ dh_pre + 2 * reg * W1
    db1 = dh_pre.sum(axis=0)
    return loss, {'W1': dW1, 'b1': db1, 'W2': dW2, 'b2': db2}
