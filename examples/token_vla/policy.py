"""An OpenVLA-style token-decoding policy on a tiny transformers Llama, declared as a tick.

OpenVLA (Kim et al., 2024) prepends the image's patch embeddings, projected into the language
model's embedding space, to the instruction's token embeddings; the Llama then generates one
token per action dim, greedily, and the last 256 ids of the vocabulary are 256 uniform bins
over [-1, 1], unnormalised with the dataset's q01/q99 (the gripper dim stays normalised).

Here the language model is transformers' ``LlamaForCausalLM`` with a tiny config, and its
layers run in small wrapper modules that take and return the key/value cache as explicit
tensors of a fixed maximum length (what exports to ONNX with static shapes; transformers'
``DynamicCache`` grows and does not):

* ``prefill(image, instruction)`` -> logits at the last prompt position, and the key and value
  of every layer for the prompt's positions (zeros after them);
* ``step(token, position, past_keys, past_values)`` -> logits of the next token, and the cache
  with the token's key/value written at ``position`` (every layer's, stacked on axis 1);
* ``full(image, instruction, generated, position)`` -> logits at ``position`` of the whole
  sequence, through transformers' own ``LlamaModel.forward`` (the policy without a cache:
  ``make_policy(cache=False)``).

The tick is a ``decode`` block: prefill once, 6 steps, 7 tokens -> 7 action dims.

    edgekit export examples/token_vla/policy.py:make_policy --out out/token-vla
    edgekit bench out/token-vla
    edgekit quantize out/token-vla --calib synthetic --out out/token-vla-int8 \\
        --max-error token_agreement=0.9

Weights are a fixed-seed initialisation: the example measures the real tick of a real
architecture, not a trained policy (load your own with ``module.load_state_dict``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from edgekit.loader import UserModel
from edgekit.spec import TensorSpec

ACTION_DIMS, N_BINS = 7, 256
# the dataset statistics OpenVLA keeps per action dim (here: a made-up arm's q01/q99)
Q01 = [-0.03, -0.05, -0.04, -0.1, -0.1, -0.15, 0.0]
Q99 = [0.03, 0.05, 0.04, 0.1, 0.1, 0.15, 1.0]
GRIPPER_NORMALISED = [True] * 6 + [False]


class Vlm(nn.Module):
    """The shared weights: a patch embedding + projector (the vision side) and the Llama."""

    def __init__(
        self, hidden: int, layers: int, heads: int, vocab: int, image: int, patch: int, text: int
    ) -> None:
        super().__init__()
        self.config = LlamaConfig(
            vocab_size=vocab, hidden_size=hidden, intermediate_size=2 * hidden,
            num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=heads,
            max_position_embeddings=256, initializer_range=0.1, tie_word_embeddings=False,
        )  # fmt: skip
        self.config._attn_implementation = "eager"  # an additive mask: exports as it runs
        self.lm = LlamaForCausalLM(self.config).eval()
        self.patches = nn.Conv2d(3, hidden, kernel_size=patch, stride=patch)
        self.project = nn.Sequential(
            nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, hidden)
        )
        self.prompt_length = (image // patch) ** 2 + text
        self.image, self.text = image, text

    def embed_prompt(self, image: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        p = self.patches(image).flatten(2).transpose(1, 2)  # (B, patches, hidden)
        return torch.cat([self.project(p), self.lm.model.embed_tokens(instruction)], dim=1)


class _Slots:
    """The cache object transformers' attention calls ``update`` on: fixed-length key/value
    buffers. At prefill the prompt's keys/values are kept (and padded to the buffer length);
    at a step the token's are written at ``position`` and the whole buffer is attended to."""

    def __init__(self, length: int, past: tuple[torch.Tensor, torch.Tensor] | None, write: Any):
        self.length, self.past, self.write = length, past, write
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, **kw: Any):
        if self.past is None:  # prefill: attend to the prompt, keep it padded
            pad = key.new_zeros(*key.shape[:2], self.length - key.shape[2], key.shape[3])
            self.keys.append(torch.cat([key, pad], 2))
            self.values.append(torch.cat([value, pad], 2))
            return key, value
        self.keys.append(torch.where(self.write, key, self.past[0][:, layer_idx]))
        self.values.append(torch.where(self.write, value, self.past[1][:, layer_idx]))
        return self.keys[-1], self.values[-1]

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.stack(self.keys, 1), torch.stack(self.values, 1)


def _run_layers(vlm: Vlm, h: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor, cache: _Slots):
    model = vlm.lm.model
    rope = model.rotary_emb(h, position_ids=pos)
    for layer in model.layers:
        h = layer(h, attention_mask=mask, position_embeddings=rope, cache=cache)
    return vlm.lm.lm_head(model.norm(h[:, -1]))


