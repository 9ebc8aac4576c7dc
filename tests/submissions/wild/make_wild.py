"""Writes the generated part of the in-the-wild corpus: the notebooks, and every buggy variant.

Run from this folder: ``python make_wild.py``. The correct submissions are hand-written files in
``ex4/`` and ``two_layer/``, each in a style seen in public student code; a buggy variant is its
style's correct file with one classic mistake typed in (each patch must match exactly once, so a
patch that no longer applies fails loudly). ``manifest.toml`` says what each must get.
"""

import json
from pathlib import Path

HERE = Path(__file__).parent

# ---- notebooks ---------------------------------------------------------------------------

EX4_NOTEBOOK = [
    ("markdown", "# Programming Exercise 4: Neural Networks Learning\n\nPython version of the exercise."),
    ("code", "%matplotlib inline\n%load_ext autoreload\n%autoreload 2\nimport os\nimport numpy as np\n"
             "from matplotlib import pyplot\nfrom scipy import optimize\nfrom scipy.io import loadmat"),
    ("code", "!ls Data"),
    ("code", "#  training data stored in arrays X, y\ndata = loadmat(os.path.join('Data', 'ex4data1.mat'))\n"
             "X, y = data['X'], data['y'].ravel()\n# set the zero digit to 0, rather than its mapped 10 in this dataset\n"
             "y[y == 10] = 0\nm = y.size"),
    ("code", "def sigmoid(z):\n    \"\"\"Computes the sigmoid of z.\"\"\"\n    return 1.0 / (1.0 + np.exp(-z))\n\n\n"
             "def sigmoidGradient(z):\n    g = sigmoid(z)\n    return g * (1 - g)"),
    ("markdown", "## 1.3 Feedforward and cost function"),
    ("code", "def nnCostFunction(nn_params,\n                   input_layer_size,\n                   hidden_layer_size,\n"
             "                   num_labels,\n                   X, y, lambda_=0.0):\n"
             "    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],\n"
             "                        (hidden_layer_size, (input_layer_size + 1)))\n"
             "    Theta2 = np.reshape(nn_params[(hidden_layer_size * (input_layer_size + 1)):],\n"
             "                        (num_labels, (hidden_layer_size + 1)))\n"
             "    m = y.size\n\n"
             "    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)\n"
             "    z2 = a1 @ Theta1.T\n"
             "    a2 = np.concatenate([np.ones((m, 1)), sigmoid(z2)], axis=1)\n"
             "    a3 = sigmoid(a2 @ Theta2.T)\n"
             "    y_matrix = np.eye(num_labels)[y]\n\n"
             "    J = (-1 / m) * np.sum(y_matrix * np.log(a3) + (1 - y_matrix) * np.log(1 - a3))\n"
             "    J += (lambda_ / (2 * m)) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))\n\n"
             "    delta_3 = a3 - y_matrix\n"
             "    delta_2 = (delta_3 @ Theta2)[:, 1:] * sigmoidGradient(z2)\n"
             "    Theta1_grad = delta_2.T @ a1 / m\n"
             "    Theta2_grad = delta_3.T @ a2 / m\n"
             "    Theta1_grad[:, 1:] += (lambda_ / m) * Theta1[:, 1:]\n"
             "    Theta2_grad[:, 1:] += (lambda_ / m) * Theta2[:, 1:]\n\n"
             "    grad = np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])\n"
             "    return J, grad"),
    ("code", "lambda_ = 0\nJ, _ = nnCostFunction(nn_params, 400, 25, 10, X, y, lambda_)\n"
             "print('Cost at parameters (loaded from ex4weights): %.6f ' % J)"),
    ("code", "options = {'maxiter': 100}\nres = optimize.minimize(lambda p: nnCostFunction(p, 400, 25, 10, X, y, 1.0),\n"
             "                        np.zeros(10285), jac=True, method='TNC', options=options)\npyplot.show()"),
]

