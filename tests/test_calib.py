"""Calibration data: format, validation errors, split, synthetic episodes, shipped sets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.calib import (
    from_recordings,
    load_calibration,
    save_calibration,
    synthesize,
    synthesize_for_program,
)
from edgekit.calib.synthetic import DT
from edgekit.errors import EXIT_BAD_INPUT, InputSpecError
from edgekit.spec import ProgramSpec, TensorSpec
from tests.conftest import ROOT

CALIB = ROOT / "calib_data"
SPEC = (
    TensorSpec("image", (2, 48, 48, 3), "uint8", "image"),
    TensorSpec("proprio", (10,)),
    TensorSpec("instruction", (4,), "int64", "int", 0, 32),
    TensorSpec("pad", (6,), "bool"),
)


def one_line_error(exc: pytest.ExceptionInfo[InputSpecError], *needles: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert exc.value.exit_code == EXIT_BAD_INPUT
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def tiny_programs():
    """(kind, preset, program) for every zoo kind's tiny presets, without building weights."""
    from edgekit.models import build_program
    from edgekit.zoo import ZOO

    out = []
    for kind, entry in ZOO.items():
        for preset in entry.presets:
            if preset.startswith("tiny"):
                spec = entry.spec(entry.config(preset), preset)
                out.append((kind, preset, build_program(spec.program)))
    return out


# --- format ---------------------------------------------------------------------------------


def test_round_trip_is_exact_and_reproducible(tmp_path):
    cal = synthesize(SPEC, 8, seed=3)
    f = save_calibration(tmp_path / "set.npz", cal)
    back = load_calibration(f, SPEC)
    assert back.source == str(f) and back.n == 8
    for t in SPEC:
        assert back.arrays[t.name].dtype == np.dtype(t.dtype)
        np.testing.assert_array_equal(back.arrays[t.name], cal.arrays[t.name])
    assert back.to_dict_summary()["sha256"] == cal.to_dict_summary()["sha256"]
    again = save_calibration(tmp_path / "again.npz", cal.arrays)
    assert again.read_bytes() == f.read_bytes()  # fixed zip timestamps: same data, same bytes
    assert not list(tmp_path.glob(".*.tmp"))


def test_folder_is_concatenated_in_filename_order(tmp_path):
    cal = synthesize(SPEC, 10)
    save_calibration(tmp_path / "b.npz", {k: v[6:] for k, v in cal.arrays.items()})
    save_calibration(tmp_path / "a.npz", {k: v[:6] for k, v in cal.arrays.items()})
    (tmp_path / "notes.txt").write_text("ignored")
    back = load_calibration(tmp_path, SPEC)
    assert back.n == 10
    for k, v in cal.arrays.items():
        np.testing.assert_array_equal(back.arrays[k], v)


def test_observations_and_summary():
    cal = synthesize(SPEC, 5)
    obs = cal.observations()
    assert len(obs) == 5 and list(obs[0]) == [t.name for t in SPEC]
    assert all(obs[2][t.name].shape == t.shape for t in SPEC)
    s = cal.to_dict_summary()
    assert s["source"] == "synthetic" and s["n"] == 5
    assert s["shapes"]["image"] == [2, 48, 48, 3] and s["dtypes"]["instruction"] == "int64"
    cal.arrays["proprio"] = cal.arrays["proprio"] + np.float32(1)
    assert cal.to_dict_summary()["sha256"] != s["sha256"]


def test_leading_batch_axis_of_one_may_be_given_or_left_out(tmp_path):
    spec = (TensorSpec("x", (1, 5)),)
    f = save_calibration(tmp_path / "x.npz", {"x": np.zeros((6, 5), np.float32)})
    assert load_calibration(f, spec).arrays["x"].shape == (6, 1, 5)
    g = save_calibration(tmp_path / "y.npz", {"x": np.zeros((6, 1, 5), np.float32)})
    assert load_calibration(g, (TensorSpec("x", (5,)),)).arrays["x"].shape == (6, 5)


# --- validation: one line, InputSpecError, names the file and the array ----------------------


