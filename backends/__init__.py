"""Execution backends. The registry maps a plan step kind to `module:function`; nothing heavy is imported here."""

REGISTRY: dict[str, str] = {
    "prompt": "backends.prompting:run",
    "rag": "backends.rag:run",
    "train": "backends.train:run",
}

__all__ = ["REGISTRY"]
