"""`python -m advisor` runs the command-line interface."""

from advisor.app.cli import main

main()
