"""Several processes: the `accelerate` config (DDP, FSDP, DeepSpeed ZeRO-2/3), the `accelerate launch` command,
what a failed launch means, and the multi-node and SkyPilot files `advisor run --emit-launch` writes.

The config is a plain dict in the layout `accelerate config` writes (accelerate.commands.config.config_args
.ClusterConfig), so `accelerate launch --config_file` reads it without questions.

On a CPU the config says `MULTI_GPU` with `use_cpu: false`: that is what makes `accelerate launch` start the
processes through torchrun (accelerate 1.x sends `use_cpu: true` to its simple launcher, one process, or to
`mpirun`). Each process then builds its `TrainingArguments` with `use_cpu=True`, and accelerate's
`PartialState(cpu=True)` under torchrun's `LOCAL_RANK` is `MULTI_CPU` over gloo (accelerate/state.py
`_prepare_backend`; MPI only when torch was built with it).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from advisor.core.errors import AdvisorError
from advisor.core.fileio import write_text_atomic
from advisor.core.models import TrainStep

__all__ = ["SKYPILOT_ACCELERATORS", "accelerate_config", "emit_launch", "emit_launch_on", "failure_message",
           "launch_command", "n_processes", "node_layout", "training_steps", "write_accelerate_config"]

CONFIG_FILE = "accelerate.yaml"
LAUNCH_LOG = "launch.log"
MULTINODE_SCRIPT = "launch-multinode.sh"
SKYPILOT_TASK = "sky-task.yaml"
PLAN_FILE = "plan.yaml"
# Most GPUs one cloud machine offers (SkyPilot's largest common quantity, `sky show-gpus -a`).
MAX_GPUS_PER_NODE = 8
MAIN_PROCESS_PORT = 29500  # torch.distributed's default rendezvous port
# Catalog GPU (rules/catalog/gpus.yaml) -> SkyPilot accelerator name (`sky show-gpus -a`,
# docs.skypilot.co/en/stable/compute/gpus.html). SkyPilot has one `H100` for SXM and PCIe.
SKYPILOT_ACCELERATORS = {
    "h200": "H200", "h100-80gb": "H100", "h100-pcie": "H100", "a100-80gb": "A100-80GB", "a100-40gb": "A100",
    "l40s": "L40S", "a6000": "A6000", "a10g-24gb": "A10G", "l4": "L4", "rtx-3090": "RTX3090",
    "rtx-4090": "RTX4090", "t4": "T4", "v100-16gb": "V100", "v100-32gb": "V100-32GB",
}


def n_processes(step: TrainStep, device_kind: str) -> int:
    """Training processes on this machine: one per GPU on GPUs, `n_processes` (default 1) on a CPU.

    Raises:
        AdvisorError: `n_processes` differs from `n_gpus` on a GPU machine, or FSDP/DeepSpeed asked of a CPU.
    """
    if device_kind == "cpu":
        if (step.n_processes or 1) > 1 and step.distributed != "ddp":
            # accelerate 1.15 turns FSDP on only over a GPU-type process group (AcceleratorState: FSDP replaces
            # MULTI_GPU and its kin, never MULTI_CPU), so an FSDP config on a CPU would train as plain DDP;
            # DeepSpeed needs CUDA.
            raise AdvisorError(f"`distributed: {step.distributed}` needs GPUs; on a CPU several processes train "
                               "with DDP only", "set `distributed: ddp`, or train on GPUs")
        return step.n_processes or 1
    if step.n_processes not in (None, step.n_gpus):
        raise AdvisorError(f"`n_processes` is {step.n_processes} but `n_gpus` is {step.n_gpus}; on GPUs each "
                           "process drives one GPU", "leave `n_processes` out, or set it to `n_gpus`")
    return step.n_gpus


def training_steps(steps: list) -> list[tuple[int, TrainStep]]:
    """The training steps of a plan's `steps`, each with its index (from 0)."""
    return [(i, step) for i, step in enumerate(steps) if isinstance(step, TrainStep)]


