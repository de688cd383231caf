"""The steps of `just gpu-check` (bench/gpu_check.py runs them and prints the table); each returns a Row."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch


@dataclass
class Row:
    name: str
    status: str  # ok | FAIL | skipped
    summary: str
    data: dict = field(default_factory=dict)
    seconds: float = 0.0


# Public shapes (Qwen2 config.json on the hub): 1.5B and 0.5B.
QWEN2_1P5B: dict[str, Any] = dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                  intermediate_size=8960, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6,
                  max_position_embeddings=32768)
QWEN2_0P5B: dict[str, Any] = dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                  intermediate_size=4864, vocab_size=151936, tie_word_embeddings=True, rope_theta=1e6,
                  max_position_embeddings=32768)


def has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b))


def packed_batch(vocab: int, rows: int, seq: int, seed: int, device) -> dict[str, torch.Tensor]:
    """Random token rows, each packed with documents of random lengths (position_ids restart per document)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (rows, seq), generator=gen)
    pos = torch.empty_like(ids)
    for r in range(rows):
        start = 0
        while start < seq:
            length = int(torch.randint(seq // 16, seq // 2, (1,), generator=gen))
            end = min(seq, start + length)
            pos[r, start:end] = torch.arange(end - start)
            start = end
    return {"input_ids": ids.to(device), "position_ids": pos.to(device), "labels": ids.clone().to(device)}


def _qwen2(shape: dict[str, Any], attn: str, dtype: torch.dtype, seed: int = 0):
    from transformers import AutoModelForCausalLM, Qwen2Config

    torch.manual_seed(seed)
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(Qwen2Config(**shape), attn_implementation=attn, dtype=dtype)


# ----------------------------------------------------------------------------- checks


def check_flash_vs_sdpa_packed(args) -> Row:
    if not has("flash_attn"):
        return Row("flash_vs_sdpa_packed", "skipped", "flash-attn not installed")
    from shared.packed_attention import use_packed_attention
    from shared.packed_loss import packed_loss_sum

    shape = dict(QWEN2_1P5B, num_hidden_layers=4, vocab_size=32768)
    batch = packed_batch(shape["vocab_size"], rows=2, seq=4096, seed=0, device="cuda")
    results = {}
    for name, attn, dtype in (("fp32", "sdpa", torch.float32), ("sdpa_packed", "sdpa", torch.bfloat16),
                              ("flash", "flash_attention_2", torch.bfloat16)):
        model = _qwen2(shape, attn, dtype)
        if attn == "sdpa":
            assert use_packed_attention(model)
        loss, n = packed_loss_sum(model, batch)
        (loss / n).backward()
        grads = torch.cat([p.grad.flatten().float() for p in model.parameters() if p.grad is not None])
        results[name] = (float(loss) / n, grads)
        del model
        torch.cuda.empty_cache()
    ref_loss, ref_grads = results["fp32"]
    err = {k: {"loss": abs(v[0] - ref_loss) / abs(ref_loss), "grads": _rel(v[1], ref_grads)}
           for k, v in results.items() if k != "fp32"}
    ok = all(err["flash"][q] <= max(2 * err["sdpa_packed"][q], 1e-3) for q in ("loss", "grads"))
    summary = (f"vs fp32: flash loss {err['flash']['loss']:.1e} grads {err['flash']['grads']:.1e}; "
               f"sdpa_packed loss {err['sdpa_packed']['loss']:.1e} grads {err['sdpa_packed']['grads']:.1e}")
    return Row("flash_vs_sdpa_packed", "ok" if ok else "FAIL", summary, err)


def bf16_accumulation_errors(model_factory: Callable[[], torch.nn.Module], rows: list, pad_id: int,
                             stage: int) -> dict[str, float]:
    """Relative L2 differences of accumulated bf16 gradients: DeepSpeed 8x1 vs the exact (fp64) sum of the micro-
    batch gradients, vs 1x8, and what bf16 accumulation would have held. Used by the CPU test too."""
    import deepspeed
    from deepspeed.utils import safe_get_full_grad

    from shared.config import RunConfig, load_config
    from shared.distributed import init_distributed
    from shared.packed_loss import packed_loss_sum
    from shared.packing import collate_rows
    from shared.trainer import build_ds_config, build_optimizer

    dist = init_distributed()
    n_targets = sum(r.n_targets for r in rows)

    def accumulated(micro_batch: int) -> torch.Tensor:
        cfg = load_config(RunConfig, None, [f"train.zero_stage={stage}", "train.precision=bf16",
                                            f"train.micro_batch_size={micro_batch}",
                                            f"train.grad_accum={len(rows) // micro_batch}"])
        model = model_factory().to(dist.device)
        engine, *_ = deepspeed.initialize(model=model, optimizer=build_optimizer(model, cfg),
                                          config=build_ds_config(cfg, 1, torch.bfloat16), dist_init_required=False)
        assert engine.get_data_types() == (torch.bfloat16, torch.float32), engine.get_data_types()
        batches = [collate_rows(rows[k:k + micro_batch], pad_id) for k in range(0, len(rows), micro_batch)]
        for k, batch in enumerate(batches):
            loss, _ = packed_loss_sum(engine, {key: v.to(dist.device) for key, v in batch.items()})
            engine.backward(loss / n_targets, scale_wrt_gas=False)
            if k < len(batches) - 1:
                engine.step()  # not a boundary: DeepSpeed only counts the micro-step
        grads = [safe_get_full_grad(p) for p in engine.module.parameters()]
        assert all(g is not None and g.dtype == torch.float32 for g in grads)
        return torch.cat([g.flatten() for g in grads]).double().cpu()

    one_by_eight, eight_by_one = accumulated(len(rows)), accumulated(1)
    model = model_factory().to(dist.device)
    micro = []
    for row in rows:
        model.zero_grad()
        batch = {key: v.to(dist.device) for key, v in collate_rows([row], pad_id).items()}
        loss, _ = packed_loss_sum(model, batch)
        (loss / n_targets).backward()
        micro.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).double().cpu())
    exact = torch.stack(micro).sum(0)
    bf16_sum = micro[0].bfloat16()
    for g in micro[1:]:
        bf16_sum = bf16_sum + g.bfloat16()
    return {"8x1 vs exact sum": _rel(eight_by_one, exact), "bf16-accumulated vs exact sum": _rel(bf16_sum, exact),
            "8x1 vs 1x8": _rel(eight_by_one, one_by_eight), "bf16-accumulated vs 1x8": _rel(bf16_sum, one_by_eight)}