class Prefill(nn.Module):
    def __init__(self, vlm: Vlm, max_length: int) -> None:
        super().__init__()
        self.vlm, self.max_length = vlm, max_length

    def forward(self, image: torch.Tensor, instruction: torch.Tensor):
        h = self.vlm.embed_prompt(image, instruction)
        n = h.shape[1]
        pos = torch.arange(n).unsqueeze(0).expand(h.shape[0], n)
        causal = torch.ones(n, n, dtype=torch.bool).tril()
        mask = torch.zeros(n, n).masked_fill(~causal, torch.finfo(torch.float32).min)
        cache = _Slots(self.max_length, None, None)
        logits = _run_layers(self.vlm, h, pos, mask[None, None], cache)
        return (logits, *cache.stacked())


class Step(nn.Module):
    def __init__(self, vlm: Vlm, max_length: int) -> None:
        super().__init__()
        self.vlm, self.max_length = vlm, max_length

    def forward(self, token, position, past_keys, past_values):
        h = self.vlm.lm.model.embed_tokens(token)  # (B, 1, hidden)
        slots = torch.arange(self.max_length)
        write = (slots[None] == position[:, None])[:, None, :, None]  # (B, 1, L, 1)
        seen = slots[None] <= position[:, None]  # (B, L)
        mask = torch.zeros(seen.shape).masked_fill(~seen, torch.finfo(torch.float32).min)
        cache = _Slots(self.max_length, (past_keys, past_values), write)
        logits = _run_layers(self.vlm, h, position[:, None], mask[:, None, None], cache)
        return (logits, *cache.stacked())


class Full(nn.Module):
    """No cache: the prompt and the tokens so far through ``LlamaModel.forward`` every step."""

    def __init__(self, vlm: Vlm) -> None:
        super().__init__()
        self.vlm = vlm

    def forward(self, image, instruction, generated, position):
        embeds = torch.cat(
            [self.vlm.embed_prompt(image, instruction), self.vlm.lm.model.embed_tokens(generated)],
            dim=1,
        )
        h = self.vlm.lm.model(inputs_embeds=embeds, use_cache=False).last_hidden_state
        at = position.reshape(-1, 1, 1).expand(-1, 1, h.shape[-1])
        return self.vlm.lm.lm_head(torch.gather(h, 1, at)[:, 0])


def make_policy(
    cache: bool = True, hidden: int = 64, layers: int = 2, heads: int = 4, vocab: int = 512,
    image: int = 32, patch: int = 8, text: int = 8,
) -> UserModel:  # fmt: skip
    torch.manual_seed(0)
    vlm = Vlm(hidden, layers, heads, vocab, image, patch, text).eval()
    prompt = vlm.prompt_length
    max_length = prompt + ACTION_DIMS - 1  # the last token is never fed back
    head_dim = hidden // heads
    kv = ("batch", layers, heads, max_length, head_dim)
    prompt_in = [
        TensorSpec("image", ("batch", 3, image, image)),
        TensorSpec("instruction", ("batch", text), "int64", "int", 0, vocab),
    ]
    at = TensorSpec("position", ("batch",), "int64", "int", prompt - 1, max_length)
    decode: dict[str, Any] = {
        "block": "decode", "inputs": {"image": "image", "instruction": "instruction"},
        "prompt_length": prompt, "tokens": ACTION_DIMS,
        "bins": {"low": Q01, "high": Q99, "n_bins": N_BINS, "token_offset": vocab,
                 "mask": GRIPPER_NORMALISED},
    }  # fmt: skip
    if cache:
        names = ["past_keys", "past_values"]
        networks: dict[str, nn.Module] = {
            "prefill": Prefill(vlm, max_length),
            "step": Step(vlm, max_length),
        }
        inputs = {
            "prefill": prompt_in,
            "step": [
                TensorSpec("token", ("batch", 1), "int64", "int", 0, vocab), at,
                *[TensorSpec(n, kv) for n in names],
            ],
        }  # fmt: skip
        decode.update(prefill="prefill", step="step", cache=[
            {"input": n, "prefill": f"output_{i + 1}", "step": f"output_{i + 1}"}
            for i, n in enumerate(names)
        ])  # fmt: skip
    else:
        networks = {"full": Full(vlm)}
        generated = TensorSpec("generated", ("batch", ACTION_DIMS), "int64", "int", 0, vocab)
        inputs = {"full": [*prompt_in, generated, at]}
        decode.update(step="full", cache=False, token="generated")
    return UserModel(
        networks=networks,
        inputs=inputs,
        tick={
            "observation": [
                {"name": "image", "shape": [3, image, image]},
                {"name": "instruction", "shape": [text], "dtype": "int64", "sampler": "int",
                 "low": 0, "high": vocab},
            ],
            "blocks": [decode],
            "outputs": ["tokens", "action"],
        },
        hz=5.0,
    )  # fmt: skip
