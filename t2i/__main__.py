"""`python -m t2i ...` is the `t2i` command (for launchers such as torchrun that start a module)."""
from t2i.cli import run

if __name__ == "__main__":
    run()
