"""Decision blocks: autoregressive token decoding (OpenVLA-style, with and without a KV
cache, OpenVLA's action bins) and reranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.errors import BadInputError
from edgekit.loop import TickContext
from edgekit.loop.blocks.decode import Bins

FIX = Path(__file__).parent / "fixtures" / "decoding.py"


def _program(factory: str):
    pytest.importorskip("torch")
    from edgekit.loader import load
    from edgekit.models import build_program
    from edgekit.runtimes import TorchRuntime

    src = load(f"{FIX}:{factory}")
    return build_program(src.spec.program), TorchRuntime(src.networks, src.spec, 1)


# --- OpenVLA's action tokenizer (prismatic/vla/action_tokenizer.py, modeling_prismatic.py) ---


def openvla_tokenize(actions, q01, q99, vocab_size, n_bins=256):
    """ActionTokenizer.__call__ on actions normalised to [-1, 1] with the q01/q99 stats."""
    normalized = np.clip(2 * (actions - q01) / (q99 - q01) - 1, -1, 1)
    return vocab_size - np.digitize(normalized, np.linspace(-1, 1, n_bins))


def openvla_decode(token_ids, q01, q99, mask, vocab_size, n_bins=256):
    """OpenVLAForActionPrediction.predict_action, after generate()."""
    bins = np.linspace(-1, 1, n_bins)
    bin_centers = (bins[:-1] + bins[1:]) / 2.0
    discretized = np.clip(vocab_size - token_ids - 1, a_min=0, a_max=bin_centers.shape[0] - 1)
    normalized = bin_centers[discretized]
    return np.where(mask, 0.5 * (normalized + 1) * (q99 - q01) + q01, normalized)


def test_bins_decode_every_token_as_openvla_does():
    q01, q99 = np.array([-0.03, -0.5, 0.0]), np.array([0.03, 0.5, 1.0])
    mask = np.array([True, True, False])
    bins = Bins(low=q01.tolist(), high=q99.tolist(), token_offset=32000, mask=mask.tolist())
    ids = np.arange(31000, 32064)  # non-action ids, the 256 action ids, padding rows
    for dim in range(3):
        got = bins.to_actions(np.stack([ids] * 3, 1))[:, dim]
        want = openvla_decode(ids, q01[dim], q99[dim], mask[dim], 32000)
        np.testing.assert_allclose(got, want.astype(np.float32), rtol=0, atol=0)
    # the last 256 ids are the bins, highest id = lowest bin; an action survives the round trip
    rng = np.random.default_rng(0)
    actions = rng.uniform(q01, q99, (50, 3))
    tokens = openvla_tokenize(actions, q01, q99, 32000)
    assert tokens.min() >= 32000 - 256 and tokens.max() <= 31999
    back = bins.to_actions(tokens)
    width = (q99 - q01) / 255
    assert np.all(np.abs(back - actions)[:, :2] <= width[:2] + 1e-6)


def test_cached_and_uncached_decoding_agree_and_count_their_calls():
    cached, rt = _program("decoder")
    full, rt_full = _program("no_cache")
    assert cached.calls_per_tick() == {"prefill": 1, "step": 3}  # 4 tokens: 1 + 3
    assert full.calls_per_tick() == {"full": 4}
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(6):
        obs = cached.sample_observation(rng)
        ctx = TickContext(rt)
        a = cached.tick(ctx, obs)
        b = full.tick(TickContext(rt_full), obs)
        assert ctx.calls == {"prefill": 1, "step": 3} and ctx.host_calls["decode"] == 5
        np.testing.assert_array_equal(a["tokens"], b["tokens"])
        assert a["tokens"].dtype == np.int64 and a["action"].dtype == np.float32
        block = cached.blocks[0]
        np.testing.assert_array_equal(a["action"], block.bins.to_actions(a["tokens"]))
        seen.add(tuple(a["tokens"]))
    assert len(seen) > 1


def test_rerank_scores_every_candidate_in_one_call_and_keeps_the_best():
    prog, rt = _program("reranker")
    obs = prog.sample_observation(np.random.default_rng(1))
    ctx = TickContext(rt)
    out = prog.tick(ctx, obs)
    assert ctx.calls == {"scorer": 1}
    feeds = {"candidates": obs["chunks"], "goal": np.repeat(obs["goal"][None], 8, axis=0)}
    scores = rt.run("scorer", feeds)["output"]
    assert int(out["choice"]) == int(np.argmax(scores)) and out["choice"].dtype == np.int64
    np.testing.assert_array_equal(out["chunk"], obs["chunks"][int(np.argmax(scores))])
    np.testing.assert_allclose(out["scores"], scores)


@pytest.mark.parametrize(
    ("factory", "needle"),
    [
        ("cache_mismatch", "cache[0]: the cache tensor does not match"),
        ("cache_not_an_input", "'past_kv' is not an input of network 'step'"),
        ("unknown_option", "blocks[0].temperature: unknown key"),
        ("bins_wrong_dims", "bins: 3 action dims but 4 tokens"),
    ],
)
def test_bad_decode_declarations_are_one_line_exit_2(cli, tmp_path, factory, needle):
    pytest.importorskip("torch")
    out = tmp_path / "a"
    r = cli("export", f"{FIX}:{factory}", "--out", out)
    assert r.code == 2, (r.code, r.err)
    assert needle in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert not out.exists()


def test_decode_declaration_rules():
    base = {"block": "decode", "step": "s", "prompt_length": 2, "tokens": 2}

    def declare(**block):
        from edgekit.loop.blocks import declare_tick

        return declare_tick({"observation": [{"name": "x", "shape": [1]}],
                             "blocks": [{**base, **block}], "outputs": ["tokens"]})  # fmt: skip

    with pytest.raises(BadInputError, match="a KV cache needs the prefill network"):
        declare(cache=[{"input": "k", "prefill": "o1", "step": "o1"}])
    with pytest.raises(BadInputError, match="cache: false re-runs the whole sequence"):
        declare(cache=False, prefill="p")
    with pytest.raises(BadInputError, match=r"cache: expected a list .* or false"):
        declare(cache=True)
    with pytest.raises(BadInputError, match=r"bins: low has 2 dims but high has 1"):
        declare(cache=False, bins={"low": [0, 0], "high": [1], "token_offset": 300})
    assert declare(cache=False).blocks[0].calls() == {"s": 2}