def check_bf16_accumulation(args) -> Row:
    from shared.packing import Row as DataRow

    shape = dict(QWEN2_1P5B, num_hidden_layers=2, hidden_size=512, num_attention_heads=8, intermediate_size=1408,
                 vocab_size=32768)
    batch = packed_batch(shape["vocab_size"], rows=8, seq=1024, seed=1, device="cpu")
    rows = [DataRow(batch["input_ids"][i].numpy(), batch["labels"][i].numpy(), batch["position_ids"][i].numpy())
            for i in range(8)]
    from shared.packed_attention import use_packed_attention

    def bf16_model():
        model = _qwen2(shape, "sdpa", torch.bfloat16)
        use_packed_attention(model)
        return model

    err = bf16_accumulation_errors(bf16_model, rows, pad_id=0, stage=2)
    ok = err["8x1 vs exact sum"] <= 1e-6 < err["bf16-accumulated vs exact sum"]
    return Row("bf16_accumulation", "ok" if ok else "FAIL", ", ".join(f"{k} {v:.1e}" for k, v in err.items()), err)


def _export_random(shape: dict[str, Any], folder: Path, tokenizer) -> Path:
    from shared.tokenizer import ensure_chat_template

    model = _qwen2(shape, "sdpa", torch.bfloat16)
    model.save_pretrained(folder, safe_serialization=True)
    ensure_chat_template(tokenizer)
    tokenizer.save_pretrained(folder)
    del model
    torch.cuda.empty_cache()
    return folder


