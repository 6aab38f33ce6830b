"""examples/newton.py and examples/set_prediction.py in quick modes: they run
as scripts (``__main__``, command-line arguments, in a fresh directory) and
show what they claim. They run in this process, which has already imported
scikit-learn, scipy and matplotlib: a subprocess per example would pay those
imports again (seconds each on the 2-core CI machine)."""
import re
import runpy
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script, *args, cwd, monkeypatch, capsys):
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", [script, *args])
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
    return capsys.readouterr().out


def test_newton_example(tmp_path, monkeypatch, capsys):
    out = run("newton.py", "--iters", "30", "--out", "newton.png", cwd=tmp_path,
              monkeypatch=monkeypatch, capsys=capsys)
    iters = int(re.search(r"Newton reached gradient norm \S+ < 1e-8 after (\d+) iterations",
                          out).group(1))
    assert iters <= 15, out
    for peer in ("scipy Newton-CG", "scikit-learn"):
        diff = float(re.search(rf"max \|coef - {peer}\| *= (\S+)", out).group(1))
        assert diff < 1e-6, out
    gaps = dict(re.findall(r"^(.+?) +loss - f\* after +\d+ iterations: (\S+)$", out, re.M))
    assert float(gaps["Newton"]) < 1e-10 < float(gaps["momentum 0.9 (1/L)"]), out
    assert float(gaps["momentum 0.9 (1/L)"]) < float(gaps["gradient descent (1/L)"]), out
    assert (tmp_path / "newton.png").stat().st_size > 10_000


def test_set_prediction_example(tmp_path, monkeypatch, capsys):
    out = run("set_prediction.py", "--epochs", "4", "--n-train", "1000", "--out", "sets.png",
              cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    baseline = float(re.search(r"every dot at the mean position: (\S+)\)", out).group(1))
    matched = float(re.search(r"^Hungarian matching loss +(\S+)", out, re.M).group(1))
    plain = float(re.search(r"^plain MSE +(\S+)", out, re.M).group(1))
    # the matching loss learns the set; plain MSE stays near "every dot at the average"
    assert matched < 0.6 * plain and matched < 0.4 * baseline, out
    assert (tmp_path / "sets.png").stat().st_size > 10_000
