"""The teacher: a causal LM loaded here (a Hub id, a folder, an adapter an earlier step trained) or an
OpenAI-compatible chat API. Each answers a batch of chat prompts greedily and says how many tokens it read and
wrote. torch and transformers load inside the functions."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

from advisor.core.errors import AdvisorError
from backends.common.chat import render_text

__all__ = ["ApiTeacher", "LocalTeacher"]

API_TIMEOUT_S = 120


class LocalTeacher:
    """A model folder or Hub id (a LoRA/IA3/soft-prompt adapter folder loads on its base)."""

    kind = "local"

    def __init__(self, model: str):
        import torch
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging

        from backends.common.hub import load_tokenizer, unreachable

        logging.set_verbosity_error()
        logging.disable_progress_bar()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        self.tokenizer = load_tokenizer(model)
        self.tokenizer.padding_side = "left"  # generation continues every row from its last prompt token
        try:
            if (Path(model) / "adapter_config.json").is_file():
                from peft import AutoPeftModelForCausalLM

                loaded = AutoPeftModelForCausalLM.from_pretrained(model, dtype=dtype, trust_remote_code=False)
            else:
                loaded = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            raise unreachable(model, exc) from None
        self.model = loaded.to(self.device).eval()

    def answer(self, prompts: list[list[dict]], max_new_tokens: int) -> list[tuple[str, int, int]]:
        """(answer, prompt tokens, answer tokens) for each chat prompt, greedy."""
        import torch

        tok = self.tokenizer
        texts = [render_text(messages, tok, add_generation_prompt=True) for messages in prompts]
        batch = tok(texts, add_special_tokens=False, padding=True, return_tensors="pt").to(self.device)
        with torch.no_grad():
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                                      pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = out[:, batch["input_ids"].shape[1]:]
        rows = []
        for i in range(len(prompts)):
            ids = new[i].tolist()
            if tok.eos_token_id in ids:  # the tokens up to and including the first EOS were generated
                ids = ids[: ids.index(tok.eos_token_id) + 1]
            rows.append((tok.decode(ids, skip_special_tokens=True).strip(), int(batch["attention_mask"][i].sum()),
                         len(ids)))
        return rows


class ApiTeacher:
    """An OpenAI-compatible `/chat/completions` endpoint, asked one prompt at a time (temperature 0)."""

    kind = "api"
    device = "api"

    def __init__(self, base_url: str, model: str, key_env: str):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.key = model, os.environ.get(key_env)

    def _ask(self, messages: list[dict], max_new_tokens: int) -> tuple[str, int, int]:
        body = json.dumps({"model": self.model, "messages": messages, "max_tokens": max_new_tokens,
                           "temperature": 0}).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=API_TIMEOUT_S) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise AdvisorError(f"teacher API `{self.url}` answered HTTP {exc.code} ({exc.reason})",
                               "check api_base_url, the model name and the key in the api_key_env variable") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AdvisorError(f"teacher API `{self.url}` cannot be reached ({reason})",
                               "check api_base_url and the network; answers written so far are kept") from None
        except ValueError:
            raise AdvisorError(f"teacher API `{self.url}` did not answer JSON") from None
        try:
            text = reply["choices"][0]["message"]["content"] or ""
            usage = reply.get("usage") or {}
        except (KeyError, IndexError, TypeError):
            raise AdvisorError(f"teacher API `{self.url}` answered without choices[0].message.content") from None
        return text.strip(), int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))

    def answer(self, prompts: list[list[dict]], max_new_tokens: int) -> list[tuple[str, int, int]]:
        """(answer, prompt tokens, answer tokens) for each chat prompt; tokens as the API's `usage` counts them."""
        return [self._ask(messages, max_new_tokens) for messages in prompts]
