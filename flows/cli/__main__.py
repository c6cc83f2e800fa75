"""`python -m flows.cli ...`, the same as the `guidang` console script."""

from flows.cli import app

if __name__ == "__main__":
    app()
