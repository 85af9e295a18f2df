"""CLI command groups; each module registers its commands on `advisor.cli.app` when imported."""