def _mutations():
    def drop(a):
        a.pop("proprio")

    def extra(a):
        a["foo"] = np.zeros((8, 2), np.float32)

    def shape(a):
        a["image"] = np.zeros((8, 2, 48, 48, 4), np.uint8)

    def dtype(a):
        a["proprio"] = a["proprio"].astype(np.float64)

    def nan(a):
        a["proprio"][3, 1] = np.nan

    def inf(a):
        a["proprio"][5, 0] = -np.inf

    def counts(a):
        a["proprio"] = a["proprio"][:-1]

    def few(a):
        for k in a:
            a[k] = a[k][:3]

    def scalar(a):
        a["proprio"] = np.float32(1.0)

    return [
        (drop, ["missing array 'proprio'"]),
        (extra, ["unexpected array 'foo'"]),
        (shape, ["array 'image' has per-sample shape [2, 48, 48, 4], expected [2, 48, 48, 3]"]),
        (dtype, ["array 'proprio' has dtype float64, expected float32"]),
        (nan, ["array 'proprio'", "NaN/Inf", "sample 3"]),
        (inf, ["array 'proprio'", "NaN/Inf", "sample 5"]),
        (counts, ["different sample counts", "'proprio' 7"]),
        (few, ["array 'image' holds 3 samples, need at least 4"]),
        (scalar, ["array 'proprio' is a scalar"]),
    ]


@pytest.mark.parametrize(
    ("mutate", "needles"), _mutations(), ids=lambda m: getattr(m, "__name__", "")
)
def test_validation_errors(tmp_path, mutate, needles):
    arrays = dict(synthesize(SPEC, 8).arrays)
    mutate(arrays)
    f = save_calibration(tmp_path / "bad.npz", arrays)
    with pytest.raises(InputSpecError) as e:
        load_calibration(f, SPEC)
    one_line_error(e, str(f), *needles)


