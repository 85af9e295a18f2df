"""Names people read for the estimate's fields, shared by the terminal and the Markdown/HTML renderers."""

from __future__ import annotations

__all__ = ["MEMORY_ROWS"]

# MemoryEstimate field -> its row label, in the order the breakdown is shown.
MEMORY_ROWS = [
    ("weights_bytes", "weights"),
    ("master_weights_bytes", "fp32 master weights"),
    ("gradients_bytes", "gradients"),
    ("optimizer_bytes", "optimizer state"),
    ("activations_bytes", "activations (saved for backward)"),
    ("logits_bytes", "logits and loss over the vocabulary"),
    ("reference_bytes", "DPO reference model"),
    ("teacher_bytes", "distillation teacher (frozen)"),
    ("kbit_prep_bytes", "fp32 upcast of k-bit prep (weights, activations)"),
    ("kv_cache_bytes", "KV cache"),
    ("workspace_bytes", "workspace (recompute, dequantize, gather)"),
]
