"""Autoregressive token decoding (OpenVLA-style), and OpenVLA's token -> action bins.

**With a KV cache** (``cache``: a list of cache tensors): the ``prefill`` network runs once on
the prompt (``inputs``: an observation embedding, token ids...) and returns the logits at the
last prompt position and every cache tensor; the first token is their greedy argmax. Then the
``step`` network runs once per further token: it takes the previous token (``token``, shape
[1]), its sequence ``position`` and the cache, and returns the logits of the next token and the
updated cache. ``tokens`` tokens cost 1 prefill + ``tokens - 1`` step calls, as Hugging Face
``generate`` does (a step after the last token would compute logits nobody reads).

Cache tensors have a fixed maximum length, so the networks export to ONNX with static shapes:
the step writes the new key/value at ``position`` and attends to positions ``<= position``
(computed in the network from ``position``, or fed as ``attention_mask``: int64, 1 for
positions ``0..position``). Each cache entry names the step's input, the prefill's output that
fills it and the step's output that updates it; the three must have the same shape and dtype.

**Without a cache** (``cache: false``): the ``step`` network re-runs the whole sequence every
step: the prompt ``inputs``, the tokens generated so far (``token``: shape [``tokens``],
zero-padded) and ``position``; ``tokens`` calls in all.

In both modes ``position`` is the sequence position whose logits the network returns
(``prompt_length - 1 + k`` before the k-th token, k from 0): the same number with and without
a cache, so the two decode the same tokens.

**Bins** (``bins``), as OpenVLA's ``ActionTokenizer`` / ``predict_action``: 256 uniform bin
edges over [-1, 1] (255 centres); token ``t`` is bin ``clip(token_offset - t - 1, 0, 254)``
(``token_offset``: the tokenizer's vocabulary size without padding rows, so the last 256 ids
are the action bins, the highest id the lowest bin); the centre is unnormalised per action
dim from [-1, 1] to [``low``, ``high``] (the dataset's q01/q99) where ``mask`` is true (the
gripper is usually left normalised).

Outputs: ``output_tokens`` (int64, [tokens]) and, with bins, ``output_action`` (float32).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from edgekit.loop.blocks.base import Block, BlockError, check_io, need, network
from edgekit.loop.program import Arrays, TickContext
from edgekit.spec import NetworkSpec, TensorSpec


class CacheTensor(BaseModel):
    """One cache tensor: the ``step`` network's input ``input``, filled by the ``prefill``
    network's output ``prefill`` and updated by the step's output ``step``."""

    model_config = ConfigDict(extra="forbid")
    input: str
    prefill: str
    step: str


class Bins(BaseModel):
    """OpenVLA's action tokenizer: ``n_bins`` uniform bin edges over [-1, 1] per action dim."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    low: list[float] = Field(min_length=1)
    high: list[float] = Field(min_length=1)
    n_bins: int = Field(default=256, ge=2)
    token_offset: int = Field(ge=1)
    mask: list[bool] | None = None

    @model_validator(mode="after")
    def _dims(self) -> Bins:
        if len(self.high) != len(self.low):
            raise ValueError(f"low has {len(self.low)} dims but high has {len(self.high)}")
        if self.mask is not None and len(self.mask) != len(self.low):
            raise ValueError(f"mask has {len(self.mask)} dims but low has {len(self.low)}")
        if any(h < lo for lo, h in zip(self.low, self.high, strict=True)):
            raise ValueError("every high must be >= its low")
        if self.token_offset < self.n_bins:
            raise ValueError(f"token_offset {self.token_offset} < n_bins {self.n_bins}")
        return self

    def to_actions(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids -> continuous actions, exactly as OpenVLA's ``predict_action``."""
        edges = np.linspace(-1, 1, self.n_bins)
        centres = (edges[:-1] + edges[1:]) / 2.0
        index = np.clip(self.token_offset - tokens.astype(np.int64) - 1, 0, len(centres) - 1)
        normalized = centres[index]
        low, high = np.asarray(self.low), np.asarray(self.high)
        mask = np.ones(len(low), bool) if self.mask is None else np.asarray(self.mask)
        actions = np.where(mask, 0.5 * (normalized + 1) * (high - low) + low, normalized)
        return actions.astype(np.float32)


class Decode(Block):
    """Greedy autoregressive decoding of ``tokens`` tokens (see the module docstring)."""

    block: Literal["decode"]
    step: str
    prefill: str | None = None
    cache: list[CacheTensor] | Literal[False]
    inputs: dict[str, str] = {}
    token: str = "token"
    position: str = "position"
    attention_mask: str | None = None
    logits: str | None = None  # default: the network's first output
    prompt_length: int = Field(ge=1)
    tokens: int = Field(ge=1)
    bins: Bins | None = None
    output_tokens: str = "tokens"
    output_action: str = "action"
    position_shape: list[int] = []  # filled in from the step network's spec
    mask_length: int | None = None  # likewise, with attention_mask
    calls_network = True
    host_stage = "decode"

    @field_validator("cache", mode="before")
    @classmethod
    def _cache_list_or_false(cls, value: object) -> object:
        if value is not False and not isinstance(value, list):
            raise ValueError("expected a list of {input, prefill, step} cache tensors, or false")
        return value

    @model_validator(mode="after")
    def _mode(self) -> Decode:
        if self.cache is False and self.prefill is not None:
            raise ValueError(
                "cache: false re-runs the whole sequence through `step` every step; "
                "drop prefill (or declare the cache tensors)"
            )
        if self.cache is not False:
            if self.prefill is None:
                raise ValueError("a KV cache needs the prefill network that fills it")
            if not self.cache:
                raise ValueError("cache: list the cache tensors, or false for no cache")
            names = [c.input for c in self.cache]
            if len(set(names)) != len(names):
                raise ValueError(f"cache: an input is listed twice ({names})")
        if self.bins is not None and len(self.bins.low) != self.tokens:
            raise ValueError(
                f"bins: {len(self.bins.low)} action dims but {self.tokens} tokens "
                "(one token per action dim)"
            )
        return self

    def reads(self) -> list[str]:
        return list(self.inputs.values())

    def writes(self) -> list[str]:
        return [self.output_tokens] + ([self.output_action] if self.bins is not None else [])

    def calls(self) -> dict[str, int]:
        if self.cache is False:
            return {self.step: self.tokens}
        assert self.prefill is not None
        return {self.prefill: 1, **({self.step: self.tokens - 1} if self.tokens > 1 else {})}

    # --- checks against the networks' io specs ---------------------------------------------

    def check(self, networks: dict[str, NetworkSpec], where: str) -> None:
        step = network(networks, self.step, f"{where}.step")
        logits = self.logits or step.output_names[0]
        self.logits = logits
        fed = [self.token, self.position] + ([self.attention_mask] if self.attention_mask else [])
        if self.cache is False:
            check_io(step, [*self.inputs, *fed], [logits], where)
            self._check_int(step, self.token, [self.tokens], where)
        else:
            assert self.prefill is not None
            pre = network(networks, self.prefill, f"{where}.prefill")
            check_io(pre, list(self.inputs), [logits] + [c.prefill for c in self.cache], where)
            ins = [c.input for c in self.cache]
            check_io(step, [*fed, *ins], [logits] + [c.step for c in self.cache], where)
            self._check_int(step, self.token, [1], where)
            self._check_cache(pre, step, where)
            self._check_logits(pre, logits, where)
        self._check_logits(step, logits, where)
        self.position_shape = self._check_int(step, self.position, None, where)
        if self.position_shape not in ([], [1]):
            raise BlockError(
                f"{where}.position: {self.position!r} is {['batch', *self.position_shape]}; "
                "one position per row: [batch] or [batch, 1]"
            )
        if self.attention_mask:
            shape = self._check_int(step, self.attention_mask, None, where)
            need_len = self.prompt_length + self.tokens - 1
            if len(shape) != 1 or shape[0] < need_len:
                raise BlockError(
                    f"{where}.attention_mask: {self.attention_mask!r} is {shape}; the "
                    f"sequence needs [{need_len}] or longer (prompt_length + tokens - 1)"
                )
            self.mask_length = shape[0]

    def _check_int(
        self, net: NetworkSpec, name: str, shape: list[int] | None, where: str
    ) -> list[int]:
        spec = _spec(net.inputs, name)
        got = _batch_free(spec)
        if spec.dtype != "int64":
            raise BlockError(
                f"{where}: network {net.name!r} input {name!r} is {spec.dtype}; token ids, "
                "positions and attention masks are int64"
            )
        if (shape is not None and got != shape) or any(isinstance(d, str) for d in got):
            want = "" if shape is None else f"; the decode block feeds {['batch', *shape]}"
            raise BlockError(
                f"{where}: network {net.name!r} input {name!r} is {list(spec.shape)}"
                + (want or " (only the batch axis may be dynamic)")
            )
        return [int(d) for d in got]

    def _check_cache(self, pre: NetworkSpec, step: NetworkSpec, where: str) -> None:
        assert self.cache is not False
        for i, c in enumerate(self.cache):
            specs = {
                f"{step.name} input {c.input!r}": _spec(step.inputs, c.input),
                f"{pre.name} output {c.prefill!r}": _spec(pre.outputs, c.prefill),
                f"{step.name} output {c.step!r}": _spec(step.outputs, c.step),
            }
            seen = {(tuple(_batch_free(s)), s.dtype) for s in specs.values()}
            if len(seen) > 1:
                told = "; ".join(f"{k} {list(s.shape)} {s.dtype}" for k, s in specs.items())
                raise BlockError(f"{where}.cache[{i}]: the cache tensor does not match: {told}")

    def _check_logits(self, net: NetworkSpec, name: str, where: str) -> None:
        shape = _batch_free(_spec(net.outputs, name))
        if len(shape) != 1:
            raise BlockError(
                f"{where}.logits: network {net.name!r} output {name!r} is "
                f"{list(_spec(net.outputs, name).shape)}; the decode block takes the logits "
                "of one position, [batch, vocab]"
            )
        vocab = shape[0]
        if self.bins is not None and isinstance(vocab, int) and self.bins.token_offset > vocab:
            raise BlockError(
                f"{where}.bins.token_offset: {self.bins.token_offset} but network {net.name!r} "
                f"scores {vocab} tokens"
            )

    # --- the tick ----------------------------------------------------------------------------

    def _feeds(self, position: int, prompt: Arrays) -> Arrays:
        feeds = dict(prompt)
        feeds[self.position] = np.full((1, *self.position_shape), position, np.int64)
        if self.attention_mask:
            length = int(self.mask_length or 0)
            feeds[self.attention_mask] = (np.arange(length) <= position).astype(np.int64)[None]
        return feeds

    def run(self, ctx: TickContext, state: Arrays, rng: np.random.Generator) -> None:
        prompt = {k: need(state, v, f"decode {self.step}")[None] for k, v in self.inputs.items()}
        logits = self.logits or "output"
        out = np.zeros(self.tokens, np.int64)
        first = self.prompt_length - 1
        if self.cache is False:
            for k in range(self.tokens):
                feeds = self._feeds(first + k, prompt)
                feeds[self.token] = out[None].copy()
                scores = ctx.call(self.step, feeds)[logits]
                with ctx.host(self.host_stage):
                    out[k] = int(np.argmax(scores[0]))
        else:
            assert self.prefill is not None
            res = ctx.call(self.prefill, prompt)
            cache = {c.input: res[c.prefill] for c in self.cache}
            with ctx.host(self.host_stage):
                out[0] = int(np.argmax(res[logits][0]))
            for k in range(1, self.tokens):
                feeds = {**self._feeds(first + k, {}), **cache}
                feeds[self.token] = out[k - 1 : k][None].copy()
                res = ctx.call(self.step, feeds)
                cache = {c.input: res[c.step] for c in self.cache}
                with ctx.host(self.host_stage):
                    out[k] = int(np.argmax(res[logits][0]))
        state[self.output_tokens] = out
        if self.bins is not None:
            with ctx.host(self.host_stage):
                state[self.output_action] = self.bins.to_actions(out)


def _spec(specs: tuple[TensorSpec, ...], name: str) -> TensorSpec:
    return next(t for t in specs if t.name == name)


def _batch_free(spec: TensorSpec) -> list[int | str]:
    return list(spec.shape[1:])
