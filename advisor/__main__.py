"""`python -m advisor` runs the command-line interface."""

from advisor.cli import main

main()
