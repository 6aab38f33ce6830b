"""The examples run as a user runs them, and do what they say."""
import re
import subprocess
import sys

from helpers import EXAMPLES, run_example as run


def test_quickstart_reaches_96_percent(tmp_path):
    out = run("quickstart.py", "--out", "loss.png", cwd=tmp_path)
    acc = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert acc >= 0.96, out
    assert (tmp_path / "loss.png").stat().st_size > 10_000


def test_optimizers_example_table_and_plot(tmp_path):
    out = run("optimizers.py", "--epochs", "15", "--out", "opt.png", cwd=tmp_path)
    losses = dict(re.findall(r"^(.+?)\s{2,}(\d+\.\d+)\s+\d\.\d+\s+\d+\.\d+$", out, re.M))
    assert len(losses) == 6, out
    # from the same start, momentum, Nesterov and Adam end well below plain SGD here
    for name in ("momentum 0.9", "Nesterov 0.9", "Adam"):
        assert float(losses[name]) < 0.5 * float(losses["SGD"]), out
    assert (tmp_path / "opt.png").stat().st_size > 10_000


def test_custom_kernel_example(tmp_path):
    out = run("custom_kernel.py", cwd=tmp_path)
    assert "gradcheck(Swish): True" in out
    assert "gradcheck(softmax with the swapped kernel): True" in out
    diff = float(re.search(r"max \|built-in - variant\| = (\S+)", out).group(1))
    assert diff < 1e-6


def _readme_block(heading):
    """The first ```python block under ``heading`` in the README."""
    text = (EXAMPLES.parent / "README.md").read_text()
    section = text.split(heading, 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_snippets_run(tmp_path):
    for i, heading in enumerate(("## A model", "## Your own kernel as an op")):
        script = tmp_path / f"snippet{i}.py"   # a file: cache=True kernels need one
        script.write_text(_readme_block(heading))
        out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, (heading, out.stderr[-3000:])
    assert (tmp_path / "ckpt.npz").exists()


def test_cnn_digits_reaches_98_percent(tmp_path):
    out = run("cnn_digits.py", "--out-prefix", "cnn", cwd=tmp_path)
    acc = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert acc >= 0.98, out
    for name in ("cnn_filters.png", "cnn_confusion.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
