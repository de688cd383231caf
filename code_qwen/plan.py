"""Resource planner: for a model, a sequence length and a cluster, what fits on a GPU and how long 90B tokens take.

    python -m code_qwen.plan [config.yaml] [key=value ...] [--gpus-per-node 8 --nodes 1 --gpu h100-sxm
        --gpu-memory-gb 80 --mfu 0.4 --target-tokens 90e9 --json]

Memory model (bf16 weights, fp32 master weights and Adam states, DeepSpeed ZeRO over all GPUs as data parallel):
- model states per parameter: bf16 weights 2 B, bf16 gradients 2 B, fp32 master 4 B, Adam m and v 8 B, and the fp32
  copy of the gradient partition that DeepSpeed's mixed-precision optimisers build for the fp32 step (4 B; in
  ZeRO-3 only one `sub_group_size` chunk at a time). ZeRO-1 shards master, Adam and fp32 gradients, ZeRO-2 also
  the bf16 gradients, ZeRO-3 also the bf16 weights, and then holds the gathered weights and gradients of the
  largest module (4 B per parameter, the figure DeepSpeed's own estimator uses). ZeRO-2 totals equal
  DeepSpeed's `estimate_zero2_model_states_mem_needs`; ZeRO-3 totals exceed `estimate_zero3_model_states_mem_needs`
  by exactly 2 B/param/GPU, the persistent bf16 gradient partition (stage3.py `grad_partitions_flat_buffer`) that
  its 18 B/param formula leaves out.
- activations: the tensors autograd keeps for backward in a Hugging Face Qwen2-style model with flash attention
  (itemised in `layer_saved_bytes_per_token`), plus the loss's transient logits buffers (HF upcasts the logits
  to fp32 for the loss: with a 152k vocabulary these are ~12 GiB per 8192-token sequence, the largest single
  item for Qwen-7B). Activation checkpointing keeps
  each layer's input and recomputes one layer at a time during backward.
- the fp32 gradient copy exists only in the optimiser step, the activations only in forward/backward: a
  micro-batch fits when the larger of the two phases fits in GPU memory minus `--reserved-gb`.
FLOPs per token: 6 x (parameters in matmuls) + 12 x layers x seq_len x attention width (PaLM, appendix B: model
FLOPs; recomputation by checkpointing is not counted, so MFU here means model FLOPs utilisation).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from code_qwen.model_presets import (
    ModelArch,
    gpu_names,
    gpu_spec,
    largest_module_parameters,
    matmul_parameter_count,
    parameter_count,
    resolve_arch,
)
from shared.config import ConfigError, TinyModelConfig, apply_overrides, read_yaml

GIB = 2**30
DEEPSPEED_SUB_GROUP_SIZE = 1_000_000_000  # zero_optimization.sub_group_size default (elements)
DEFAULT_MODEL = "Qwen/Qwen-7B"
DEFAULT_SEQ_LEN = 8192  # Code-Qwen's context length (Qwen report, section 4.1)


@dataclass
class Cluster:
    gpus_per_node: int = 8
    nodes: int = 1
    gpu: str = "h100-sxm"
    gpu_memory_gib: float = 80.0
    peak_tflops: float = 989.0
    mfu: float = 0.4
    # CUDA context, cuBLAS workspaces, NCCL and DeepSpeed bucket buffers, allocator fragmentation.
    reserved_gib: float = 4.0

    @property
    def n_gpus(self) -> int:
        return self.gpus_per_node * self.nodes


# ----------------------------------------------------------------------------- model states


def model_state_bytes(arch: ModelArch, stage: int, dp: int) -> dict[str, float]:
    """Bytes per GPU of each model-state component under ZeRO `stage` with `dp` data-parallel ranks."""
    p = parameter_count(arch)
    partition = p / dp if stage >= 1 else p
    fp32_grad_elems = min(partition, DEEPSPEED_SUB_GROUP_SIZE) if stage == 3 else partition
    return {
        "weights_bf16": 2 * (p / dp if stage >= 3 else p),
        "grads_bf16": 2 * (p / dp if stage >= 2 else p),
        "grads_fp32_in_step": 4 * fp32_grad_elems,
        "master_fp32": 4 * partition,
        "adam_fp32": 8 * partition,
        "zero3_gathered": 4 * largest_module_parameters(arch) if stage == 3 else 0,
    }


# ----------------------------------------------------------------------------- activations


def layer_saved_bytes_per_token(arch: ModelArch) -> float:
    """Bytes autograd keeps per token for one decoder layer (bf16 compute, flash attention, no dropout)."""
    h, q, kv, i = arch.hidden_size, arch.q_dim, arch.kv_dim, arch.intermediate_size
    # HF's RMSNorm upcasts to fp32: it keeps the fp32 input (4h), the fp32 rsqrt (4) and the bf16 normalised
    # tensor (2h); its output (2h) is kept by the projections that read it.
    norm = 4 * h + 4 + 2 * h
    attention = 2 * h + 2 * q + 4 * kv + 4 * arch.num_attention_heads + 2 * q  # in, q/k/v after RoPE, lse, out
    mlp = 2 * h + 4 * 2 * i  # in; gate, up, silu(gate), silu(gate) * up
    return 2 * norm + attention + mlp


def outside_saved_bytes_per_token(arch: ModelArch) -> float:
    """Embedding ids and labels (int64), the final norm, the lm_head input and the fp32 log-softmax of the loss."""
    h = arch.hidden_size
    return 8 + 8 + (4 * h + 4 + 2 * h) + 2 * h + 4 * arch.vocab_size


def saved_activation_bytes(arch: ModelArch, seq_len: int, micro_batch: int, checkpointing: bool) -> float:
    """What autograd holds at the end of the forward pass (checkpointing: each layer's bf16 input only)."""
    per_layer = 2 * arch.hidden_size if checkpointing else layer_saved_bytes_per_token(arch)
    per_token = arch.num_hidden_layers * per_layer + outside_saved_bytes_per_token(arch)
    return per_token * seq_len * micro_batch


def loss_transient_bytes_per_token(arch: ModelArch) -> float:
    """Beyond the saved fp32 log-softmax: the bf16 logits held by the model output (2V) and, in the backward of
    log-softmax, the fp32 gradient arriving from the loss plus the fp32 gradient it produces (4V + 4V). The forward
    peak (bf16 logits + their fp32 upcast + log-softmax) is smaller by 4V."""
    return 10 * arch.vocab_size


def peak_activation_bytes(arch: ModelArch, seq_len: int, micro_batch: int, checkpointing: bool) -> float:
    """Saved activations plus the larger transient: the loss's logits buffers at the start of backward, or, with
    checkpointing, the one layer being recomputed later in backward (the logits buffers are gone by then)."""
    tokens = seq_len * micro_batch
    transient = loss_transient_bytes_per_token(arch)
    if checkpointing:
        transient = max(transient, layer_saved_bytes_per_token(arch))
    return saved_activation_bytes(arch, seq_len, micro_batch, checkpointing) + transient * tokens


# ----------------------------------------------------------------------------- fitting and time


def phase_peak_bytes(states: dict[str, float], activations: float) -> float:
    """The larger of forward/backward (activations, no fp32 gradients yet) and the optimiser step (no activations)."""
    total = sum(states.values())
    return max(total - states["grads_fp32_in_step"] + activations, total)


def largest_micro_batch(arch: ModelArch, seq_len: int, stage: int, checkpointing: bool, cluster: Cluster) -> int:
    budget = (cluster.gpu_memory_gib - cluster.reserved_gib) * GIB
    states = model_state_bytes(arch, stage, cluster.n_gpus)
    per_sequence = peak_activation_bytes(arch, seq_len, 1, checkpointing)
    if phase_peak_bytes(states, per_sequence) > budget:
        return 0
    fb_states = sum(states.values()) - states["grads_fp32_in_step"]
    return int((budget - fb_states) // per_sequence)


def flops_per_token(arch: ModelArch, seq_len: int) -> float:
    return 6 * matmul_parameter_count(arch) + 12 * arch.num_hidden_layers * seq_len * arch.q_dim


def days_for_tokens(arch: ModelArch, seq_len: int, tokens: float, cluster: Cluster) -> float:
    flops_per_s = cluster.n_gpus * cluster.peak_tflops * 1e12 * cluster.mfu
    return tokens * flops_per_token(arch, seq_len) / flops_per_s / 86400


# ----------------------------------------------------------------------------- the plan


@dataclass
class PlanRequest:
    model: str = DEFAULT_MODEL
    seq_len: int = DEFAULT_SEQ_LEN
    target_tokens: float = 90e9
    # None: the planner chooses (lowest ZeRO stage that fits, checkpointing only when needed, largest micro-batch).
    zero_stage: int | None = None
    gradient_checkpointing: bool | None = None
    micro_batch_size: int | None = None
    grad_accum: int = 1
    # When set, grad_accum is derived so that a step holds at least this many tokens.
    global_batch_tokens: int | None = None
    cluster: Cluster = field(default_factory=Cluster)
    arch: ModelArch | None = None  # set when the config describes the model itself (the tiny preset)


def choose_setup(arch: ModelArch, req: PlanRequest) -> tuple[int, bool, int]:
    """(ZeRO stage, checkpointing, micro-batch): the configured values where given, else the cheapest that fits.
    Recomputation costs a third more compute on every token, so it comes last. ZeRO 0-2 move the same bytes per
    step (all-reduce = reduce-scatter + all-gather), so among them the largest micro-batch wins (on a tie the
    higher stage, for its headroom); ZeRO-3 adds a weight all-gather in backward (1.5x the traffic) and is used
    only when 0-2 do not fit."""
    stages = [req.zero_stage] if req.zero_stage is not None else [0, 1, 2, 3]
    ckpts = [req.gradient_checkpointing] if req.gradient_checkpointing is not None else [False, True]
    need = req.micro_batch_size or 1
    for ckpt in ckpts:
        for group in ([s for s in stages if s < 3], [s for s in stages if s == 3]):
            fits = {s: largest_micro_batch(arch, req.seq_len, s, ckpt, req.cluster) for s in group}
            fitting = [s for s in group if fits[s] >= need]
            if fitting:
                best = max(fitting, key=lambda s: (fits[s], s))
                return best, ckpt, req.micro_batch_size or fits[best]
    return stages[-1], ckpts[-1], 0


def build_plan(req: PlanRequest) -> dict[str, Any]:
    arch = req.arch or resolve_arch(req.model)
    c = req.cluster
    rows = []
    for stage in (0, 1, 2, 3):
        states = model_state_bytes(arch, stage, c.n_gpus)
        for ckpt in (False, True):
            act = peak_activation_bytes(arch, req.seq_len, 1, ckpt)
            rows.append({
                "zero_stage": stage,
                "checkpointing": ckpt,
                **{k + "_gib": v / GIB for k, v in states.items()},
                "model_states_gib": sum(states.values()) / GIB,
                "activations_per_sequence_gib": act / GIB,
                "peak_at_micro_batch_1_gib": phase_peak_bytes(states, act) / GIB + c.reserved_gib,
                "largest_micro_batch": largest_micro_batch(arch, req.seq_len, stage, ckpt, c),
            })
    stage, ckpt, mbs = choose_setup(arch, req)
    grad_accum = req.grad_accum
    if req.global_batch_tokens and mbs:
        grad_accum = math.ceil(req.global_batch_tokens / (mbs * c.n_gpus * req.seq_len))
    tokens_per_step = mbs * grad_accum * c.n_gpus * req.seq_len
    return {
        "model": arch.name,
        "architecture": {k: v for k, v in asdict(arch).items() if k not in ("name", "source")},
        "parameters": parameter_count(arch),
        "flops_per_token": flops_per_token(arch, req.seq_len),
        "seq_len": req.seq_len,
        "cluster": {**asdict(c), "n_gpus": c.n_gpus},
        "per_gpu": rows,
        "chosen": {
            "zero_stage": stage,
            "checkpointing": ckpt,
            "micro_batch_size": mbs,
            "grad_accum": grad_accum,
            "tokens_per_step": tokens_per_step,
            "steps_to_target": math.ceil(req.target_tokens / tokens_per_step) if tokens_per_step else None,
        },
        "requested_micro_batch": req.micro_batch_size or 1,
        "target_tokens": req.target_tokens,
        "days_to_target": days_for_tokens(arch, req.seq_len, req.target_tokens, c),
    }


def render(plan: dict[str, Any]) -> str:
    c, ch = plan["cluster"], plan["chosen"]
    lines = [
        f"model {plan['model']}: {plan['parameters'] / 1e9:.3f}B parameters, seq_len {plan['seq_len']}",
        f"FLOPs per token (training, 6N + attention): {plan['flops_per_token'] / 1e9:.1f} GFLOP",
        f"cluster: {c['nodes']} node(s) x {c['gpus_per_node']} GPUs = {c['n_gpus']} x {c['gpu_memory_gib']:g} GiB "
        f"({c['gpu']}, {c['peak_tflops']:g} TFLOPS bf16 peak, assumed MFU {c['mfu']:g}, "
        f"{c['reserved_gib']:g} GiB reserved per GPU)",
        "",
        "memory per GPU in GiB (bf16 weights/grads, fp32 master + Adam; activations per sequence of seq_len):",
        f"{'ZeRO':>4} {'ckpt':>4} {'weights':>8} {'grads':>7} {'fp32grad':>8} {'master':>7} {'adam':>7} "
        f"{'z3buf':>6} {'states':>7} {'act/seq':>8} {'peak@1':>7} {'max mb':>6}",
    ]
    for r in plan["per_gpu"]:
        lines.append(
            f"{r['zero_stage']:>4} {'yes' if r['checkpointing'] else 'no':>4} {r['weights_bf16_gib']:>8.1f} "
            f"{r['grads_bf16_gib']:>7.1f} {r['grads_fp32_in_step_gib']:>8.1f} {r['master_fp32_gib']:>7.1f} "
            f"{r['adam_fp32_gib']:>7.1f} {r['zero3_gathered_gib']:>6.1f} {r['model_states_gib']:>7.1f} "
            f"{r['activations_per_sequence_gib']:>8.1f} {r['peak_at_micro_batch_1_gib']:>7.1f} "
            f"{r['largest_micro_batch']:>6}"
        )
    lines += [
        "fp32grad: fp32 gradient partition built for the optimiser step; z3buf: ZeRO-3 gathered weights+grads of the",
        "largest module; act/seq: activation peak of one sequence; peak@1: GPU peak at micro-batch 1 incl. reserve;",
        "max mb: largest micro-batch that fits (0: none).",
        "",
        f"chosen: ZeRO-{ch['zero_stage']}, activation checkpointing {'on' if ch['checkpointing'] else 'off'}, "
        + (f"micro-batch {ch['micro_batch_size']} x grad_accum {ch['grad_accum']} x {c['n_gpus']} GPUs"
           if ch["micro_batch_size"] else
           f"micro-batch {plan['requested_micro_batch']} DOES NOT FIT (see 'max mb'; add GPUs or memory, use "
           "checkpointing or a higher ZeRO stage, or shorten seq_len)"),
        f"tokens per step: {ch['tokens_per_step']:,}"
        + (f"  -> {ch['steps_to_target']:,} steps to {plan['target_tokens']:.3g} tokens" if ch["steps_to_target"] else ""),
        f"days to {plan['target_tokens']:.3g} tokens at MFU {c['mfu']:g}: {plan['days_to_target']:.1f}"
        + (" (model FLOPs; checkpointing recomputes the forward, so the GPUs must reach"
           f" {c['mfu'] * 4 / 3:.2f} hardware FLOPs utilisation)" if ch["checkpointing"] else ""),
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line


def _load_recipe_dict(path: Path) -> dict[str, Any]:
    """A recipe YAML with its `base:` chain merged (the planner reads only the few keys it needs)."""
    data = read_yaml(path)
    base = data.pop("base", None)
    if base is None:
        return data
    merged = _load_recipe_dict((path.parent / base).resolve())
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _tiny_arch(model: dict[str, Any]) -> ModelArch:
    t = {**asdict(TinyModelConfig()), **(model.get("tiny") or {})}
    heads = int(t["num_attention_heads"])
    return ModelArch(
        name="tiny", hidden_size=int(t["hidden_size"]), num_hidden_layers=int(t["num_hidden_layers"]),
        num_attention_heads=heads, num_key_value_heads=int(t["num_key_value_heads"]),
        head_dim=int(t["hidden_size"]) // heads, intermediate_size=int(t["intermediate_size"]),
        # the tiny tokenizer adds its special tokens to this, so the real vocabulary is a few rows larger
        vocab_size=int(model.get("tiny_vocab_size", 4096)), tie_word_embeddings=bool(t["tie_word_embeddings"]),
        qkv_bias=True,
    )


def request_from_recipe(data: dict[str, Any], cluster: Cluster, target_tokens: float) -> PlanRequest:
    model = data.get("model") or {}
    train = data.get("train") or {}
    name = str(model.get("name_or_path", DEFAULT_MODEL))
    ckpt = model.get("gradient_checkpointing")
    return PlanRequest(
        model=name,
        seq_len=int(train.get("seq_len", DEFAULT_SEQ_LEN)),
        target_tokens=target_tokens,
        zero_stage=None if train.get("zero_stage") is None else int(train["zero_stage"]),
        gradient_checkpointing=None if ckpt is None else bool(ckpt),
        micro_batch_size=None if train.get("micro_batch_size") is None else int(train["micro_batch_size"]),
        grad_accum=int(train.get("grad_accum", 1)),
        cluster=cluster,
        arch=_tiny_arch(model) if name == "tiny" else None,
    )


def parse_args(argv: list[str] | None) -> tuple[PlanRequest, bool]:
    p = argparse.ArgumentParser(prog="python -m code_qwen.plan", description=__doc__.split("\n\n")[0])
    p.add_argument("items", nargs="*", help="[config.yaml] [key=value ...] (model.name_or_path=, train.seq_len=, ...)")
    p.add_argument("--gpus-per-node", type=int, default=8)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpu", default="h100-sxm", choices=gpu_names(), help="memory and peak TFLOPS preset")
    p.add_argument("--gpu-memory-gb", type=float, default=None, help="GPU memory in GiB (overrides --gpu)")
    p.add_argument("--peak-tflops", type=float, default=None, help="dense bf16 peak (overrides --gpu)")
    p.add_argument("--mfu", type=float, default=0.4)
    p.add_argument("--reserved-gb", type=float, default=4.0, help="GiB per GPU kept for context/buffers")
    p.add_argument("--target-tokens", type=float, default=90e9)
    p.add_argument("--global-batch-tokens", type=float, default=None,
                   help="derive grad_accum so that a step holds at least this many tokens")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    a = p.parse_args(argv)
    if a.gpus_per_node < 1 or a.nodes < 1 or not 0 < a.mfu <= 1:
        p.error("--gpus-per-node and --nodes must be >= 1 and --mfu in (0, 1]")
    spec = gpu_spec(a.gpu)
    cluster = Cluster(
        gpus_per_node=a.gpus_per_node, nodes=a.nodes, gpu=a.gpu,
        gpu_memory_gib=a.gpu_memory_gb if a.gpu_memory_gb is not None else spec.memory_gib,
        peak_tflops=a.peak_tflops if a.peak_tflops is not None else spec.peak_bf16_tflops,
        mfu=a.mfu, reserved_gib=a.reserved_gb,
    )
    items = list(a.items)
    data: dict[str, Any] = {}
    if items and "=" not in items[0]:
        path = Path(items.pop(0))
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        data = _load_recipe_dict(path)
    data = apply_overrides(data, items)
    req = request_from_recipe(data, cluster, a.target_tokens)
    if a.global_batch_tokens is not None:
        req.global_batch_tokens = int(a.global_batch_tokens)
    return req, a.json


def main(argv: list[str] | None = None) -> int:
    try:
        req, as_json = parse_args(argv)
        plan = build_plan(req)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"code_qwen.plan: {e}", file=sys.stderr)
        return 2
    print(json.dumps(plan, indent=2) if as_json else render(plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
