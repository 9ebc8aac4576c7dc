from sigmoid import sigmoid


def sigmoidGradient(z):
    """SIGMOIDGRADIENT returns the gradient of the sigmoid function evaluated at z."""
    g = z * (1 - z)
    return g