def _tiny_tokenizer():
    from shared.config import ModelConfig
    from shared.modeling import load_tokenizer

    return load_tokenizer(ModelConfig())


def check_vllm_greedy(args) -> Row:
    if not has("vllm"):
        return Row("vllm_greedy", "skipped", "vLLM not installed")
    from eval.vllm_check import greedy_agreement

    tok = _tiny_tokenizer()
    # A random model's logits are nearly flat; a wider init makes greedy choices clear of kernel-level ties.
    shape = dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=688, vocab_size=len(tok), tie_word_embeddings=True, initializer_range=0.2,
                 bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    export = _export_random(shape, Path(args.workdir) / "tiny-export", tok)
    prompts = [f"Question {i}: what is {i} plus {2 * i}?" for i in range(32)]
    # HF (the reference) then vLLM, one engine at a time, vLLM in a child process of its own (eval.vllm_worker)
    result = greedy_agreement(str(export), prompts, max_new_tokens=32)
    same = len(prompts) - len(result["mismatches"])  # mismatches lists at most 10: exact when it passes
    return Row("vllm_greedy", "ok" if result["match"] else "FAIL",
               f"{same}/{len(prompts)} prompts give identical greedy completions (first 10 mismatches listed)",
               result)


class RandomRows:
    """A RowDataset of packed random-token rows (throughput does not depend on the text)."""

    def __init__(self, vocab: int, seq: int, n: int):
        from shared.packing import Row as DataRow

        batch = packed_batch(vocab, rows=n, seq=seq, seed=2, device="cpu")
        self.rows = [DataRow(batch["input_ids"][i].numpy(), batch["labels"][i].numpy(),
                             batch["position_ids"][i].numpy()) for i in range(n)]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        return self.rows[i]


