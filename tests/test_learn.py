"""mlpnumpy learn: every solution passes check, every catalogued mistake planted in a solution is caught
and named, stubs fail with exit 1 saying what to write, start never overwrites, usage errors exit 2, and
the finale trains the digits to >= 0.95 with the shipped solutions as the learner's layers."""
import re

import numpy as np
import pytest

from mlpnumpy import learn
from mlpnumpy.cli.commands import main as mlpnumpy_main
from mlpnumpy.learn.checker import _draw, numeric_grad, run_forward
from mlpnumpy.learn.cli import main as learn_main
from mlpnumpy.learn.exercises import EXERCISES, render
from mlpnumpy.learn.mistakes import CATALOGUE

ROW = re.compile(r"^(d\w+)\s+\(")  # a table row: the gradient's name, then its shape
PLANTS = [(name, mid, old, new) for name, ex in EXERCISES.items() for mid, old, new in ex.plants]


def _solution_file(tmp_path, name, capsys):
    assert learn_main(["solution", name]) == 0
    text = capsys.readouterr().out
    (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    return text


def test_list_shows_the_exercises_in_order(capsys):
    assert mlpnumpy_main(["learn", "list"]) == 0
    out = capsys.readouterr().out
    wanted = ["gates", "sigmoid", "tanh", "relu", "dense", "softmax_ce_steps", "softmax_ce", "batchnorm_steps",
              "batchnorm", "dropout", "mlp_step", "finale"]
    positions = [out.index(f" {w} ") for w in wanted]
    assert positions == sorted(positions)


@pytest.mark.parametrize("name", list(EXERCISES))
def test_every_solution_passes_check(name, tmp_path, capsys):
    _solution_file(tmp_path, name, capsys)
    assert learn_main(["check", name, "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if ROW.match(line)]
    assert len(rows) == len(EXERCISES[name].grads)
    # the shipped solution is the reference: same arithmetic, same bits; and close to the differences
    assert all(line.split()[-3:-1] == ["yes", "yes"] for line in rows), out
    assert "right" in out


def test_numeric_gradient_matches_a_hand_derivation():
    ex = EXERCISES["dense"]
    inputs = _draw(ex, 3)
    G = np.random.default_rng(0).standard_normal((ex.dims["n"], ex.dims["d_out"]))
    np.testing.assert_allclose(numeric_grad(ex, inputs, "W", G), inputs["x"].T @ G, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(numeric_grad(ex, inputs, "x", G), G @ inputs["W"].T, rtol=1e-8, atol=1e-9)


def test_intermediates_get_their_own_numeric_gradient():
    ex = EXERCISES["softmax_ce_steps"]
    inputs = _draw(ex, 0)
    n = ex.dims["n"]
    # loss = -mean(picked): dL/dpicked = -1/n for every row, whatever came before
    np.testing.assert_allclose(numeric_grad(ex, inputs, "picked"), np.full(n, -1.0 / n), rtol=1e-8)


def test_inputs_are_drawn_away_from_kinks():
    for name in ("relu", "gates", "mlp_step"):
        ex = EXERCISES[name]
        for seed in range(5):
            ns = run_forward(ex, _draw(ex, seed))
            for expr in ex.kinks:
                assert np.min(np.abs(eval(expr, {"np": np}, ns))) > 0.05


def test_every_catalogued_mistake_is_planted_somewhere():
    assert {mid for _, mid, _, _ in PLANTS} == set(CATALOGUE)
    # the issue's five at least
    issue = {"batch_mean_twice", "transposed_product", "missing_relu_mask", "z_for_output", "sign_error"}
    assert issue <= set(CATALOGUE)


@pytest.mark.parametrize("name, mid, old, new", PLANTS, ids=[f"{p[0]}-{p[1]}" for p in PLANTS])
def test_planted_mistake_is_caught_and_named(name, mid, old, new, tmp_path, capsys):
    text = _solution_file(tmp_path, name, capsys)
    assert text.count(old) == 1
    (tmp_path / f"{name}.py").write_text(text.replace(old, new), encoding="utf-8")
    assert learn_main(["check", name, "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"Mistake: {CATALOGUE[mid].title}" in out, out
    result = learn.check(name, dir=tmp_path, print_fn=None)
    assert not result.passed and result.mistake == mid


def test_batch_mean_twice_says_n_times(tmp_path, capsys):
    text = _solution_file(tmp_path, "dense", capsys)
    (tmp_path / "dense.py").write_text(text.replace("db = dout.sum(axis=0)", "db = dout.mean(axis=0)"))
    learn_main(["check", "dense", "--dir", str(tmp_path)])
    out = capsys.readouterr().out
    n = EXERCISES["dense"].dims["n"]
    assert f"exactly {n}x too small" in out
    # it stopped at db: dx, after it, has no row
    assert "\ndb " in out and "\ndx " not in out


def test_check_stops_at_the_first_wrong_intermediate(tmp_path, capsys):
    text = _solution_file(tmp_path, "softmax_ce_steps", capsys)
    (tmp_path / "softmax_ce_steps.py").write_text(text.replace("ds = dlogs / s", "ds = dlogs * s"))
    assert learn_main(["check", "softmax_ce_steps", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    names = [ROW.match(line).group(1) for line in out.splitlines() if ROW.match(line)]
    assert names == ["dpicked", "dlogp", "dlogs", "ds"]
    out = " ".join(out.split())
    assert "ds is wrong" in out and "Everything before it is right" in out


def test_a_small_error_is_not_close(tmp_path, capsys):
    text = _solution_file(tmp_path, "dense", capsys)
    (tmp_path / "dense.py").write_text(text.replace("dW = x.T @ dout", "dW = x.T @ dout * 1.0001"))
    assert learn_main(["check", "dense", "--dir", str(tmp_path)]) == 1
    assert "dW is wrong" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(EXERCISES))
def test_a_stub_fails_with_exit_1_and_says_what_to_write(name, tmp_path, capsys):
    assert learn_main(["start", name, "--dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert learn_main(["check", name, "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "not written yet" in out
    for g in EXERCISES[name].grads:
        assert f"d{g} " in out.replace("\n", " ")


def test_the_stub_keeps_the_forward_and_shape_comments(tmp_path):
    path = learn.start("dense", tmp_path)
    text = path.read_text()
    assert "out = x @ W + b" in text and "raise NotImplementedError" in text
    assert "# dW = ..." in text and "(d_in, d_out), like W" in text


def test_sgd_step_stub_is_named(tmp_path, capsys):
    text = _solution_file(tmp_path, "mlp_step", capsys)
    stub = render(EXERCISES["mlp_step"], solved=False)
    step_stub = stub[stub.index("def sgd_step"):]
    (tmp_path / "mlp_step.py").write_text(text[:text.index("def sgd_step")] + step_stub)
    assert learn_main(["check", "mlp_step", "--dir", str(tmp_path)]) == 1
    assert "sgd_step is not written yet" in capsys.readouterr().out


def test_partial_backward_is_checked_up_to_the_missing_gradient(capsys):
    def backward(dout, cache):
        return {"W": cache["x"].T @ dout}
    result = learn.check("dense", backward)
    assert not result.passed and [r.name for r in result.rows] == ["dW"]
    assert "db is not written yet" in capsys.readouterr().out


def test_start_never_overwrites(tmp_path, capsys):
    assert learn_main(["start", "relu", "--dir", str(tmp_path)]) == 0
    path = tmp_path / "relu.py"
    path.write_text("# my work\n")
    capsys.readouterr()
    assert learn_main(["start", "relu", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not overwritten" in err
    assert path.read_text() == "# my work\n"
    with pytest.raises(FileExistsError):
        learn.start("relu", tmp_path)


@pytest.mark.parametrize("argv, words", [
    (["check", "densse"], "is not one of: gates"),
    (["start", "nope"], "is not one of"),
    (["solution", "nope"], "is not one of"),
    (["check", "dense", "--hint", "4"], "invalid choice"),
    (["hint", "dense", "7"], "invalid choice"),
    (["check"], "required"),
    (["frobnicate"], "invalid choice"),
    (["finale", "--activation", "softplus"], "is not one of: relu, tanh, sigmoid"),
])
def test_usage_errors_exit_2_with_one_line(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dense.py").write_text(learn.solution("dense"))
    (tmp_path / "softplus.py").write_text("")
    assert mlpnumpy_main(["learn", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err, err


def test_check_without_a_file_says_how_to_start(tmp_path, capsys):
    assert learn_main(["check", "dense", "--dir", str(tmp_path)]) == 2
    assert "mlpnumpy learn start dense" in capsys.readouterr().err


def test_learner_exception_is_one_line_with_the_place(tmp_path, capsys):
    text = _solution_file(tmp_path, "dense", capsys)
    (tmp_path / "dense.py").write_text(text.replace("dx = dout @ W.T", "dx = dout @ W"))
    assert learn_main(["check", "dense", "--dir", str(tmp_path)]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "backward raised ValueError" in out and "dense.py, line" in out and "dx = dout @ W" in out
    assert "Which factor needs a transpose?" in out


def test_syntax_error_is_reported_with_its_line(tmp_path, capsys):
    (tmp_path / "relu.py").write_text("def backward(dout, cache)\n    return {}\n")
    assert learn_main(["check", "relu", "--dir", str(tmp_path)]) == 1
    assert "syntax error at line 1" in capsys.readouterr().out


@pytest.mark.parametrize("level, words", [(1, "shape"), (2, "sum_i"), (3, "dW = x.T @ dout")])
def test_hints(level, words, tmp_path, capsys):
    assert learn_main(["hint", "dense", str(level)]) == 0
    assert words in capsys.readouterr().out
    learn.start("dense", tmp_path)
    capsys.readouterr()
    assert learn_main(["check", "dense", "--dir", str(tmp_path), "--hint", str(level)]) == 1
    out = capsys.readouterr().out
    assert f"Hint {level} for dense" in out and words in out


def test_python_api_prints_the_same_table(tmp_path, capsys):
    _solution_file(tmp_path, "dense", capsys)
    learn_main(["check", "dense", "--dir", str(tmp_path)])
    cli_out = capsys.readouterr().out

    def my_backward(dout, cache):
        x, W = cache["x"], cache["W"]
        return {"W": x.T @ dout, "b": dout.sum(axis=0), "x": dout @ W.T}

    result = learn.check("dense", my_backward)
    assert result.passed and capsys.readouterr().out == cli_out
    assert learn.check("dense", str(tmp_path / "dense.py"), print_fn=None).passed


def test_a_wrong_python_function_is_diagnosed(capsys):
    def my_backward(dout, cache):
        return {"W": cache["x"].T @ dout, "b": dout.sum(axis=0), "x": -(dout @ cache["W"].T)}
    result = learn.check("dense", my_backward)
    assert result.mistake == "sign_error" and result.exit_code == 1
    assert "sign error" in capsys.readouterr().out


def test_finale_with_the_solutions_reaches_the_target(tmp_path, capsys):
    for name in ("dense", "relu"):
        (tmp_path / f"{name}.py").write_text(learn.solution(name))
    result = learn.finale(tmp_path)
    out = capsys.readouterr().out
    assert result.accuracy >= 0.95 and result.healthy and result.exit_code == 0, out
    assert "test accuracy" in out and "dead units" in out and "update/weight" in out
    pytest.importorskip("matplotlib")
    assert (tmp_path / "finale_internals.png").stat().st_size > 0


def test_finale_refuses_unfinished_layers(tmp_path, capsys):
    learn.start("dense", tmp_path)
    (tmp_path / "relu.py").write_text(learn.solution("relu"))
    assert learn_main(["finale", "--dir", str(tmp_path)]) == 1
    assert "not written yet" in capsys.readouterr().out
    assert not (tmp_path / "finale_internals.png").exists()


def test_the_learners_own_forward_makes_the_cache(tmp_path, capsys):
    # a learner who caches the mask in forward and reads it in backward is graded on that
    text = _solution_file(tmp_path, "relu", capsys)
    assert text.count('cache = {"z": z, "a": a}') == 1 and text.count("dz = dout * (a > 0)") == 1
    text = text.replace('cache = {"z": z, "a": a}', 'cache = {"z": z, "a": a, "mask": z > 0}')
    text = text.replace("dz = dout * (a > 0)", 'dz = dout * cache["mask"]')
    (tmp_path / "relu.py").write_text(text)
    assert learn_main(["check", "relu", "--dir", str(tmp_path)]) == 0


def test_a_changed_forward_is_refused(tmp_path, capsys):
    text = _solution_file(tmp_path, "relu", capsys)
    assert text.count("a = np.maximum(z, 0)") == 1
    (tmp_path / "relu.py").write_text(text.replace("a = np.maximum(z, 0)", "a = np.maximum(z, 0.1)"))
    assert learn_main(["check", "relu", "--dir", str(tmp_path)]) == 1
    assert "differs from the given forward" in " ".join(capsys.readouterr().out.split())


def test_writing_into_dout_is_noted(capsys):
    def backward(dout, cache):
        dout[cache["a"] <= 0] = 0  # the classic slip: right numbers, but the caller's array changed
        return {"z": dout}
    result = learn.check("relu", backward)
    assert result.passed
    assert "wrote into its argument dout" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_solutions_pass_and_plants_are_caught_on_other_draws(seed):
    # the tolerance and the kink margin hold for other inputs too, not only for seed 0
    env = {}
    for name, ex in EXERCISES.items():
        text = learn.solution(name)
        exec(compile(text, name, "exec"), env)
        assert learn.check(name, env["backward"], sgd_step=env.get("sgd_step"), seed=seed, print_fn=None).passed
        for mid, old, new in ex.plants:
            planted = {}
            exec(compile(text.replace(old, new), name, "exec"), planted)
            result = learn.check(name, planted["backward"], sgd_step=planted.get("sgd_step"), seed=seed,
                                 print_fn=None)
            assert result.mistake == mid, (name, mid, result.text)


def test_top_level_help_lists_learn(capsys):
    assert mlpnumpy_main(["--help"]) == 0
    assert "learn" in capsys.readouterr().out
    assert mlpnumpy_main(["learn", "--help"]) == 0
    out = capsys.readouterr().out
    assert all(w in out for w in ("list", "start", "check", "hint", "solution", "finale"))


def test_list_with_dir_marks_progress(tmp_path, capsys):
    (tmp_path / "dense.py").write_text(learn.solution("dense"))
    learn.start("relu", tmp_path)
    assert learn_main(["list", "--dir", str(tmp_path)]) == 0
    lines = {line.split(".")[1].split()[0]: line for line in capsys.readouterr().out.splitlines() if ". " in line}
    assert lines["dense"].startswith("[done]") and lines["relu"].startswith("[started]")
    assert not lines["gates"].lstrip().startswith("[")
