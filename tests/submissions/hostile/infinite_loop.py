def nnCostFunction(*args):
    while True:
        pass
