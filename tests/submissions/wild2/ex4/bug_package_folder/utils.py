import numpy as np


def add_bias(a):
    return np.hstack([np.ones((a.shape[0], 1)), a])


def one_hot(y, num_labels):
    return np.eye(num_labels)[y.reshape(-1)]


def roll(nn_params, input_layer_size, hidden_layer_size, num_labels):
    split = hidden_layer_size * (input_layer_size + 1)
    return (nn_params[:split].reshape(hidden_layer_size, input_layer_size + 1),
            nn_params[split:].reshape(num_labels, hidden_layer_size + 1))


def unroll(*mats):
    return np.concatenate([m.ravel() for m in mats])
