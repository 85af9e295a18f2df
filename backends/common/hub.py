"""Finding a model's files: the tokenizer loader both the training and the prompting backend use."""

from __future__ import annotations

from advisor.core.errors import AdvisorError

__all__ = ["load_tokenizer", "unreachable"]


def unreachable(model: str, exc: Exception) -> AdvisorError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return AdvisorError(f"cannot load base model `{model}`: {first_line}",
                        "check the id, log in with `hf auth login` for gated models, go online once so it is "
                        "cached, give a local folder — or `advisor run --demo` for the offline demonstration model")


def load_tokenizer(model: str):
    """The tokenizer, with a pad token (EOS when the model has none).

    Raises:
        AdvisorError: it cannot be found (offline and not cached, or no such model).
    """
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise unreachable(model, exc) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