TWO_LAYER_NOTEBOOK = [
    ("markdown", "# Implementing a Neural Network\nIn this exercise we will develop a neural network with "
                 "fully-connected layers to perform classification."),
    ("code", "# A bit of setup\nimport numpy as np\nimport matplotlib.pyplot as plt\n\n"
             "from cs231n.classifiers.neural_net import TwoLayerNet\n\n%matplotlib inline\n"
             "plt.rcParams['figure.figsize'] = (10.0, 8.0) # set default size of plots\n\n"
             "# for auto-reloading external modules\n%load_ext autoreload\n%autoreload 2"),
    ("code", "!pip install future"),
    ("code", "class TwoLayerNet(object):\n"
             "    def __init__(self, input_size, hidden_size, output_size, std=1e-4):\n"
             "        self.params = {}\n"
             "        self.params['W1'] = std * np.random.randn(input_size, hidden_size)\n"
             "        self.params['b1'] = np.zeros(hidden_size)\n"
             "        self.params['W2'] = std * np.random.randn(hidden_size, output_size)\n"
             "        self.params['b2'] = np.zeros(output_size)\n\n"
             "    def loss(self, X, y=None, reg=0.0):\n"
             "        W1, b1 = self.params['W1'], self.params['b1']\n"
             "        W2, b2 = self.params['W2'], self.params['b2']\n"
             "        N, D = X.shape\n"
             "        h1 = np.maximum(0, X @ W1 + b1)\n"
             "        scores = h1 @ W2 + b2\n"
             "        if y is None:\n"
             "            return scores\n"
             "        scores -= scores.max(axis=1, keepdims=True)\n"
             "        probs = np.exp(scores)\n"
             "        probs /= probs.sum(axis=1, keepdims=True)\n"
             "        loss = -np.log(probs[np.arange(N), y]).mean()\n"
             "        loss += reg * (np.sum(W1 * W1) + np.sum(W2 * W2))\n"
             "        grads = {}\n"
             "        dscores = probs\n"
             "        dscores[np.arange(N), y] -= 1\n"
             "        dscores /= N\n"
             "        grads['W2'] = h1.T @ dscores + 2 * reg * W2\n"
             "        grads['b2'] = dscores.sum(axis=0)\n"
             "        dh1 = dscores @ W2.T\n"
             "        dh1[h1 <= 0] = 0\n"
             "        grads['W1'] = X.T @ dh1 + 2 * reg * W1\n"
             "        grads['b1'] = dh1.sum(axis=0)\n"
             "        return loss, grads"),
    ("code", "input_size = 4\nhidden_size = 10\nnum_classes = 3\nnum_inputs = 5\n\n"
             "def init_toy_model():\n    np.random.seed(0)\n"
             "    return TwoLayerNet(input_size, hidden_size, num_classes, std=1e-1)\n\nnet = init_toy_model()"),
    ("code", "loss, _ = net.loss(X, y, reg=0.05)\ncorrect_loss = 1.30378789133\n"
             "print('Difference between your loss and correct loss:')\nprint(np.sum(np.abs(loss - correct_loss)))"),
]


