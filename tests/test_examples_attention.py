"""examples/transformer_sort.py runs as a user runs it (its quick mode) and learns."""
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_transformer_sort_quick_learns(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLES / "transformer_sort.py"), "--quick",
                          "--out", "maps.png"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    tok = float(re.search(r"token accuracy (\d\.\d+)", out.stdout).group(1))
    first, last = map(float, re.search(r"first 20 steps (\S+), last 20 steps (\S+)", out.stdout).groups())
    assert tok > 0.5, out.stdout          # chance is 0.1 per position
    assert last < 0.5 * first, out.stdout
    assert (tmp_path / "maps.png").stat().st_size > 10_000
