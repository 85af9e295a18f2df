"""Catalog loading and model/GPU resolution: rows, aliases, config.json paths, errors and hints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from advisor.core import catalog
from advisor.core.errors import AdvisorError, InvalidInputError, UnknownNameError

# Names other modules rely on (DESIGN/briefs): they must resolve exactly.
REQUIRED_MODELS = [
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
    "llama-3.2-1b", "llama-3.2-3b", "llama-3.3-70b", "mistral-7b", "mixtral-8x7b", "qwen2.5-0.5b",
    "qwen2.5-1.5b", "qwen2.5-3b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b", "gemma-2-2b",
    "gemma-2-9b", "gemma-2-27b", "phi-3-mini", "falcon-7b", "stablelm-3b", "tinyllama-1.1b",
]  # fmt: skip
REQUIRED_GPUS = [
    "h200", "h100-80gb", "h100-pcie", "a100-80gb", "a100-40gb", "l40s", "a6000", "a10g-24gb", "l4",
    "rtx-3090", "rtx-4090", "t4", "v100-16gb", "v100-32gb",
]  # fmt: skip
GIB = 2**30

LLAMA_CONFIG = {
    "model_type": "llama",
    "vocab_size": 32000,
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
}


def test_catalog_files_are_found_through_rules_dir() -> None:
    root = catalog.rules_dir()
    assert (root / "catalog" / "models.yaml").is_file()
    assert (root / "catalog" / "gpus.yaml").is_file()


def test_rules_dir_prefers_the_installed_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "advisor"
    (package / "_rules").mkdir(parents=True)
    monkeypatch.setattr(catalog, "__file__", str(package / "core" / "catalog.py"))
    assert catalog.rules_dir() == package / "_rules"


def test_every_model_row_loads_with_source() -> None:
    rows = catalog.load_model_rows()
    models = catalog.load_models()
    assert set(REQUIRED_MODELS) <= set(models)
    assert len(models) == len(rows)
    for row in rows:
        assert row["source"].startswith("https://huggingface.co/"), row["name"]
        assert row["source"].endswith("config.json"), row["name"]
        assert models[row["name"]].source == row["source"]


def test_catalog_has_no_duplicate_names_or_aliases() -> None:
    keys = [
        k.lower()
        for row in catalog.load_model_rows()
        for k in (row["name"], row["hf_id"], *row.get("aliases", []))
    ]
    assert len(keys) == len(set(keys))


def test_every_gpu_row_is_complete() -> None:
    gpus = catalog.load_gpus()
    assert set(REQUIRED_GPUS) <= set(gpus)
    for gpu in gpus.values():
        assert gpu.source and gpu.price_source and gpu.price_per_hour_usd is not None, gpu.name
        assert gpu.memory_bytes % GIB == 0, gpu.name  # marketed GB on NVIDIA cards are GiB of DRAM
        assert (gpu.bf16_tflops is not None) == gpu.supports_bf16, gpu.name
    assert catalog.resolve_gpu("a100-80gb").memory_bytes == 85899345920
    assert not catalog.resolve_gpu("t4").supports_bf16
    assert not catalog.resolve_gpu("v100-32gb").supports_bf16


@pytest.mark.parametrize(
    ("alias", "gpu_id"), [("h100", "h100-80gb"), ("A10G", "a10g-24gb"), ("RTX-4090", "rtx-4090")]
)
def test_resolve_gpu_by_alias(alias: str, gpu_id: str) -> None:
    assert catalog.resolve_gpu(alias).name == gpu_id


def test_unknown_gpu_suggests_close_names() -> None:
    with pytest.raises(UnknownNameError) as exc:
        catalog.resolve_gpu("a100-80")
    assert "a100-80gb" in exc.value.suggestions
    assert "advisor gpus" in exc.value.hint


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("llama-3.1-8b", "llama-3.1-8b"),
        ("meta-llama/Llama-3.1-8B", "llama-3.1-8b"),
        ("META-LLAMA/LLAMA-3.1-8B", "llama-3.1-8b"),
        ("tinyllama", "tinyllama-1.1b"),
        ("stablelm-3b-4e1t", "stablelm-3b"),
        ("Qwen/Qwen2.5-7B", "qwen2.5-7b"),
    ],
)
def test_resolve_model_by_name_alias_or_hub_id(query: str, name: str) -> None:
    assert catalog.resolve_model(query).name == name


def test_resolve_model_from_config_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_CONFIG))
    from_file = catalog.resolve_model(str(tmp_path / "config.json"))
    from_folder = catalog.resolve_model(str(tmp_path))
    assert from_file.hidden_size == from_folder.hidden_size == 4096
    assert from_file.model_dump(exclude={"name", "source"}) == from_folder.model_dump(
        exclude={"name", "source"}
    )
    assert from_file.model_dump(exclude={"name", "source"}) == catalog.resolve_model("llama-2-7b").model_dump(
        exclude={"name", "source"}
    )


def test_config_missing_a_field_names_it_and_the_file(tmp_path: Path) -> None:
    cfg = {k: v for k, v in LLAMA_CONFIG.items() if k != "intermediate_size"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InvalidInputError) as exc:
        catalog.resolve_model(str(tmp_path))
    assert "`intermediate_size`" in exc.value.message
    assert "config.json" in exc.value.message


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no such file"):
        catalog.resolve_model(str(tmp_path / "nope"))


def test_folder_without_config_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="config.json"):
        catalog.resolve_model(str(tmp_path))


def test_config_fields_are_type_and_range_checked_all_at_once() -> None:
    bad = {**LLAMA_CONFIG, "hidden_size": "4096", "num_attention_heads": 0, "num_hidden_layers": 1e9,
           "attention_bias": "no"}
    with pytest.raises(InvalidInputError) as exc:
        catalog.model_spec_from_hf_config(bad, "x", "x/config.json")
    assert [p.split(": ")[1].split(" ")[0] for p in exc.value.problems] == [
        "`hidden_size`", "`num_hidden_layers`", "`num_attention_heads`", "`attention_bias`"]
    with pytest.raises(InvalidInputError, match="must hold a JSON object"):
        catalog.model_spec_from_hf_config([LLAMA_CONFIG], "x", "x/config.json")  # type: ignore[arg-type]
    integral = catalog.model_spec_from_hf_config({**LLAMA_CONFIG, "num_hidden_layers": 32.0}, "x", "x/config.json")
    assert integral.n_layers == 32 and isinstance(integral.n_layers, int)


def test_unsupported_model_type_lists_supported_ones() -> None:
    with pytest.raises(AdvisorError) as exc:
        catalog.model_spec_from_hf_config({**LLAMA_CONFIG, "model_type": "gpt2"}, "x", "x/config.json")
    assert "`gpt2`" in exc.value.message
    assert "`llama`" in exc.value.hint and "`falcon`" in exc.value.hint


def test_unknown_name_suggests_catalog_names() -> None:
    with pytest.raises(UnknownNameError) as exc:
        catalog.resolve_model("llama-3.1-8")
    assert "llama-3.1-8b" in exc.value.suggestions
    assert "advisor models" in exc.value.hint
    assert "config.json" in exc.value.hint


def test_offline_hub_id_gives_the_path_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(catalog, "_fetch_hub_config", lambda repo_id: pytest.fail("must not fetch offline"))
    with pytest.raises(UnknownNameError) as exc:
        catalog.resolve_model("someone/llama-3.1-8b-finetune")
    assert "HF_HUB_OFFLINE" in exc.value.hint
    assert "model folder" in exc.value.hint
    assert "llama-3.1-8b" in exc.value.suggestions


def test_online_hub_id_is_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(catalog, "_fetch_hub_config", lambda repo_id: dict(LLAMA_CONFIG))
    spec = catalog.resolve_model("someone/my-llama")
    assert spec.name == "someone/my-llama"
    assert spec.source == "https://huggingface.co/someone/my-llama/resolve/main/config.json"


def test_failed_hub_fetch_gives_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(catalog, "_fetch_hub_config", lambda repo_id: None)
    with pytest.raises(UnknownNameError) as exc:
        catalog.resolve_model("someone/missing")
    assert "could not be fetched" in exc.value.hint


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "falcon-7b",
            {"n_kv_heads": 1, "intermediate_size": 18176, "norms_per_layer": 1, "tie_embeddings": True},
        ),
        ("gemma-2-9b", {"head_dim": 256, "norms_per_layer": 4, "tie_embeddings": True}),
        ("qwen2.5-7b", {"qkv_bias": True, "o_bias": False, "tie_embeddings": False}),
        ("mixtral-8x7b", {"n_experts": 8, "n_experts_active": 2, "is_moe": True}),
        ("stablelm-3b", {"norm": "layernorm", "qkv_bias": False}),
        ("llama-3.2-1b", {"head_dim": 64, "tie_embeddings": True, "max_context": 131072}),
    ],
)
def test_family_specific_fields(name: str, expected: dict) -> None:
    spec = catalog.resolve_model(name)
    assert {k: getattr(spec, k) for k in expected} == expected
