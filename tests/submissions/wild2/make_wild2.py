"""Writes the generated part of the second in-the-wild corpus: files whose bytes matter (a BOM, CRLF
line ends, Latin-1 comments, tabs mixed with spaces), the notebooks, and every buggy variant.

Run from this folder: ``python make_wild2.py``. A buggy variant is its style's correct file with one
classic mistake typed in (each patch must match exactly once). ``manifest.toml`` says what each
submission must get.
"""

import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent

# ---- files whose bytes are the point --------------------------------------------------------

BOM_CRLF = '''\
# Réseau de neurones -- exercice 4 (fonction de coût et rétropropagation)
import numpy as np


def sigmoide(z):
    """La fonction logistique."""
    return 1.0 / (1.0 + np.exp(-z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    # dérouler les paramètres
    Theta1 = nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[hidden_layer_size * (input_layer_size + 1):].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    Y = np.eye(num_labels)[y - 1]  # étiquettes 1..K

    a1 = np.hstack([np.ones((m, 1)), X])
    z2 = a1 @ Theta1.T
    a2 = np.hstack([np.ones((m, 1)), sigmoide(z2)])
    h = sigmoide(a2 @ Theta2.T)

    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))

    d3 = h - Y
    d2 = (d3 @ Theta2[:, 1:]) * sigmoide(z2) * (1 - sigmoide(z2))
    G1 = d2.T @ a1 / m
    G2 = d3.T @ a2 / m
    G1[:, 1:] += lambda_ / m * Theta1[:, 1:]
    G2[:, 1:] += lambda_ / m * Theta2[:, 1:]
    return J, np.concatenate([G1.ravel(), G2.ravel()])
'''

# Python 2, Latin-1 comments with no coding line, a body indented with tabs in a file of spaces,
# and Python 2's integer division in the unrolling (``/`` of two ints).
LATIN1_TABS = '''\
# Rede neural -- exercício 4 (custo e gradiente)
import numpy as np

def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))

def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lamb):
    # número de parâmetros de Theta1
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape((n1 / (input_layer_size + 1), input_layer_size + 1))
    Theta2 = nn_params[n1:].reshape((num_labels, hidden_layer_size + 1))
    m = X.shape[0]
    Y = np.zeros((m, num_labels))
    for i in xrange(m):
\tY[i, y[i]] = 1
    a1 = np.c_[np.ones(m), X]
    z2 = a1.dot(Theta1.T)
    a2 = np.c_[np.ones(m), sigmoid(z2)]
    h = sigmoid(a2.dot(Theta2.T))
    J = np.sum(-Y * np.log(h) - (1 - Y) * np.log(1 - h)) / m
    J = J + lamb / (2.0 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    print "J =", J
    d3 = h - Y
    d2 = d3.dot(Theta2[:, 1:]) * sigmoid(z2) * (1 - sigmoid(z2))
    grad1 = d2.T.dot(a1) / m
    grad2 = d3.T.dot(a2) / m
    grad1[:, 1:] = grad1[:, 1:] + lamb / float(m) * Theta1[:, 1:]
    grad2[:, 1:] = grad2[:, 1:] + lamb / float(m) * Theta2[:, 1:]
    return J, np.concatenate((grad1.ravel(), grad2.ravel()))
'''

