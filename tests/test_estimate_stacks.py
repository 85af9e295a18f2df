"""Stack profiles: every knob has a default and a source, precedence of set values, and trl = today's estimate."""

from __future__ import annotations

import pytest

from advisor.core.catalog import load_models
from advisor.core.errors import UnknownNameError
from advisor.core.estimate.memory import estimate_memory
from advisor.core.estimate.stacks import KNOBS, STACKS, describe_knobs, resolve_knobs, stack_profile
from advisor.core.models import EstimateSpec


def test_every_profile_sources_every_knob():
    for profile in STACKS.values():
        assert set(KNOBS) | {"full_master_fp32"} <= set(profile.sources), profile.name
        assert all(profile.sources.values()), profile.name


@pytest.mark.parametrize(
    "stack,method,expected",
    [
        # (stack, method, {knob: default}) as read from each tool's code (sources in stacks.py)
        ("trl", "qlora", dict(loss_kernel="chunked", adapter_dtype="bf16", kbit_prep=False, grad_ckpt=True)),
        ("trl", "lora", dict(loss_kernel="chunked", adapter_dtype="fp32", grad_ckpt=True)),
        ("hf-trainer", "qlora", dict(loss_kernel="full", adapter_dtype="fp32", kbit_prep=True, grad_ckpt=False)),
        ("axolotl", "qlora", dict(loss_kernel="full", adapter_dtype="fp32", kbit_prep=False, grad_ckpt=False)),
        ("axolotl", "dpo", dict(loss_kernel="chunked")),
        ("llama-factory", "lora", dict(loss_kernel="full", adapter_dtype="fp32", grad_ckpt=True)),
        ("llama-factory", "dpo", dict(loss_kernel="full")),
    ],
)
def test_profile_defaults(stack, method, expected):
    train = "lora" if method == "dpo" else method
    values, lines = resolve_knobs(stack, method, train, {})
    assert {k: values[k] for k in expected} == expected
    assert values["stack"] == stack and len(lines) >= 5


def test_set_values_win_and_say_so():
    values, lines = resolve_knobs("axolotl", "qlora", "qlora", {"grad_ckpt": True, "loss_kernel": None})
    assert values["grad_ckpt"] is True and values["loss_kernel"] == "full"
    assert "grad_ckpt = true: as set" in lines


def test_knobs_that_do_not_apply_are_left_out():
    values, lines = resolve_knobs("hf-trainer", "full", "full", {})
    assert values["kbit_prep"] is False and values["adapter_dtype"] is None
    assert not any(line.startswith(("kbit_prep", "adapter_dtype")) for line in lines)


@pytest.mark.parametrize("method", ["full", "lora", "qlora", "dpo", "inference"])
def test_trl_profile_is_todays_estimate(method):
    model = load_models()["llama-3.1-8b"]
    train = None if method == "inference" else ("lora" if method == "dpo" else method)
    values, _ = resolve_knobs("trl", method, train, {})
    plain = estimate_memory(EstimateSpec(model=model, method=method))
    profiled = estimate_memory(EstimateSpec(model=model, method=method, **values))
    assert profiled.peak_bytes == plain.peak_bytes
    assert profiled.assumptions == plain.assumptions


def test_describe_knobs_marks_defaults_and_overrides():
    model = load_models()["qwen2.5-1.5b"]
    values, _ = resolve_knobs("hf-trainer", "qlora", "qlora", {"grad_ckpt": True})
    lines = describe_knobs(EstimateSpec(model=model, method="qlora", **values))
    assert any(line.startswith("grad_ckpt = true (set (the hf-trainer default is false))") for line in lines)
    assert any(line.startswith("kbit_prep = true (hf-trainer default") for line in lines)
    assert describe_knobs(EstimateSpec(model=model, method="qlora")) == []


def test_unknown_stack_suggests():
    with pytest.raises(UnknownNameError) as info:
        stack_profile("axolotol")
    assert "axolotl" in (info.value.hint or "")
