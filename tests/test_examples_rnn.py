"""The recurrence examples run as a user runs them (quick mode) and do what they say."""
import math
import re

from helpers import run_example as run


def test_sequence_memory_lstm_learns_rnn_does_worse(tmp_path):
    out = run("sequence_memory.py", "--quick", "--out", "curves.png", cwd=tmp_path)
    lstm = float(re.search(r"LSTM: test MSE (\d+\.\d+)", out).group(1))
    rnn = float(re.search(r"RNN: test MSE (\d+\.\d+)", out).group(1))
    assert lstm < 0.05 and lstm < 0.5 * rnn, out     # the mean predictor scores 1/6
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_char_lm_learns_and_samples(tmp_path):
    out = run("char_lm.py", "--quick", cwd=tmp_path)
    n_chars = int(re.search(r"(\d+) distinct", out).group(1))
    val = float(re.search(r"final val loss (\d+\.\d+)", out).group(1))
    assert val < 0.75 * math.log(n_chars), out        # well below the uniform guess
    samples = re.findall(r"sample: '(.*)'", out)
    assert len(samples) == 2 and all(len(s) > 100 for s in samples), out
