"""The resource planner against independent computations: DeepSpeed's estimators, real models' parameters,
autograd's saved tensors and torch's FLOP counter."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForCausalLM, Qwen2Config

from code_qwen import plan
from code_qwen.model_presets import (
    arch_from_hf_config,
    largest_module_parameters,
    parameter_count,
    preset,
    preset_names,
    resolve_arch,
)

GIB = 2**30


def tiny_config(tied: bool = True, vocab: int = 320) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=vocab, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        intermediate_size=96, tie_word_embeddings=tied, use_cache=False,
    )


def tiny_model(cfg: Qwen2Config, attn: str = "sdpa", dtype: torch.dtype = torch.float32):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=dtype)


# ----------------------------------------------------------------------------- model states vs DeepSpeed


@pytest.mark.parametrize("name", ["Qwen/Qwen-7B", "Qwen/Qwen2-7B"])
@pytest.mark.parametrize("gpus_per_node,nodes", [(8, 1), (8, 4)])
def test_zero2_and_zero3_model_states_agree_with_deepspeed(name, gpus_per_node, nodes):
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    arch = preset(name)
    n = parameter_count(arch)
    dp = gpus_per_node * nodes
    _, ds_zero2 = estimate_zero2_model_states_mem_needs(
        total_params=n, num_gpus_per_node=gpus_per_node, num_nodes=nodes, cpu_offload=False
    )
    _, ds_zero3, _ = estimate_zero3_model_states_mem_needs(
        total_params=n, largest_layer_params=largest_module_parameters(arch), num_gpus_per_node=gpus_per_node,
        num_nodes=nodes, cpu_offload=False, cpu_offload_params=False,
    )
    ours_zero2 = sum(plan.model_state_bytes(arch, 2, dp).values())
    ours_zero3 = sum(plan.model_state_bytes(arch, 3, dp).values())
    assert ours_zero2 == pytest.approx(ds_zero2, rel=0.10)
    assert ours_zero3 == pytest.approx(ds_zero3, rel=0.10)
    # The whole difference, itemised: ZeRO-2 is the same sum; DeepSpeed's ZeRO-3 formula (18 B/param/GPU) leaves
    # out the persistent bf16 gradient partition (stage3.py: grad_partitions_flat_buffer) that our model counts.
    assert ours_zero2 == pytest.approx(ds_zero2, abs=2)
    assert ours_zero3 - ds_zero3 == pytest.approx(2 * n / dp, abs=2)


def test_zero_stages_shard_more_and_more():
    arch = preset("Qwen/Qwen-7B")
    totals = [sum(plan.model_state_bytes(arch, s, 8).values()) for s in range(4)]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) == 4
    # With one GPU there is nothing to shard: stages 0-2 hold the same bytes.
    single = [sum(plan.model_state_bytes(arch, s, 1).values()) for s in range(3)]
    assert single[0] == single[1] == single[2] == 20 * parameter_count(arch)


# ----------------------------------------------------------------------------- parameter counts


@pytest.mark.parametrize("name", preset_names())
def test_preset_counts_match_published(name):
    arch = preset(name)
    # Published counts are rounded to 3 significant figures.
    assert parameter_count(arch) == pytest.approx(arch.published_params, rel=5e-3)


def test_qwen2_0_5b_count_from_architecture():
    arch = preset("Qwen/Qwen2-0.5B")
    assert round(parameter_count(arch) / 1e6) == 494


def test_qwen_v1_config_json_layout_is_read_like_the_preset():
    # Qwen-7B's config.json stores both SwiGLU halves in intermediate_size and has no num_key_value_heads.
    p = preset("Qwen/Qwen-7B")
    cfg = {
        "model_type": "qwen", "hidden_size": p.hidden_size, "num_hidden_layers": p.num_hidden_layers,
        "num_attention_heads": p.num_attention_heads, "kv_channels": p.head_dim,
        "intermediate_size": 2 * p.intermediate_size, "vocab_size": p.vocab_size, "tie_word_embeddings": False,
    }
    assert parameter_count(arch_from_hf_config(cfg, "qwen-v1")) == parameter_count(p)


@pytest.mark.parametrize("tied", [True, False])
def test_count_equals_real_model_built_from_config(tmp_path, tied):
    from deepspeed.runtime.zero.stage3 import model_to_params

    cfg = tiny_config(tied)
    model = tiny_model(cfg)
    cfg.save_pretrained(tmp_path)  # the local config.json path of the planner
    arch = resolve_arch(str(tmp_path))
    real = sum(dict((p.data_ptr(), p.numel()) for p in model.parameters()).values())
    assert real == sum(p.numel() for p in model.parameters())  # parameters() already yields a tied weight once
    assert parameter_count(arch) == real
    assert (parameter_count(arch), largest_module_parameters(arch)) == model_to_params(model)


def test_missing_config_key_is_a_clear_error():
    with pytest.raises(ValueError, match="vocab_size"):
        arch_from_hf_config({"hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1,
                             "intermediate_size": 16}, "broken")


# ----------------------------------------------------------------------------- FLOPs and activations


def test_flops_per_token_equals_torch_flop_counter():
    cfg = tiny_config(tied=True)
    model = tiny_model(cfg, attn="eager")  # eager attention runs as matmuls the counter sees
    batch, seq = 2, 32
    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=ids, labels=ids).loss.backward()
    arch = arch_from_hf_config(cfg.to_dict(), "tiny")
    assert counter.get_total_flops() == plan.flops_per_token(arch, seq) * batch * seq


@pytest.mark.parametrize("checkpointing", [False, True])
def test_saved_activations_equal_what_autograd_keeps(checkpointing):
    cfg = tiny_config(tied=False, vocab=1000)
    model = tiny_model(cfg, dtype=torch.bfloat16)
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    batch, seq = 2, 64
    params = {p.data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def keep(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if t.data_ptr() not in params:
            storages[s.data_ptr()] = s.nbytes()
        return t

    ids = torch.randint(0, cfg.vocab_size, (batch, seq), generator=torch.Generator().manual_seed(0))
    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        model(input_ids=ids, labels=ids)
    arch = arch_from_hf_config(cfg.to_dict(), "tiny")
    # The only per-sequence (not per-token) tensors autograd keeps are RoPE's cos/sin tables.
    assert sum(storages.values()) == pytest.approx(
        plan.saved_activation_bytes(arch, seq, batch, checkpointing), rel=0.02
    )


@pytest.mark.parametrize("name", preset_names())
def test_activations_grow_with_micro_batch_and_shrink_with_checkpointing(name):
    arch = preset(name)
    for ckpt in (False, True):
        sizes = [plan.peak_activation_bytes(arch, 8192, mb, ckpt) for mb in (1, 2, 4, 8)]
        assert all(a < b for a, b in zip(sizes, sizes[1:], strict=False))
    for mb in (1, 4):
        assert plan.peak_activation_bytes(arch, 8192, mb, True) < plan.peak_activation_bytes(arch, 8192, mb, False)


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
@pytest.mark.parametrize("ckpt", [False, True])
def test_largest_micro_batch_is_the_boundary_of_the_budget(stage, ckpt):
    arch, cluster = preset("Qwen/Qwen2-1.5B"), plan.Cluster()
    budget = (cluster.gpu_memory_gib - cluster.reserved_gib) * GIB
    states = plan.model_state_bytes(arch, stage, cluster.n_gpus)
    mb = plan.largest_micro_batch(arch, 8192, stage, ckpt, cluster)

    def peak(m: int) -> float:
        return plan.phase_peak_bytes(states, plan.peak_activation_bytes(arch, 8192, m, ckpt))

    assert mb >= 1 and peak(mb) <= budget < peak(mb + 1)


# ----------------------------------------------------------------------------- command line


def test_cli_json_for_qwen_7b(capsys):
    assert plan.main(["--json", "--gpus-per-node", "8", "--nodes", "2", "--global-batch-tokens", "4e6"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "Qwen/Qwen-7B" and out["seq_len"] == 8192 and out["cluster"]["n_gpus"] == 16
    chosen = out["chosen"]
    assert chosen["tokens_per_step"] == chosen["micro_batch_size"] * chosen["grad_accum"] * 16 * 8192 >= 4e6
    assert len(out["per_gpu"]) == 8 and out["days_to_target"] > 0


def test_cli_reads_recipe_yaml_with_base_and_overrides(tmp_path, capsys):
    (tmp_path / "base.yaml").write_text("model:\n  name_or_path: Qwen/Qwen2-0.5B\ntrain:\n  seq_len: 4096\n")
    (tmp_path / "run.yaml").write_text("base: base.yaml\ntrain:\n  zero_stage: 1\n  micro_batch_size: 2\n")
    assert plan.main([str(tmp_path / "run.yaml"), "train.seq_len=2048", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "Qwen/Qwen2-0.5B" and out["seq_len"] == 2048
    assert out["chosen"]["zero_stage"] == 1 and out["chosen"]["micro_batch_size"] == 2


def test_cli_plans_the_tiny_default_and_prints_a_table(capsys):
    assert plan.main(["model.name_or_path=tiny", "train.seq_len=512", "--gpus-per-node", "1"]) == 0
    text = capsys.readouterr().out
    assert "model tiny" in text and "tokens per step" in text


def test_cli_missing_config_is_an_error(tmp_path, capsys):
    assert plan.main([str(tmp_path / "absent.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_configured_micro_batch_that_does_not_fit_is_reported(capsys):
    cluster = plan.Cluster()
    fits = plan.largest_micro_batch(preset("Qwen/Qwen-7B"), 8192, 2, True, cluster)
    args = ["train.zero_stage=2", "model.gradient_checkpointing=true"]
    assert plan.main([*args, f"train.micro_batch_size={fits + 1}", "--json"]) == 0
    too_big = json.loads(capsys.readouterr().out)["chosen"]
    assert too_big["micro_batch_size"] == 0 and too_big["tokens_per_step"] == 0
    assert plan.main([*args, f"train.micro_batch_size={fits}", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"]["micro_batch_size"] == fits >= 1