def _mixed_precision(precision: str) -> str:
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def accelerate_config(step: TrainStep, precision: str, *, num_processes: int | None = None,
                      num_machines: int = 1) -> dict:
    """The accelerate config for `step.distributed` over `num_processes` processes (default `step.n_gpus`) in all,
    on `num_machines` machines. One process is `distributed_type: NO`."""
    processes = num_processes or step.n_gpus
    config = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "machine_rank": 0,
        "num_machines": num_machines,
        "num_processes": processes,
        "mixed_precision": _mixed_precision(precision),
        "use_cpu": False,  # even on a CPU: see the module docstring
        "rdzv_backend": "static",
        "same_network": True,
        "main_training_function": "main",
        "downcast_bf16": "no",
    }
    if num_machines > 1:
        config["main_process_port"] = MAIN_PROCESS_PORT
    if processes == 1:
        return {**config, "distributed_type": "NO"}
    if step.distributed == "ddp":
        return {**config, "distributed_type": "MULTI_GPU", "gpu_ids": "all"}
    if step.distributed == "fsdp":
        return {**config, "distributed_type": "FSDP", "fsdp_config": {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",  # one FSDP unit per decoder block
            "fsdp_reshard_after_forward": True,  # full sharding (ZeRO-3 equivalent)
            "fsdp_state_dict_type": "SHARDED_STATE_DICT",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": step.offload,  # parameters, gradients and optimizer state in CPU memory
            # Gradient checkpointing is done by FSDP's own activation checkpointing with FSDP2.
            "fsdp_activation_checkpointing": step.grad_ckpt,
        }}
    stage = 2 if step.distributed == "zero2" else 3
    deepspeed = {
        "zero_stage": stage,
        "gradient_accumulation_steps": step.grad_accum,
        "offload_optimizer_device": "cpu" if step.offload else "none",
        "offload_param_device": "cpu" if step.offload and stage == 3 else "none",
        "zero3_init_flag": stage == 3,
    }
    if stage == 3:
        deepspeed["zero3_save_16bit_model"] = True  # so the saved model is one ordinary checkpoint
    return {**config, "distributed_type": "DEEPSPEED", "deepspeed_config": deepspeed}


def _write_yaml(path: Path, data: dict, header: str = "") -> Path:
    """Write `data` as YAML (after the comment `header`); multi-line strings (scripts) as literal `|` blocks."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value: str):
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    write_text_atomic(path, header + yaml.dump(data, Dumper=Dumper, sort_keys=False))
    return path


def write_accelerate_config(step: TrainStep, precision: str, run_dir: Path, *, num_processes: int | None = None) -> Path:
    """Write the one-machine config as YAML into the run directory and return its path."""
    return _write_yaml(run_dir / CONFIG_FILE, accelerate_config(step, precision, num_processes=num_processes))


def launch_command(config_path: Path, run_dir: Path, *, resume: bool, port: int | None = None) -> list[str]:
    """`accelerate launch` running this backend's worker (`python -m backends.train RUN_DIR`) in every process;
    `port`: the processes' rendezvous port (None: torch's default, 29500)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config_path),
               *(["--main_process_port", str(port)] if port else []), "-m", "backends.train", str(run_dir)]
    return [*command, "--resume"] if resume else command


# torch.distributed.elastic's failure summary (errors/__init__.py `_FAILURE_FORMAT_TEMPLATE`): one block per failed
# process, with `rank      : 1 (local_rank: 1)` then `exitcode  : -9 (pid: 123)`; a negative code is a signal.
_FAILURE = re.compile(r"^\s*rank\s*:\s*(\d+) \(local_rank: \d+\)\n\s*exitcode\s*:\s*(-?\d+)", re.MULTILINE)
WORKER_ERROR_PREFIX = "error: "


def _failures(log_text: str) -> list[tuple[int, int]]:
    """(rank, exit code) of every failed process in the launcher's summary; the cause first.

    The cause is a process killed by a signal other than SIGTERM (torchrun stops the others with SIGTERM, and
    a survivor can also fail on its broken connection), then the summary's own order.
    """
    import signal

    found = [(int(rank), int(code)) for rank, code in _FAILURE.findall(log_text)]
    return sorted(found, key=lambda f: 0 if f[1] < 0 and -f[1] != signal.SIGTERM else 1)


