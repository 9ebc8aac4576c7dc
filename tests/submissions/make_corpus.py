"""Writes the ex4 grading corpus: one correct reference, correct variants, and one file per bug.

Run from this folder: ``python make_corpus.py``. Each bug is a small textual change of the
reference, the way students actually get it wrong; ``EXPECTED`` (imported by the tests) says
which check must fail and which diagnosis the grader must reach.
"""

from pathlib import Path

REFERENCE = '''import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def sigmoidGradient(z):
    g = sigmoid(z)
    return g * (1 - g)


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    Theta1 = np.reshape(nn_params[:hidden_layer_size * (input_layer_size + 1)],
                        (hidden_layer_size, input_layer_size + 1))
    Theta2 = np.reshape(nn_params[hidden_layer_size * (input_layer_size + 1):],
                        (num_labels, hidden_layer_size + 1))
    m = y.size
    a1 = np.concatenate([np.ones((m, 1)), X], axis=1)
    z2 = a1 @ Theta1.T
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(z2)], axis=1)
    z3 = a2 @ Theta2.T
    h = sigmoid(z3)
    Y = np.eye(num_labels)[y]
    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    d3 = h - Y
    d2 = (d3 @ Theta2)[:, 1:] * sigmoidGradient(z2)
    Theta1_grad = d2.T @ a1 / m
    Theta2_grad = d3.T @ a2 / m
    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]
    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]
    grad = np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])
    return J, grad
'''

LOOP = '''import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def nnCostFunction(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_=0.0):
    """The per-example loop of the lecture: correct, but it sums in another order."""
    n1 = hidden_layer_size * (input_layer_size + 1)
    Theta1 = nn_params[:n1].reshape(hidden_layer_size, input_layer_size + 1)
    Theta2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    J = 0.0
    D1 = np.zeros_like(Theta1)
    D2 = np.zeros_like(Theta2)
    for t in range(m):
        a1 = np.concatenate([[1.0], X[t]])
        z2 = Theta1 @ a1
        a2 = np.concatenate([[1.0], sigmoid(z2)])
        a3 = sigmoid(Theta2 @ a2)
        yk = np.zeros(num_labels)
        yk[y[t]] = 1.0
        J += -np.sum(yk * np.log(a3) + (1 - yk) * np.log(1 - a3))
        d3 = a3 - yk
        d2 = (Theta2[:, 1:].T @ d3) * sigmoid(z2) * (1 - sigmoid(z2))
        D1 += np.outer(d2, a1)
        D2 += np.outer(d3, a2)
    J = J / m + lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))
    G1, G2 = D1 / m, D2 / m
    G1[:, 1:] += lambda_ / m * Theta1[:, 1:]
    G2[:, 1:] += lambda_ / m * Theta2[:, 1:]
    return J, np.concatenate([G1.ravel(), G2.ravel()])
'''

STABLE = REFERENCE.replace(
    "    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m\n",
    "    J = np.sum(np.logaddexp(0, z3) - Y * z3) / m  # log-sigmoid: stays finite when units saturate\n",
)

