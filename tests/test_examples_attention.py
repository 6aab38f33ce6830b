"""examples/transformer_sort.py runs as a user runs it (its quick mode) and learns."""
import re

from helpers import run_example


def test_transformer_sort_quick_learns(tmp_path):
    out = run_example("transformer_sort.py", "--quick", "--out", "maps.png", cwd=tmp_path)
    tok = float(re.search(r"token accuracy (\d\.\d+)", out).group(1))
    first, last = map(float, re.search(r"first 20 steps (\S+), last 20 steps (\S+)", out).groups())
    assert tok > 0.5, out          # chance is 0.1 per position
    assert last < 0.5 * first, out
    assert (tmp_path / "maps.png").stat().st_size > 10_000