def failure_message(log_text: str, returncode: int, log_path: Path) -> AdvisorError:
    """The one-line error for a failed launch, from what the launcher and its processes printed.

    A process that stopped on an advisor error printed it as `error: ...` (see `backends.train.__main__`); a
    process killed by a signal shows in torchrun's summary, and is exit 2 with a hint to resume.
    """
    import signal

    from advisor.core.errors import RunFailedError

    for line in log_text.splitlines():
        if line.startswith(WORKER_ERROR_PREFIX):
            return RunFailedError(line[len(WORKER_ERROR_PREFIX):].strip(), f"the launcher's output is in `{log_path}`")
    failures = _failures(log_text)
    if failures and failures[0][1] < 0:
        rank, number = failures[0][0], -failures[0][1]
        name = signal.Signals(number).name if number in {s.value for s in signal.Signals} else "unknown signal"
        return AdvisorError(f"training process {rank} was killed (signal {number}, {name}); the other processes "
                            "were stopped",
                            "run the same command again with `--resume` (`advisor run` resumes by itself) to "
                            f"continue from the last checkpoint; the launcher's output is in `{log_path}`")
    if failures:
        return RunFailedError(f"training process {failures[0][0]} exited with {failures[0][1]}",
                              f"its output is in `{log_path}`")
    return RunFailedError(f"`accelerate launch` exited with {returncode}", f"its output is in `{log_path}`")


def node_layout(n_gpus: int) -> tuple[int, int]:
    """(machines, GPUs per machine) for `n_gpus`: one machine up to `MAX_GPUS_PER_NODE`, else full machines.

    Raises:
        AdvisorError: more than one machine's worth that does not split into full machines.
    """
    if n_gpus <= MAX_GPUS_PER_NODE:
        return 1, n_gpus
    if n_gpus % MAX_GPUS_PER_NODE:
        raise AdvisorError(f"{n_gpus} GPUs do not split into machines of {MAX_GPUS_PER_NODE}",
                           f"set `n_gpus` to a multiple of {MAX_GPUS_PER_NODE}")
    return n_gpus // MAX_GPUS_PER_NODE, MAX_GPUS_PER_NODE


def _multinode_script(step: TrainStep, nodes: int, gpus_per_node: int) -> str:
    """A shell script run once on every machine: rank and head address come from the environment."""
    launch = ["accelerate", "launch", "--config_file", CONFIG_FILE,
              "--num_machines", '"$NUM_NODES"', "--num_processes", '"$((NUM_NODES * GPUS_PER_NODE))"',
              "--machine_rank", '"$NODE_RANK"', "--main_process_ip", '"$MAIN_PROCESS_IP"',
              "--main_process_port", '"$MAIN_PROCESS_PORT"',
              "-m", "backends.train", '"$RUN_DIR"', "--plan", PLAN_FILE]
    torchrun = ["torchrun", "--nnodes", '"$NUM_NODES"', "--nproc-per-node", '"$GPUS_PER_NODE"',
                "--node-rank", '"$NODE_RANK"', "--master-addr", '"$MAIN_PROCESS_IP"', "--master-port",
                '"$MAIN_PROCESS_PORT"', "-m", "backends.train", '"$RUN_DIR"', "--plan", PLAN_FILE]
    lines = [
        "#!/usr/bin/env bash",
        f"# Train `{step.method}` on {nodes * gpus_per_node} GPU(s): run this on each of the {nodes} machine(s),",
        "# from this folder, with NODE_RANK (0 on the head machine) and MAIN_PROCESS_IP (the head's address) set.",
        "set -euo pipefail",
        'cd "$(dirname "$0")"',
        ': "${NODE_RANK:?set NODE_RANK: 0 on the head machine, 1, 2, ... on the others}"',
        ': "${MAIN_PROCESS_IP:?set MAIN_PROCESS_IP to the head machine address}"',
        f': "${{MAIN_PROCESS_PORT:={MAIN_PROCESS_PORT}}}"',
        f': "${{NUM_NODES:={nodes}}}"',
        f': "${{GPUS_PER_NODE:={gpus_per_node}}}"',
        ': "${RUN_DIR:=run}"',
        'mkdir -p "$RUN_DIR"',
    ]
    if step.distributed == "ddp":
        lines += ["# DDP also runs under plain torchrun (FSDP and DeepSpeed need accelerate's config):",
                  "if [ \"${USE_TORCHRUN:-0}\" = 1 ]; then", "  exec " + " ".join(torchrun), "fi"]
    lines += ["exec " + " ".join(launch), ""]
    return "\n".join(lines)


