import json

from greedyprune.cli.main import main


def test_baseline_cli_prints_table_and_resumes(tmp_path, capsys):
    argv = ["baseline", "--method", "rigl", "--data", "random:1x28x28", "--max-steps", "12", "--eval-every", "4",
            "--update-interval", "3", "--sparsity", "0.9", "--out", str(tmp_path), "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "rigl-erk" in out and "90.00" in out and "do not make the model faster" in out
    first = json.loads((tmp_path / "result.json").read_text())
    assert first["steps"] == 12 and [u[0] for u in first["updates"]] == [0, 3, 6]  # t = 0, 3, 6 (< T_end = 9)
    assert main(argv) == 0  # finished run: resumes instantly with the same result
    assert json.loads((tmp_path / "result.json").read_text())["test_acc"] == first["test_acc"]


def test_baseline_cli_user_errors(tmp_path, capsys):
    assert main(["baseline", "--method", "rigl", "--sparsity", "1.5", "--out", str(tmp_path)]) == 2
    assert "--sparsity must be in [0, 1)" in capsys.readouterr().err
    assert main(["baseline", "--method", "lth", "--data", "random:1x28x28"]) == 2
    assert "--out is required" in capsys.readouterr().err


def test_bip_is_registered_and_cli_options_reach_it():
    from greedyprune.baselines import BiPOptions, registered_baselines
    from greedyprune.cli.baseline import Options, method_options
    assert registered_baselines["bip"][1] is BiPOptions
    opts = method_options(Options(method="bip", sparsity=0.8, solver="mrbo", lr_scores=0.5))
    assert isinstance(opts, BiPOptions)
    assert (opts.sparsity, opts.solver, opts.lr_scores) == (0.8, "mrbo", 0.5)
    assert opts.batch_size == BiPOptions().batch_size  # unset CLI values keep BiP's own defaults
