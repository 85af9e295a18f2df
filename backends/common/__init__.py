"""What more than one backend needs: example data (loading, validation, splitting), the tiny offline demo model,
text loaders, the embedding model, chat messages and greedy answer scoring, the tokenizer loader.

Backends import each other only through here (tests/test_layers.py), so a backend folder can be removed or
replaced without touching the others. Nothing heavy is imported at module level.
"""
