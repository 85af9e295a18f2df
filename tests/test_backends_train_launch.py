"""Launch files: accelerate configs read back by accelerate, launcher failures read from torch's own summary,
and `advisor run --emit-launch` (multi-node script and SkyPilot task, nothing run)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from advisor.core.catalog import load_gpus
from advisor.core.errors import AdvisorError, RunFailedError
from advisor.core.models import TrainStep
from backends.train.launch import (
    SKYPILOT_ACCELERATORS,
    accelerate_config,
    emit_launch,
    failure_message,
    n_processes,
    node_layout,
)

FIXTURES = Path(__file__).parent / "fixtures" / "train"
DATA = FIXTURES / "sft_instruction.jsonl"
# SkyPilot task fields (docs.skypilot.co/en/stable/reference/yaml-spec.html); the package is not installable
# here (no index has it), so the task is checked against this documented schema instead of `sky.Task.from_yaml`.
SKY_TASK_FIELDS = {"name", "workdir", "num_nodes", "resources", "envs", "secrets", "file_mounts", "setup", "run"}
SKY_ENV = ("SKYPILOT_NODE_RANK", "SKYPILOT_NODE_IPS", "SKYPILOT_NUM_NODES", "SKYPILOT_NUM_GPUS_PER_NODE")


def _step(**kwargs) -> TrainStep:
    return TrainStep(**{"method": "lora", "base_model": "tiny-demo", "data_path": str(DATA), **kwargs})


@pytest.mark.parametrize(("distributed", "expected"), [("ddp", "MULTI_GPU"), ("fsdp", "FSDP"),
                                                       ("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED")])
def test_accelerate_reads_the_config_back(tmp_path: Path, distributed: str, expected: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    path = tmp_path / "accelerate.yaml"
    path.write_text(yaml.safe_dump(accelerate_config(_step(n_gpus=4, distributed=distributed), "bf16")))
    config = load_config_from_file(str(path))
    assert config.distributed_type.value == expected
    assert (config.num_processes, config.num_machines, config.mixed_precision) == (4, 1, "bf16")
    if distributed.startswith("zero"):
        assert config.deepspeed_config["zero_stage"] == int(distributed[-1])


@pytest.mark.parametrize("distributed", ["fsdp", "zero3"])
def test_offload_reaches_the_accelerate_config_and_the_estimate(tmp_path: Path, distributed: str) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    from advisor.core.catalog import resolve_model
    from advisor.core.estimate.translate import train_spec

    step = _step(n_gpus=2, distributed=distributed, offload=True)
    path = tmp_path / "accelerate.yaml"
    path.write_text(yaml.safe_dump(accelerate_config(step, "bf16")))
    config = load_config_from_file(str(path))
    if distributed == "fsdp":
        assert config.fsdp_config["fsdp_offload_params"] is True
    else:
        assert (config.deepspeed_config["offload_param_device"], config.deepspeed_config["offload_optimizer_device"]) \
            == ("cpu", "cpu")
    spec = train_spec(step, resolve_model("llama-3.2-1b"), "bf16")
    assert spec.offload_params and spec.offload_optimizer and spec.zero_stage == 3


def test_offload_without_sharding_is_refused() -> None:
    with pytest.raises(ValueError, match="offload moves sharded parameters"):
        _step(n_gpus=2, distributed="ddp", offload=True)
    with pytest.raises(ValueError, match="offload moves sharded parameters"):
        _step(n_gpus=1, distributed="fsdp", offload=True)


def test_one_process_is_not_distributed() -> None:
    assert accelerate_config(_step(), "fp32", num_processes=1)["distributed_type"] == "NO"


def test_processes_per_machine() -> None:
    assert n_processes(_step(), "cpu") == 1
    assert n_processes(_step(n_processes=2), "cpu") == 2
    assert n_processes(_step(n_gpus=4), "cuda") == 4
    with pytest.raises(AdvisorError, match="`n_processes` is 2 but `n_gpus` is 4"):
        n_processes(_step(n_gpus=4, n_processes=2), "cuda")
    # accelerate turns FSDP on only over GPUs (AcceleratorState never upgrades MULTI_CPU): refused, not DDP silently.
    with pytest.raises(AdvisorError, match="`distributed: fsdp` needs GPUs"):
        n_processes(_step(n_processes=2, distributed="fsdp"), "cpu")


def _torch_summary(failures: dict[int, int]) -> str:
    """What torch.distributed.elastic prints when processes fail: its own ChildFailedError text."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

    return ChildFailedError("backends.train", {
        rank: ProcessFailure(local_rank=rank, pid=1000 + rank, exitcode=code, error_file="<N/A>")
        for rank, code in failures.items()}).format_msg()


