from .nn_cost import nn_cost_function
from .activations import sigmoid, sigmoid_gradient