def notebook(cells) -> str:
    """An nbformat-4 notebook with these cells, as Jupyter writes it (sources split into lines)."""
    out = []
    for n, (kind, text) in enumerate(cells):
        lines = text.splitlines(keepends=True)
        cell = {"cell_type": kind, "metadata": {}, "source": lines}
        if kind == "code":
            cell.update(execution_count=n, outputs=[])
        out.append(cell)
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.11.7"}}
    return json.dumps({"cells": out, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


# ---- buggy variants: (correct file, buggy file, [(old, new), ...]) ------------------------

BUGS = [
    ("ex4/octave_loops.py", "ex4/bug_octave_loops.py", [  # the bias column regularized too
        ("Theta1_grad[:, 1:] = Theta1_grad[:, 1:] + (Lambda / m) * Theta1[:, 1:]", "Theta1_grad = Theta1_grad + (Lambda / m) * Theta1"),
        ("Theta2_grad[:, 1:] = Theta2_grad[:, 1:] + (Lambda / m) * Theta2[:, 1:]", "Theta2_grad = Theta2_grad + (Lambda / m) * Theta2")]),
    ("ex4/fortran_vectorized.py", "ex4/bug_fortran_vectorized.py", [  # the gradient is not divided by m
        ("Theta1_grad = Delta1 / m + (lambda_reg / m) * reg1", "Theta1_grad = Delta1 + (lambda_reg / m) * reg1"),
        ("Theta2_grad = Delta2 / m + (lambda_reg / m) * reg2", "Theta2_grad = Delta2 + (lambda_reg / m) * reg2")]),
    ("ex4/separate_thetas.py", "ex4/bug_separate_thetas.py", [  # σ′ applied to the activation instead of z
        ("d2 = d3.dot(Theta2[:, 1:]) * sigmoidGradient(z2)", "d2 = d3.dot(Theta2[:, 1:]) * sigmoidGradient(a2[:, 1:])")]),
    ("ex4/split_returns.py", "ex4/bug_split_returns.py", [  # regularization forgotten in the gradient
        ("    Theta1_grad[:, 1:] = Theta1_grad[:, 1:] + l / m * Theta1[:, 1:]\n"
         "    Theta2_grad[:, 1:] = Theta2_grad[:, 1:] + l / m * Theta2[:, 1:]\n", "")]),
    ("ex4/scipy_expit.py", "ex4/bug_scipy_expit.py", [  # the cost is not averaged over the examples
        ("J = (-1 / m) * np.sum(", "J = -np.sum(")]),
    ("ex4/pandas_dummies.py", "ex4/bug_pandas_dummies.py", [  # no derivative of the activation
        ("delta2 = (delta3 @ Theta2[:, 1:]) * sigmoidGradient(z2)", "delta2 = delta3 @ Theta2[:, 1:]")]),
    ("ex4/sklearn_onehot.py", "ex4/bug_sklearn_onehot.py", [  # λ/2 instead of λ/(2m), λ instead of λ/m
        ("J += (float(learning_rate) / (2 * m))", "J += (float(learning_rate) / 2)"),
        ("(theta1[:, 1:] * learning_rate) / m", "theta1[:, 1:] * learning_rate"),
        ("(theta2[:, 1:] * learning_rate) / m", "theta2[:, 1:] * learning_rate")]),
    ("ex4/matplotlib_template.py", "ex4/bug_matplotlib_template.py", [  # y − h instead of h − y
        ("delta_3 = a3 - y_matrix", "delta_3 = y_matrix - a3")]),
    ("ex4/blog_backprop.py", "ex4/bug_blog_backprop.py", [  # regularization of the gradient over the bias column too
        ("delta1[:, 1:] = delta1[:, 1:] + (theta1[:, 1:] * learning_rate) / m", "delta1 = delta1 + (theta1 * learning_rate) / m"),
        ("delta2[:, 1:] = delta2[:, 1:] + (theta2[:, 1:] * learning_rate) / m", "delta2 = delta2 + (theta2 * learning_rate) / m")]),
    ("ex4/python2_script.py", "ex4/bug_python2_script.py", [  # the gradient is not divided by m
        ("Theta1_grad = np.dot(d2.T, a1) / m", "Theta1_grad = np.dot(d2.T, a1)"),
        ("Theta2_grad = np.dot(d3.T, a2) / m", "Theta2_grad = np.dot(d3.T, a2)")]),
    ("ex4/labels_present.py", "ex4/bug_labels_present.py", [  # σ′ written from the activation, applied to z
        ("d2 = (d3 @ Theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))", "d2 = (d3 @ Theta2[:, 1:]) * z2 * (1 - z2)")]),
    ("ex4/column_y.py", "ex4/bug_column_y.py", [  # the bias gradient is not averaged
        ("    Theta1_grad = delta2.T.dot(a1) / m\n    Theta2_grad = delta3.T.dot(a2) / m\n",
         "    Theta1_grad = delta2.T.dot(a1) / m\n    Theta2_grad = delta3.T.dot(a2) / m\n"
         "    Theta1_grad[:, 0] *= m\n    Theta2_grad[:, 0] *= m\n")]),
    ("ex4/octave_folder/sigmoidGradient.py", "ex4/bug_octave_folder/sigmoidGradient.py", [  # σ′ of a value that is already σ
        ("g = sigmoid(z) * (1 - sigmoid(z))", "g = z * (1 - z)")]),
    ("two_layer/class_template.py", "two_layer/bug_class_template.py", [  # reg·W instead of 2·reg·W
        ("grads['W2'] = hidden.T.dot(dscores) + 2 * reg * W2", "grads['W2'] = hidden.T.dot(dscores) + reg * W2"),
        ("grads['W1'] = X.T.dot(dhidden) + 2 * reg * W1", "grads['W1'] = X.T.dot(dhidden) + reg * W1")]),
    ("two_layer/class_half_reg.py", "two_layer/bug_class_half_reg.py", [  # the ReLU's gate forgotten
        ("        grad_output1[mask] = 0.0\n", "")]),
    ("two_layer/function_model.py", "two_layer/bug_function_model.py", [  # the biases regularized too
        ("grads['b2'] = dscores.sum(axis=0)", "grads['b2'] = dscores.sum(axis=0) + reg * b2"),
        ("grads['b1'] = dhidden.sum(axis=0)", "grads['b1'] = dhidden.sum(axis=0) + reg * b1")]),
    ("two_layer/separate_arrays.py", "two_layer/bug_separate_arrays.py", [  # the sign of the softmax gradient
        ("dscores[np.arange(N), y] -= 1\n    dscores /= N", "dscores[np.arange(N), y] -= 1\n    dscores /= -N")]),
    ("two_layer/python2_class.py", "two_layer/bug_python2_class.py", [  # the gradient not averaged over the batch
        ("    p /= N\n", "")]),
]

NOTEBOOK_BUGS = [
    ("ex4/notebook.ipynb", "ex4/bug_notebook.ipynb", EX4_NOTEBOOK,  # the cost's regularization over the bias too
     ("(np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))", "(np.sum(Theta1 ** 2) + np.sum(Theta2 ** 2))")),
    ("two_layer/notebook.ipynb", "two_layer/bug_notebook.ipynb", TWO_LAYER_NOTEBOOK,  # the data loss summed, not averaged
     ("loss = -np.log(probs[np.arange(N), y]).mean()", "loss = -np.log(probs[np.arange(N), y]).sum()")),
]


def _patched(text: str, patches, where: str) -> str:
    for old, new in patches:
        if text.count(old) != 1:
            raise SystemExit(f"{where}: the patch {old[:60]!r} matches {text.count(old)} times, not once")
        text = text.replace(old, new)
    return text


def main() -> None:
    for correct, buggy, patches in BUGS:
        src = HERE / correct
        dst = HERE / buggy
        if src.parent.name.endswith("_folder"):  # a folder submission: copy the whole folder, patch one file
            dst.parent.mkdir(exist_ok=True)
            for sibling in src.parent.glob("*.py"):
                (dst.parent / sibling.name).write_text(sibling.read_text())
        dst.write_text(_patched(src.read_text(), patches, buggy))
    for correct, buggy, cells, patch in NOTEBOOK_BUGS:
        (HERE / correct).write_text(notebook(cells))
        patched = [(kind, _patched(text, [patch], buggy) if patch[0] in text else text) for kind, text in cells]
        (HERE / buggy).write_text(notebook(patched))


if __name__ == "__main__":
    main()