def test_a_killed_process_is_one_line_with_a_resume_hint(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    # rank 0 died of its broken connection or torchrun's SIGTERM; the cause is rank 1's SIGKILL.
    error = failure_message("step 3/10 loss 4.2\n" + _torch_summary({0: -15, 1: -9}), 1, tmp_path / "launch.log")
    assert type(error) is AdvisorError and error.exit_code == 2
    assert error.message.startswith("training process 1 was killed (signal 9, SIGKILL)")
    assert "\n" not in error.message and "--resume" in error.hint


def test_other_launch_failures(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    log = tmp_path / "launch.log"
    worker = failure_message("error: training diverged at step 4: `loss` is nan\n" + _torch_summary({0: 2}), 1, log)
    assert isinstance(worker, RunFailedError) and worker.message == "training diverged at step 4: `loss` is nan"
    exited = failure_message(_torch_summary({1: 1}), 1, log)
    assert exited.message == "training process 1 exited with 1" and str(log) in exited.hint
    assert failure_message("no summary at all", 3, log).message == "`accelerate launch` exited with 3"


def test_machines_for_a_gpu_count() -> None:
    assert node_layout(1) == (1, 1) and node_layout(8) == (1, 8) and node_layout(32) == (4, 8)
    with pytest.raises(AdvisorError, match="12 GPUs do not split"):
        node_layout(12)


def test_every_catalog_gpu_has_a_skypilot_name() -> None:
    assert set(SKYPILOT_ACCELERATORS) == set(load_gpus())


def _accelerate_args(script: str, env: dict[str, str]):
    """The `accelerate launch` line of the script, with the environment filled in, parsed by accelerate itself."""
    from accelerate.commands.launch import launch_command_parser

    line = next(part for part in script.splitlines() if part.startswith("exec accelerate launch"))
    for name, value in env.items():
        line = line.replace(f'"${name}"', value)
    line = line.replace('"$((NUM_NODES * GPUS_PER_NODE))"', str(int(env["NUM_NODES"]) * int(env["GPUS_PER_NODE"])))
    return launch_command_parser().parse_args(shlex.split(line)[3:])


def test_emitted_files_for_sixteen_gpus(tmp_path: Path) -> None:
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import load_config_from_file

    from advisor.core.planning import load_plan

    out = tmp_path / "launch"
    files = emit_launch(_step(n_gpus=16, distributed="fsdp"), out, gpu="a100-80gb", precision="bf16")
    assert [f.name for f in files] == ["plan.yaml", "sft_instruction.jsonl", "accelerate.yaml",
                                       "launch-multinode.sh", "sky-task.yaml"]
    task = yaml.safe_load((out / "sky-task.yaml").read_text())
    assert set(task) <= SKY_TASK_FIELDS
    assert task["resources"] == {"accelerators": "A100-80GB:8"} and task["num_nodes"] == 2
    assert all(name in task["run"] for name in SKY_ENV) and "launch-multinode.sh" in task["run"]
    config = load_config_from_file(str(out / "accelerate.yaml"))
    assert (config.distributed_type.value, config.num_machines, config.num_processes) == ("FSDP", 2, 16)
    script = (out / "launch-multinode.sh").read_text()
    assert subprocess.run(["bash", "-n", str(out / "launch-multinode.sh")]).returncode == 0
    args = _accelerate_args(script, {"NUM_NODES": "2", "GPUS_PER_NODE": "8", "NODE_RANK": "1",
                                     "MAIN_PROCESS_IP": "10.0.0.1", "MAIN_PROCESS_PORT": "29500", "RUN_DIR": "run"})
    assert (args.num_machines, args.num_processes, args.machine_rank, args.main_process_ip) == (2, 16, 1, "10.0.0.1")
    assert args.module and args.training_script == "backends.train"
    assert args.training_script_args == ["run", "--plan", "plan.yaml"]
    step = load_plan(out / "plan.yaml").steps[0]  # the plan travels with its data
    assert Path(step.data_path) == (out / "data" / DATA.name).resolve() and Path(step.data_path).is_file()
    assert "`distributed: fsdp`" not in script and "torchrun" not in script  # torchrun alone would drop FSDP


def test_the_multinode_script_refuses_to_start_without_a_rank(tmp_path: Path) -> None:
    emit_launch(_step(n_gpus=2), tmp_path, gpu="l4", precision="bf16")
    done = subprocess.run(["bash", str(tmp_path / "launch-multinode.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "set NODE_RANK" in done.stderr
    assert "USE_TORCHRUN" in (tmp_path / "launch-multinode.sh").read_text()  # DDP can run under plain torchrun


@pytest.fixture
def cli():
    from advisor.app.cli import _register, app

    _register()
    return lambda *args: CliRunner().invoke(app, list(args))


def test_run_emit_launch_writes_and_lists_and_runs_nothing(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "big", "steps": [_step(n_gpus=8, distributed="zero3").model_dump()]}))
    out = tmp_path / "launch"
    result = cli("run", str(plan), "--emit-launch", str(out), "--gpu", "h100-80gb", "--out", str(tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    listed = result.stdout.split()
    assert str(out / "sky-task.yaml") in listed and all(Path(p).is_file() for p in listed)
    task = yaml.safe_load((out / "sky-task.yaml").read_text())
    assert task["resources"]["accelerators"] == "H100:8" and task["num_nodes"] == 1
    assert "deepspeed" in task["setup"]  # ZeRO needs DeepSpeed on the machines
    assert not (tmp_path / "runs").exists()  # nothing ran


def test_run_emit_launch_without_a_gpu_is_one_line(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "big", "steps": [_step(n_gpus=8).model_dump()]}))
    result = cli("run", str(plan), "--emit-launch", str(tmp_path / "launch"))
    assert result.exit_code == 2 and "--gpu" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "launch").exists()


def test_train_run_emit_launch(cli, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"name": "two", "steps": [_step(n_gpus=2).model_dump()]}))
    result = cli("train", "run", str(plan), "--emit-launch", str(tmp_path / "launch"), "--gpu", "t4")
    assert result.exit_code == 0, result.output
    task = yaml.safe_load((tmp_path / "launch" / "sky-task.yaml").read_text())
    assert task["resources"]["accelerators"] == "T4:2" and task["num_nodes"] == 1
    # T4 has no bf16: the plan's `auto` precision is fp16 there, and the config says so.
    assert yaml.safe_load((tmp_path / "launch" / "accelerate.yaml").read_text())["mixed_precision"] == "fp16"
    assert not (tmp_path / "runs").exists()
