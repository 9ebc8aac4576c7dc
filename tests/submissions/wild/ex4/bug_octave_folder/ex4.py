## Machine Learning Online Class - Exercise 4 Neural Network Learning
import numpy as np
import scipy.io as sio

from checkNNGradients import checkNNGradients
from nnCostFunction import nnCostFunction

input_layer_size = 400
hidden_layer_size = 25
num_labels = 10

print('Loading and Visualizing Data ...')
data = sio.loadmat('ex4data1.mat')
X, y = data['X'], data['y'].ravel()
weights = sio.loadmat('ex4weights.mat')
nn_params = np.concatenate([weights['Theta1'].ravel(order='F'), weights['Theta2'].ravel(order='F')])

J, _ = nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, 0)
print('Cost at parameters (loaded from ex4weights): %f (this value should be about 0.287629)' % J)

checkNNGradients(3)