# name -> (old text, new text) applied to REFERENCE
BUGS = {
    "grad_missing_1_over_m": ("    Theta1_grad = d2.T @ a1 / m\n    Theta2_grad = d3.T @ a2 / m\n",
                              "    Theta1_grad = d2.T @ a1\n    Theta2_grad = d3.T @ a2\n"),
    "sign_flipped": ("    d3 = h - Y\n", "    d3 = Y - h\n"),
    # Right on the exercise's 10 labels and the debug network's 3, an IndexError beyond 10 classes.
    "ten_labels_hardcoded": ("    Y = np.eye(num_labels)[y]\n", "    Y = np.eye(10)[y][:, :num_labels]  # the exercise has 10 labels\n"),
    # A sigmoid tabulated on [-8, 8] only: right wherever the debug network's units are, NaN past 8.
    "nan_past_eight": ("def sigmoid(z):\n    return 1.0 / (1.0 + np.exp(-z))\n",
                       "def sigmoid(z):\n    z = np.asarray(z, dtype=float)\n"
                       "    return np.where(np.abs(z) <= 8, 1.0 / (1.0 + np.exp(-z)), np.nan)  # the table covers [-8, 8]\n"),
    "regularized_bias": ("    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]\n    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]\n",
                         "    Theta1_grad += lambda_ / m * Theta1\n    Theta2_grad += lambda_ / m * Theta2\n"),
    "no_reg_in_gradient": ("    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]\n    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]\n", ""),
    "reg_missing_m": ("    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]\n    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]\n",
                      "    Theta1_grad[:, 1:] += lambda_ * Theta1[:, 1:]\n    Theta2_grad[:, 1:] += lambda_ * Theta2[:, 1:]\n"),
    "sigmoid_gradient_of_activation": ("sigmoidGradient(z2)", "sigmoidGradient(a2[:, 1:])"),
    "derivative_on_preactivation": ("sigmoidGradient(z2)", "z2 * (1 - z2)"),
    "no_activation_derivative": (" * sigmoidGradient(z2)", ""),
    "unrolled_in_fortran_order": ("np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])",
                                  "np.concatenate([Theta1_grad.ravel(order='F'), Theta2_grad.ravel(order='F')])"),
    "bias_column_kept_in_delta": ("(d3 @ Theta2)[:, 1:] * sigmoidGradient(z2)", "(d3 @ Theta2) * sigmoidGradient(np.concatenate([np.ones((m, 1)), z2], axis=1))"),
    "bias_gradient_not_averaged": ("    Theta1_grad[:, 1:] += lambda_", "    Theta2_grad[:, 0] *= m\n    Theta1_grad[:, 1:] += lambda_"),
    "cost_missing_1_over_m": ("    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m\n",
                              "    J = -np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h))\n"),
    "no_reg_in_cost": ("    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))\n", ""),
    # the wrong solution the classic gradient check passes: cost and gradient agree, both without λ
    "no_regularization_anywhere": ("    J += lambda_ / (2 * m) * (np.sum(Theta1[:, 1:] ** 2) + np.sum(Theta2[:, 1:] ** 2))\n"
                                   "    d3 = h - Y\n    d2 = (d3 @ Theta2)[:, 1:] * sigmoidGradient(z2)\n    Theta1_grad = d2.T @ a1 / m\n"
                                   "    Theta2_grad = d3.T @ a2 / m\n    Theta1_grad[:, 1:] += lambda_ / m * Theta1[:, 1:]\n"
                                   "    Theta2_grad[:, 1:] += lambda_ / m * Theta2[:, 1:]\n",
                                   "    d3 = h - Y\n    d2 = (d3 @ Theta2)[:, 1:] * sigmoidGradient(z2)\n    Theta1_grad = d2.T @ a1 / m\n"
                                   "    Theta2_grad = d3.T @ a2 / m\n"),
    "labels_shifted": ("    Y = np.eye(num_labels)[y]\n", "    Y = np.eye(num_labels)[y - 1]  # thought labels were 1-based\n"),
    "averaged_over_outputs_too": ("    d3 = h - Y\n", "    d3 = (h - Y) / num_labels\n"),
    "mutates_its_input": ("    return J, grad\n", "    X[:] = 0.0  # 'free memory'\n    return J, grad\n"),
    "numerical_gradient": ("    grad = np.concatenate([Theta1_grad.ravel(), Theta2_grad.ravel()])\n",
                           "    grad = np.zeros_like(nn_params)\n"
                           "    for i in range(nn_params.size):\n"
                           "        e = np.zeros_like(nn_params)\n"
                           "        e[i] = 1e-4\n"
                           "        grad[i] = (_cost(nn_params + e, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)\n"
                           "                   - _cost(nn_params - e, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_)) / 2e-4\n"),
}

NUMERIC_HELPER = '''

def _cost(nn_params, input_layer_size, hidden_layer_size, num_labels, X, y, lambda_):
    n1 = hidden_layer_size * (input_layer_size + 1)
    T1 = nn_params[:n1].reshape(hidden_layer_size, input_layer_size + 1)
    T2 = nn_params[n1:].reshape(num_labels, hidden_layer_size + 1)
    m = X.shape[0]
    a2 = np.concatenate([np.ones((m, 1)), sigmoid(np.concatenate([np.ones((m, 1)), X], axis=1) @ T1.T)], axis=1)
    h = sigmoid(a2 @ T2.T)
    Y = np.eye(num_labels)[y]
    return (-np.sum(Y * np.log(h) + (1 - Y) * np.log(1 - h)) / m
            + lambda_ / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2)))
'''


def main() -> None:
    here = Path(__file__).parent / "ex4"
    here.mkdir(exist_ok=True)
    (here / "correct_reference.py").write_text(REFERENCE)
    (here / "correct_loop.py").write_text(LOOP)
    (here / "correct_stable_log.py").write_text(STABLE)
    for name, (old, new) in BUGS.items():
        assert old in REFERENCE, name
        text = REFERENCE.replace(old, new)
        if name == "numerical_gradient":
            text += NUMERIC_HELPER
        (here / f"bug_{name}.py").write_text(text)


if __name__ == "__main__":
    main()
