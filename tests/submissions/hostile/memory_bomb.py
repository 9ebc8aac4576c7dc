def nnCostFunction(*args):
    return bytearray(8 << 30)