def train_throughput(seq: int, micro_batch: int, steps: int, warmup: int, workdir: Path) -> Row:
    """Our trainer's own step (DeepSpeed ZeRO-2, bf16 with fp32 accumulation, packed loss), timed after warm-up."""
    from shared.config import RunConfig, load_config
    from shared.trainer import Trainer

    name = f"train_1.5b_seq{seq}"
    attn = "flash_attention_2" if has("flash_attn") else "sdpa"
    model = _qwen2(QWEN2_1P5B, attn, torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    cfg = load_config(RunConfig, None, [f"runs_dir={workdir}", f"run_name=seq{seq}", f"train.seq_len={seq}",
                                        f"train.micro_batch_size={micro_batch}", "train.grad_accum=1",
                                        "train.zero_stage=2", "train.precision=bf16", f"train.max_steps={steps}",
                                        "train.save_every=1000000", "train.log_every=1000000"])
    run = Trainer(cfg, recipe="gpu-check", dataset=RandomRows(QWEN2_1P5B["vocab_size"], seq, micro_batch * steps),
                  model=model, tokenizer=_tiny_tokenizer())
    run._setup()  # the trainer's engine and step, without its checkpoints and export (GBs of disk here)
    engine = run._built_engine()
    engine.train()
    torch.cuda.reset_peak_memory_stats()
    tokens, seconds = 0.0, 0.0
    for k in range(steps):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = run._train_step()
        torch.cuda.synchronize()
        if k >= warmup:
            tokens += out["real_tokens"]
            seconds += time.perf_counter() - t0
    from shared.metrics import peak_flops

    tps = tokens / seconds
    mfu = tps * run.flops_per_token / peak_flops(run.dist.device)
    data = {"tokens_per_s_per_gpu": tps, "mfu": mfu, "attn": attn, "micro_batch": micro_batch,
            "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30, "loss": out["loss_sum"] / out["targets"]}
    run.engine = None
    del engine, model, run
    gc.collect()
    torch.cuda.empty_cache()
    return Row(name, "ok", f"{tps:,.0f} tokens/s/GPU, MFU {mfu:.1%} ({attn}, micro-batch {micro_batch}, "
                           f"peak {data['peak_memory_gib']:.1f} GiB)", data)


def check_train_8192(args) -> Row:
    return train_throughput(8192, 2, args.steps, 2, Path(args.workdir))


def check_train_1024(args) -> Row:
    return train_throughput(1024, 16, args.steps, 2, Path(args.workdir))


def check_liger_flce(args) -> Row:
    if not has("liger_kernel"):
        return Row("liger_flce", "skipped", "liger-kernel not installed")
    import torch.nn.functional as F
    from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

    n, hidden, vocab = 8192, QWEN2_1P5B["hidden_size"], QWEN2_1P5B["vocab_size"]
    gen = torch.Generator(device="cuda").manual_seed(0)
    h = torch.randn(n, hidden, device="cuda", dtype=torch.bfloat16, generator=gen)
    w = (torch.randn(vocab, hidden, device="cuda", dtype=torch.bfloat16, generator=gen) * 0.02)
    target = torch.randint(0, vocab, (n,), device="cuda", generator=gen)
    liger = LigerFusedLinearCrossEntropyLoss()
    ways = {"logits+ce": lambda hh, ww: F.cross_entropy((hh @ ww.T).float(), target),
            "liger": lambda hh, ww: liger(ww, hh, target)}
    data: dict[str, dict[str, Any]] = {}
    for name, fn in ways.items():
        hh, ww = h.clone().requires_grad_(), w.clone().requires_grad_()
        fn(hh, ww).backward()  # warm-up (kernel compilation)
        hh.grad = ww.grad = None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        t0 = time.perf_counter()
        loss = fn(hh, ww)
        loss.backward()
        torch.cuda.synchronize()
        data[name] = {"ms": 1e3 * (time.perf_counter() - t0), "peak_extra_gib": (torch.cuda.max_memory_allocated() - base) / 2**30,
                      "loss": float(loss), "grad": cast(torch.Tensor, ww.grad).float()}
    diff = abs(data["liger"]["loss"] - data["logits+ce"]["loss"]) / data["logits+ce"]["loss"]
    grad_diff = _rel(data["liger"].pop("grad"), data["logits+ce"].pop("grad"))
    ok = diff < 1e-2 and grad_diff < 5e-2
    summary = (f"logits+ce {data['logits+ce']['ms']:.0f} ms, {data['logits+ce']['peak_extra_gib']:.1f} GiB; liger "
               f"{data['liger']['ms']:.0f} ms, {data['liger']['peak_extra_gib']:.1f} GiB; loss rel diff {diff:.1e}, "
               f"grad {grad_diff:.1e}")
    return Row("liger_flce", "ok" if ok else "FAIL", summary, {**data, "loss_rel_diff": diff, "grad_rel_diff": grad_diff})


def check_vllm_throughput(args) -> Row:
    if not has("vllm"):
        return Row("vllm_throughput", "skipped", "vLLM not installed")
    from eval.vllm_check import sampling_throughput

    tok = _tiny_tokenizer()
    # 0.5B-shaped layers; the vocabulary is the local tokenizer's (a random model samples every id, and each must
    # decode), so the embedding is smaller than Qwen2-0.5B's.
    shape = dict(QWEN2_0P5B, vocab_size=len(tok), bos_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                 pad_token_id=tok.pad_token_id)
    export = _export_random(shape, Path(args.workdir) / "half-b-export", tok)
    prompts = [f"Problem {i}: a train leaves at {i} o'clock. Solve step by step." for i in range(64)]
    # RFT's shape: k = 8 seeded samples per prompt, engine start excluded from the rate
    result = sampling_throughput(str(export), prompts, k=8, max_new_tokens=256, backend="vllm", temperature=1.0)
    return Row("vllm_throughput", "ok", f"{result['samples_per_s']:.1f} samples/s (64 prompts x 8, <= 256 tokens, "
                                        "engine start excluded)", result)
