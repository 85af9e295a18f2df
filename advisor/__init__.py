"""advisor: choose between prompting, RAG, LoRA, QLoRA, full fine-tuning and DPO, then do it."""

__version__ = "0.1.0"
__all__ = ["__version__"]
