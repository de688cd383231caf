"""ChatML conversations -> token ids and loss labels (Qwen report 3.1.2, again for Math-Qwen in 5.1).

A conversation renders exactly as the tokenizer's chat template (Qwen2's ChatML):

    <|im_start|>system\n{content}<|im_end|>\n<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n...

Labels are -100 on every token of system and user turns (header and content), on the assistant header
`<|im_start|>assistant\n`, and on the newline after each `<|im_end|>`; the assistant content and its closing
`<|im_end|>` are trained. The ids are those of generation: the prompt as the chat template renders it,
tokenised in one piece, then the assistant content tokenised on its own (see tokenize_chat; property-tested
for any content on the tiny and the real Qwen2 vocabulary).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.jsonl import iter_jsonl
from shared.tokenizer import IM_END, IM_START

IGNORE_INDEX = -100
ROLES = ("system", "user", "assistant")


class ChatFormatError(ValueError):
    """A conversation that cannot be trained on; the message names where it came from, `reason` names why
    (a stable key for data reports)."""

    def __init__(self, message: str, reason: str = "malformed_json"):
        super().__init__(message)
        self.reason = reason


@dataclass
class TokenizedChat:
    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def n_targets(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def validate_messages(obj: Any, where: str = "conversation") -> list[dict[str, str]]:
    """Check a `{"messages": [...]}` record (or a bare list); raise ChatFormatError naming `where`."""
    messages = obj.get("messages") if isinstance(obj, dict) else obj
    if not isinstance(messages, list) or not messages:
        raise ChatFormatError(f"{where}: expected a non-empty 'messages' list", "no_messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ChatFormatError(f"{where}: message {i} needs 'role' and 'content'", "invalid_message")
        if m["role"] not in ROLES:
            raise ChatFormatError(f"{where}: message {i} has unknown role {m['role']!r} (expected one of {ROLES})", "unknown_role")
        if not isinstance(m["content"], str):
            raise ChatFormatError(f"{where}: message {i} content is {type(m['content']).__name__}, not a string", "not_a_string")
        if not m["content"].strip():
            raise ChatFormatError(f"{where}: message {i} ({m['role']}) has empty content", "empty_content")
        if m["role"] == "system" and i != 0:
            raise ChatFormatError(f"{where}: a system message may only come first (message {i})", "misplaced_system")
    if not any(m["role"] == "assistant" for m in messages):
        raise ChatFormatError(f"{where}: no assistant turn, nothing to train on", "no_assistant_turn")
    return messages


def with_default_system(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    if system_prompt is None or messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]


def render_chatml(messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    text = "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in messages)
    return text + (f"{IM_START}assistant\n" if add_generation_prompt else "")


def _encode(tokenizer, text: str) -> list[int]:
    return tokenizer.encode(text, add_special_tokens=False)


def tokenize_chat(
    messages: list[dict[str, str]],
    tokenizer,
    *,
    train_on: str = "all",
    default_system_prompt: str | None = "You are a helpful assistant.",
) -> TokenizedChat:
    """input_ids and labels of a validated conversation (see module docstring for the mask).

    The ids are what generation sees: everything up to and including a trained turn's `<|im_start|>assistant\n`
    is tokenised in one piece, as the chat template renders the prompt (add_generation_prompt=True), and the
    assistant content (what the model generates after that prompt) on its own. Tokenising each turn's header and
    content apart would differ wherever BPE merges across them: content that starts with a newline gives
    "\n" + "\n" (198, 198) instead of the template's "\n\n" (271) in Qwen's vocabulary.
    """
    messages = with_default_system(messages, default_system_prompt)
    im_end = tokenizer.convert_tokens_to_ids(IM_END)
    last_assistant = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    ids: list[int] = []
    labels: list[int] = []
    prompt = ""  # rendered text not yet tokenised: system and user turns, untrained assistant turns, headers
    for i, m in enumerate(messages):
        trained = m["role"] == "assistant" and (train_on == "all" or i == last_assistant)
        if not trained:
            prompt += render_chatml([m])
            continue
        prompt_ids = _encode(tokenizer, prompt + f"{IM_START}assistant\n")
        completion = _encode(tokenizer, m["content"]) + [im_end]
        ids += prompt_ids + completion
        labels += [IGNORE_INDEX] * len(prompt_ids) + completion
        prompt = "\n"
    tail = _encode(tokenizer, prompt)
    return TokenizedChat(ids + tail, labels + [IGNORE_INDEX] * len(tail))


def fit_to_length(sample: TokenizedChat, max_len: int, policy: str) -> TokenizedChat | None:
    """Apply the over-long policy: None to skip, or the sample cut to max_len (truncating the last trained turn).

    A truncated sample keeps only as many tokens as fit; it is kept only if some target token survives.
    """
    if len(sample.input_ids) <= max_len:
        return sample
    if policy == "skip":
        return None
    ids, labels = sample.input_ids[:max_len], sample.labels[:max_len]
    if all(x == IGNORE_INDEX for x in labels):
        return None
    return TokenizedChat(ids, labels, truncated=True)


def read_jsonl(path: str | Path, skip_malformed: bool = False) -> Iterator[tuple[int, Any]]:
    """Chat JSONL lines; a malformed line raises (or, with skip_malformed, yields) a ChatFormatError naming it."""
    return iter_jsonl(path, skip_malformed=skip_malformed, error=ChatFormatError)