def test_unreadable_and_missing_files(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    good = save_calibration(tmp_path / "good.npz", synthesize(SPEC, 8))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    npy = tmp_path / "one.npz"
    with npy.open("wb") as fh:
        np.save(fh, np.zeros(3))
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, proprio=np.array([{"a": 1}], dtype=object))
    for f in (junk, cut, npy, pickled):
        with pytest.raises(InputSpecError) as e:
            load_calibration(f, SPEC)
        one_line_error(e, str(f), "not a readable .npz file")
    with pytest.raises(InputSpecError) as e:
        load_calibration(tmp_path / "nope.npz", SPEC)
    one_line_error(e, "nope.npz", "no such calibration file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputSpecError) as e:
        load_calibration(tmp_path / "empty", SPEC)
    one_line_error(e, "empty", "no .npz")


def test_folder_error_names_the_bad_file(tmp_path):
    cal = synthesize(SPEC, 8)
    save_calibration(tmp_path / "a.npz", cal)
    save_calibration(tmp_path / "b.npz", {**cal.arrays, "pad": cal.arrays["pad"].astype(np.int8)})
    with pytest.raises(InputSpecError) as e:
        load_calibration(tmp_path, SPEC)
    one_line_error(e, str(tmp_path / "b.npz"), "array 'pad' has dtype int8, expected bool")


# --- split ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "cal_n", "hold_n"), [(24, 18, 6), (12, 9, 3), (5, 3, 2), (4, 2, 2)])
def test_split_holds_out_the_last_samples(n, cal_n, hold_n):
    full = synthesize(SPEC, n)
    head, tail = full.split()
    assert (head.n, tail.n) == (cal_n, hold_n)
    for k, v in full.arrays.items():
        np.testing.assert_array_equal(np.concatenate([head.arrays[k], tail.arrays[k]]), v)
    again = full.split()[1]  # deterministic
    assert all(np.array_equal(again.arrays[k], tail.arrays[k]) for k in tail.arrays)


def test_split_refuses_too_few_samples():
    with pytest.raises(InputSpecError) as e:
        synthesize(SPEC, 3).split()
    one_line_error(e, "synthetic", "3 samples", "at least 4")
    with pytest.raises(ValueError):
        synthesize(SPEC, 8).split(holdout_fraction=0.0)


# --- synthetic episodes ---------------------------------------------------------------------


def test_synthesize_is_deterministic():
    a, b, c = synthesize(SPEC, 10, seed=1), synthesize(SPEC, 10, seed=1), synthesize(SPEC, 10, 2)
    for k in a.arrays:
        np.testing.assert_array_equal(a.arrays[k], b.arrays[k])
        assert a.arrays[k].dtype == np.dtype(dict((t.name, t.dtype) for t in SPEC)[k])
    assert not np.array_equal(a.arrays["image"], c.arrays["image"])
    assert not np.array_equal(a.arrays["proprio"], c.arrays["proprio"])


def test_synthetic_images_look_like_an_episode():
    img = synthesize(SPEC, 24).arrays["image"].astype(np.float64)  # (24, 2, 48, 48, 3)
    cur = img[:, 1]
    for i in range(23):  # consecutive ticks: strongly correlated
        assert np.corrcoef(cur[i].ravel(), cur[i + 1].ravel())[0, 1] > 0.5
    assert cur.reshape(24, -1).std(axis=1).min() > 15  # structure across the image
    # not white noise: horizontally neighbouring pixels are nearly the same
    assert np.corrcoef(cur[..., :-1, :].ravel(), cur[..., 1:, :].ravel())[0, 1] > 0.8
    assert np.abs(cur[0] - cur[-1]).mean() > 0.5  # something moves
    assert not np.array_equal(img[:, 0], img[:, 1])  # the leading axis holds related views


def test_synthetic_vectors_are_smooth_joint_trajectories():
    x = synthesize(SPEC, 24).arrays["proprio"].astype(np.float64)  # positions 0-4, vel 5-9
    assert np.abs(x).max() <= 1.6
    assert np.abs(np.diff(x, axis=0)).mean() < 0.2 * x.std()
    central = (x[2:, :5] - x[:-2, :5]) / (2 * DT)
    np.testing.assert_allclose(central, x[1:-1, 5:], atol=0.05)  # velocities match positions
    # a leading (history) axis holds the same trajectory a tick earlier
    hist = synthesize((TensorSpec("proprio", (2, 9)),), 6).arrays["proprio"]
    np.testing.assert_array_equal(hist[1:, 0], hist[:-1, 1])


def test_synthetic_tokens_and_masks():
    cal = synthesize(SPEC, 24)
    tok, pad = cal.arrays["instruction"], cal.arrays["pad"]
    assert tok.min() >= 0 and tok.max() < 32
    assert 1 < len({tuple(r) for r in tok}) <= 4  # a few instructions, each held for a while
    assert pad.dtype == np.bool_ and (~pad[:, 0]).all()  # never all padding


def test_synthesize_for_program_uses_the_programs_own_sampler():
    from edgekit.models import build_program

    params = {"embodiment": "arm7", "max_limbs": 20, "obs_per_limb": 16, "act_per_limb": 1}
    omni = build_program(ProgramSpec("omni-body", {**params, "action_scale": 0.5}))
    cal = synthesize_for_program(omni, 6, seed=4)
    first = omni.sample_observation(np.random.default_rng(4))
    assert cal.source == "synthetic" and cal.n == 6
    for k, v in first.items():
        np.testing.assert_array_equal(cal.arrays[k][0], v)
    hum = build_program(ProgramSpec("humanoid-history", {"obs_dim": 12}))
    a, b = synthesize_for_program(hum, 6), synthesize(hum.observation_spec(), 6)
    np.testing.assert_array_equal(a.arrays["proprio"], b.arrays["proprio"])


# --- recordings -----------------------------------------------------------------------------


def test_from_recordings_stacks_episodes_in_order():
    spec = SPEC[1:3]
    ticks = synthesize(spec, 7).observations()
    cal = from_recordings([ticks[:3], ticks[3:]], spec)
    assert cal.source == "recordings" and cal.n == 7
    flat = from_recordings(ticks, spec)
    for t in spec:
        np.testing.assert_array_equal(cal.arrays[t.name], np.stack([o[t.name] for o in ticks]))
        np.testing.assert_array_equal(flat.arrays[t.name], cal.arrays[t.name])


def test_from_recordings_errors_name_episode_tick_and_array():
    spec = SPEC[1:3]
    ticks = synthesize(spec, 4).observations()
    bad = [dict(o) for o in ticks]
    bad[2]["proprio"] = bad[2]["proprio"].astype(np.float64)
    with pytest.raises(InputSpecError) as e:
        from_recordings([ticks, bad], spec)
    one_line_error(e, "episode 1 tick 2", "array 'proprio' has dtype float64")
    bad[2] = {"proprio": ticks[2]["proprio"][:4], "instruction": ticks[2]["instruction"]}
    with pytest.raises(InputSpecError) as e:
        from_recordings(bad, spec)
    one_line_error(e, "episode 0 tick 2", "array 'proprio' has per-sample shape [4]")
    with pytest.raises(InputSpecError):
        from_recordings([], spec)


# --- shipped sets and the script ------------------------------------------------------------


def test_shipped_sets_fit_every_tiny_preset():
    for kind, preset, program in tiny_programs():
        f = CALIB / f"{kind}-{preset}.npz"
        assert f.is_file(), f"{f} missing: run python calib_data/make_calib.py"
        assert f.stat().st_size < 200 * 1024, f
        cal = load_calibration(f, program.observation_spec())
        assert cal.n == 24
        # the shipped file is what the script makes (up to last-ulp maths differences)
        fresh = synthesize_for_program(program, 24, seed=0)
        for k, v in cal.arrays.items():
            w = fresh.arrays[k]
            if v.dtype == np.uint8:
                diff = np.abs(v.astype(np.int16) - w)
                assert diff.max() <= 1 and diff.mean() < 1e-3, (f, k)
            elif v.dtype.kind == "f":
                np.testing.assert_allclose(v, w, atol=1e-5, err_msg=f"{f} {k}")
            else:
                np.testing.assert_array_equal(v, w, err_msg=f"{f} {k}")
    shipped = {p.name for p in CALIB.glob("*.npz")}
    recorded = {"reacher-humanoid.npz", "reacher-humanoid-dart.npz",  # train_teachers.py
                "reacher-diffusion-policy.npz", "reacher-diffusion-policy-dart.npz",
                "reacher-vla-flow.npz", "reacher-vla-flow-dart.npz"}  # fmt: skip
    assert shipped == {f"{k}-{p}.npz" for k, p, _ in tiny_programs()} | recorded


def test_recorded_reacher_sets_fit_their_presets():
    from edgekit.loader import load
    from edgekit.models import build_program

    for kind, name in [("humanoid", "humanoid"), ("humanoid", "humanoid-dart"),
                       ("diffusion-policy", "diffusion-policy"),
                       ("diffusion-policy", "diffusion-policy-dart"),
                       ("vla-flow", "vla-flow"), ("vla-flow", "vla-flow-dart")]:  # fmt: skip
        program = build_program(load(f"zoo:{kind}:reacher").spec.program)
        cal = load_calibration(CALIB / f"reacher-{name}.npz", program.observation_spec())
        assert cal.n >= 50


def test_make_calib_script(tmp_path):
    sys.path.insert(0, str(CALIB))
    try:
        import make_calib
    finally:
        sys.path.remove(str(CALIB))
    assert make_calib.main(["--kinds", "humanoid", "--out", str(tmp_path), "--n", "6"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "humanoid-tiny-hover.npz",
        "humanoid-tiny.npz",
    ]
    first = (tmp_path / "humanoid-tiny.npz").read_bytes()
    assert (
        make_calib.main(["--kinds", "humanoid", "--presets", "tiny", "--out", str(tmp_path)]) == 0
    )
    assert (tmp_path / "humanoid-tiny.npz").read_bytes() != first  # 24 samples now
    assert make_calib.main(["--kinds", "vla", "--program", "plan", "--out", str(tmp_path)]) == 2


def test_calib_imports_no_torch():
    code = "import sys, edgekit.calib; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(ROOT))