BYTES = [
    ("ex4/bom_crlf.py", BOM_CRLF, lambda text: b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8")),
    ("ex4/latin1_tabs.py", LATIN1_TABS, lambda text: text.encode("latin-1")),
]

# ---- notebooks ------------------------------------------------------------------------------

NOTEBOOK_DUPES = [
    ("markdown", "# Neural Networks Learning\nMy solution of exercise 4."),
    ("code", "!pip install numpy scipy matplotlib\n%matplotlib inline\nimport numpy as np\nimport matplotlib.pyplot as plt\n"
             "from scipy.io import loadmat"),
    ("code", "data = loadmat('ex4data1.mat')\nX, y = data['X'], data['y'].ravel()\nm, n = X.shape\nprint(m, n)"),
    ("code", "def sigmoid(z):\n    return 1 / (1 + np.exp(-z))"),
    ("markdown", "First try: only the cost (feedforward)."),
    ("code", "def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):\n"
             "    Theta1 = nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape(hidden_layer_size, -1)\n"
             "    Theta2 = nn_params[hidden_layer_size * (input_layer_size + 1):].reshape(num_labels, -1)\n"
             "    m = X.shape[0]\n"
             "    Y = np.eye(num_labels)[y - 1]\n"
             "    a2 = sigmoid(np.c_[np.ones(m), X] @ Theta1.T)\n"
             "    h = sigmoid(np.c_[np.ones(m), a2] @ Theta2.T)\n"
             "    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m\n"
             "    return J, np.zeros(nn_params.shape)"),
    ("code", "nnCostFunction(np.zeros(10285), 400, 25, 10, X, y)"),
    ("markdown", "## Backpropagation\nThe full version, with regularization."),
    ("code", "def sigmoidGradient(z):\n    return sigmoid(z) * (1 - sigmoid(z))\n\n\n"
             "def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):\n"
             "    Theta1 = nn_params[:hidden_layer_size * (input_layer_size + 1)].reshape(hidden_layer_size, -1)\n"
             "    Theta2 = nn_params[hidden_layer_size * (input_layer_size + 1):].reshape(num_labels, -1)\n"
             "    m = X.shape[0]\n"
             "    Y = np.eye(num_labels)[y - 1]\n"
             "    a1 = np.c_[np.ones(m), X]\n"
             "    z2 = a1 @ Theta1.T\n"
             "    a2 = np.c_[np.ones(m), sigmoid(z2)]\n"
             "    h = sigmoid(a2 @ Theta2.T)\n"
             "    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m\n"
             "    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))\n"
             "    d3 = h - Y\n"
             "    d2 = (d3 @ Theta2[:, 1:]) * sigmoidGradient(z2)\n"
             "    g1 = d2.T @ a1 / m\n"
             "    g2 = d3.T @ a2 / m\n"
             "    g1[:, 1:] += lambda_ / m * Theta1[:, 1:]\n"
             "    g2[:, 1:] += lambda_ / m * Theta2[:, 1:]\n"
             "    return J, np.concatenate([g1.ravel(), g2.ravel()])"),
    ("code", "%%time\nfrom scipy.optimize import minimize\nres = minimize(nnCostFunction, np.random.rand(10285) * 0.24 - 0.12,\n"
             "               args=(400, 25, 10, X, y, 1.0), jac=True, method='TNC', options={'maxiter': 100})"),
    ("code", "plt.imshow(res.x[:10025].reshape(25, 401)[:, 1:][0].reshape(20, 20))"),
]


def notebook(cells) -> str:
    """An nbformat-4 notebook with these cells, as Jupyter writes it (sources split into lines)."""
    out = []
    for n, (kind, text) in enumerate(cells):
        cell = {"cell_type": kind, "metadata": {}, "source": text.splitlines(keepends=True)}
        if kind == "code":
            cell.update(execution_count=n, outputs=[])
        out.append(cell)
    meta = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python", "version": "3.8.5"}}
    return json.dumps({"cells": out, "metadata": meta, "nbformat": 4, "nbformat_minor": 4}, indent=1) + "\n"


NOTEBOOKS = [("ex4/notebook_redefined.ipynb", NOTEBOOK_DUPES)]

# ---- buggy variants: (correct file or folder, buggy one, file patched in a folder, [(old, new), ...]) ----

BUGS = [
    ("ex4/script_loadmat.py", "ex4/bug_script_loadmat.py", None, [  # the bias column regularized in the cost
        ("(np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))", "(np.sum(Theta1 ** 2) + np.sum(Theta2 ** 2))")]),
    ("ex4/sizes_as_defaults.py", "ex4/bug_sizes_as_defaults.py", None, [  # y − h instead of h − y
        ("delta3 = h - y_k", "delta3 = y_k - h")]),
    ("ex4/class_network.py", "ex4/bug_class_network.py", None, [  # σ′ of the activation, not of z
        ("delta2 = delta3.dot(Theta2[:, 1:]) * self.sigmoid_gradient(z2)",
         "delta2 = delta3.dot(Theta2[:, 1:]) * self.sigmoid_gradient(a2[:, 1:])")]),
    ("ex4/cost_and_grad_apart.py", "ex4/bug_cost_and_grad_apart.py", None, [  # the gradient not averaged
        ("    delta1 /= m\n    delta2 /= m\n", "")]),
    ("ex4/dict_grads.py", "ex4/bug_dict_grads.py", None, [  # the biases regularized in the gradient
        ("grads['Theta1'][:, 1:] += lambda_ / m * Theta1[:, 1:]", "grads['Theta1'] += lambda_ / m * Theta1"),
        ("grads['Theta2'][:, 1:] += lambda_ / m * Theta2[:, 1:]", "grads['Theta2'] += lambda_ / m * Theta2")]),
    ("ex4/list_grads.py", "ex4/bug_list_grads.py", None, [  # regularization forgotten in the gradient
        ("    Theta1_grad[:, 1:] += Lambda / m * Theta1[:, 1:]\n    Theta2_grad[:, 1:] += Lambda / m * Theta2[:, 1:]\n", "")]),
    ("ex4/package_folder", "ex4/bug_package_folder", "activations.py", [  # σ′ as σ(z)·(1 − z)
        ("return s * (1.0 - s)", "return s * (1.0 - z)")]),
    ("ex4/python2_matrix.py", "ex4/bug_python2_matrix.py", None, [  # λ/m in the cost instead of λ/(2m)
        ("J += float(lamb) / (2 * m) *", "J += float(lamb) / m *")]),
    ("ex4/data_first_onehot.py", "ex4/bug_data_first_onehot.py", None, [  # the hidden layer's σ′ forgotten
        ("d2 = d3 @ theta2[:, 1:] * sigmoid(z2) * (1 - sigmoid(z2))", "d2 = d3 @ theta2[:, 1:]")]),
    ("ex4/bias_column_given.py", "ex4/bug_bias_column_given.py", None, [  # the biases regularized in the gradient
        ("g1[:, 1:] += reg / m * theta1[:, 1:]", "g1 += reg / m * theta1"),
        ("g2[:, 1:] += reg / m * theta2[:, 1:]", "g2 += reg / m * theta2")]),
    ("two_layer/assignment2", "two_layer/bug_assignment2", "cs231n/layers.py", [  # db summed over the wrong axis
        ("    db = np.sum(dout, axis=0)\n    return dx, dw, db", "    db = np.mean(dout, axis=0)\n    return dx, dw, db")]),
    ("two_layer/fc_net_full.py", "two_layer/bug_fc_net_full.py", None, [  # the ReLU's gate forgotten
        ("            dout = relu_backward(dout, rc)\n", "")]),
    ("layers_api/layers_package", "layers_api/bug_layers_package", "cs231n/layers.py", [  # the correct class counted
        ("    margins[np.arange(N), y] = 0\n", "")]),
    ("layers_api/layers_py2.py", "layers_api/bug_layers_py2.py", None, [  # every maximum of a window gets dout
        ("dx[n, c, i * s:i * s + ph, j * s:j * s + pw] += mask * dout[n, c, i, j]",
         "dx[n, c, i * s:i * s + ph, j * s:j * s + pw] = mask * dout[n, c, i, j]")]),
]


def _patched(text: str, patches, where: str) -> str:
    for old, new in patches:
        if text.count(old) != 1:
            raise SystemExit(f"{where}: the patch {old[:60]!r} matches {text.count(old)} times, not once")
        text = text.replace(old, new)
    return text


def main() -> None:
    for path, text, encode in BYTES:
        (HERE / path).write_bytes(encode(text))
    for path, cells in NOTEBOOKS:
        (HERE / path).write_text(notebook(cells))
    for correct, buggy, inner, patches in BUGS:
        src, dst = HERE / correct, HERE / buggy
        if inner is None:
            dst.write_text(_patched(src.read_text(), patches, buggy))
            continue
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
        (dst / inner).write_text(_patched((src / inner).read_text(), patches, buggy))


if __name__ == "__main__":
    main()