def _sky_task(step: TrainStep, accelerator: str, nodes: int, gpus_per_node: int, source_dir: Path | None) -> dict:
    setup = ["set -e"]
    package = '-e "$HOME/advisor[train]"' if source_dir is not None else '"advisor[train]"'
    setup.append(f"pip install {package}" + (" deepspeed" if step.distributed in ("zero2", "zero3") else ""))
    run = [
        "set -e",
        "export NODE_RANK=$SKYPILOT_NODE_RANK",
        'export MAIN_PROCESS_IP=$(echo "$SKYPILOT_NODE_IPS" | head -n1)',
        "export NUM_NODES=$SKYPILOT_NUM_NODES",
        "export GPUS_PER_NODE=$SKYPILOT_NUM_GPUS_PER_NODE",
        f"bash {MULTINODE_SCRIPT}",
    ]
    task = {
        "name": f"advisor-train-{step.method}",
        "resources": {"accelerators": f"{accelerator}:{gpus_per_node}"},
        "num_nodes": nodes,
        "workdir": ".",  # this folder: plan, data, configs and the script; synced to every machine
    }
    if source_dir is not None:
        task["file_mounts"] = {"~/advisor": str(source_dir)}
    return {**task, "setup": "\n".join(setup) + "\n", "run": "\n".join(run) + "\n"}


def _source_checkout() -> Path | None:
    """The advisor source folder when running from a checkout (it has pyproject.toml), else None."""
    import advisor

    root = Path(advisor.__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "backends").is_dir() else None


def emit_launch(step: TrainStep, out_dir: Path, *, gpu: str, precision: str) -> list[Path]:
    """Write what trains `step` on its `n_gpus` `gpu`s elsewhere: the plan (with its data beside it), the
    accelerate config, the multi-node script and the SkyPilot task. Nothing runs.

    Raises:
        AdvisorError: a GPU SkyPilot has no name for, or a GPU count that does not split into machines.
    """
    import shutil

    from advisor.core.planning import Plan, save_plan

    accelerator = SKYPILOT_ACCELERATORS.get(gpu)
    if accelerator is None:
        raise AdvisorError(f"no SkyPilot accelerator name for GPU `{gpu}`",
                           f"plan for one of: {', '.join(sorted(SKYPILOT_ACCELERATORS))}")
    nodes, per_node = node_layout(step.n_gpus)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / "data"
    data_dir.mkdir(exist_ok=True)
    data = data_dir / Path(step.data_path).name
    shutil.copyfile(step.data_path, data)
    portable = step.model_copy(update={"data_path": str(data.resolve())})  # save_plan writes it relative
    plan = out_dir / PLAN_FILE
    save_plan(Plan(name=f"train-{step.method}", steps=[portable]), plan)
    config = _write_yaml(out_dir / CONFIG_FILE, accelerate_config(step, precision, num_processes=step.n_gpus,
                                                                 num_machines=nodes))
    script = out_dir / MULTINODE_SCRIPT
    write_text_atomic(script, _multinode_script(step, nodes, per_node))
    script.chmod(0o755)
    task = _write_yaml(out_dir / SKYPILOT_TASK, _sky_task(step, accelerator, nodes, per_node, _source_checkout()),
                       header=f"# From this folder (`workdir: .` is where `sky` runs): sky launch -c advisor-train "
                              f"{SKYPILOT_TASK}\n")
    return [plan, data, config, script, task]


def emit_launch_on(step: TrainStep, out_dir: Path, gpu_name: str | None) -> list[Path]:
    """`emit_launch` for the catalog GPU `gpu_name`, or else the one the step was planned for, at the precision
    the plan's `precision` gives on it.

    Raises:
        AdvisorError: no GPU named (a plan written by hand), an unknown GPU, or a precision it cannot run.
    """
    from advisor.core.catalog import resolve_gpu
    from advisor.core.estimate.precision import choose_precision
    from advisor.core.models import DeviceInfo

    name = gpu_name or (step.prediction.gpu if step.prediction is not None else None)
    if name is None:
        raise AdvisorError("the training step names no GPU to launch on (a plan written by hand has none)",
                           "add `--gpu NAME` (see `advisor gpus`)")
    gpu = resolve_gpu(name)
    device = DeviceInfo(kind="cuda", name=gpu.label, n_devices=step.n_gpus, memory_bytes=gpu.memory_bytes,
                        supports_bf16=gpu.supports_bf16)
    precision, _ = choose_precision(step.precision, device, strict=True)
    return emit_launch(step, out_dir, gpu=gpu.name, precision=precision)
