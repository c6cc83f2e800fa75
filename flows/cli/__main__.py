"""`python -m flows.cli ...`, the same as the `guidang` console script."""

from flows.cli import entry

if __name__ == "__main__":
    entry()
