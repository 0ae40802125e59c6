"""``python -m analyzer.lab`` runs the ``lab`` click group until the main CLI wires it in."""

from analyzer.lab.cli import lab

if __name__ == "__main__":
    lab(prog_name="python -m analyzer.lab")
