"""nbdl.save / nbdl.load: exact round trips, atomic writes, no pickle."""
import json
import math
import os

import numpy as np
import pytest

import nbdl
import nbdl.serialization


def checkpoint():
    return {
        "model": {
            "fc1.weight": nbdl.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)),
            "fc1.bias": nbdl.Tensor(np.zeros(2, dtype=np.float64)),
            "mask": nbdl.Tensor(np.array([True, False])),
            "count": nbdl.Tensor(np.array(5, dtype=np.int64)),
        },
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": np.ones((2, 3), np.float32)},
                      1: {"step": np.int64(3), "exp_avg": np.full(2, 0.5)}},
            "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1],
                              "nesterov": False, "name": None}],
        },
        "rng": {"seed": 2**64 - 1, "offset": 12345},
        "epoch": 7,
        "loss": float("nan"),
        "best": -math.inf,
        "tag": "run.1",
        "empty": {},
        "nested": [(), [], {"a.b": {"c": np.array([], dtype=np.int64)}}],
    }


def assert_same(a, b, where="obj"):
    assert type(a) is type(b), where
    if isinstance(a, dict):
        assert list(a) == list(b), where
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, (nbdl.Tensor, np.ndarray, np.generic)):
        a_arr, b_arr = np.asarray(a.data if isinstance(a, nbdl.Tensor) else a), \
            np.asarray(b.data if isinstance(b, nbdl.Tensor) else b)
        assert a_arr.dtype == b_arr.dtype and a_arr.shape == b_arr.shape, where
        np.testing.assert_array_equal(a_arr, b_arr, err_msg=where)
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def test_round_trip_nested(tmp_path):
    obj = checkpoint()
    path = tmp_path / "ckpt.npz"
    nbdl.save(obj, path)
    back = nbdl.load(path)
    assert_same(obj, back)
    assert back["model"]["fc1.weight"].device == "cpu"


def test_entries_are_named_by_dotted_key_path(tmp_path):
    path = tmp_path / "ckpt.npz"
    nbdl.save({"model": {"fc1.weight": nbdl.Tensor(np.ones(2, np.float32))},
               "optimizer": {"state": {0: {"exp_avg": np.zeros(2)}}}}, path)
    with np.load(path, allow_pickle=False) as npz:
        assert set(npz.files) == {"__nbdl__", "model.fc1.weight", "optimizer.state.0.exp_avg"}


def test_colliding_dotted_names_and_key_types_round_trip(tmp_path):
    obj = {"a.b": np.zeros(1), "a": {"b": np.ones(1)}, 1: np.full(1, 2.0), "1": np.full(1, 3.0),
           "__nbdl__": np.full(1, 4.0)}
    nbdl.save(obj, tmp_path / "c")
    assert_same(obj, nbdl.load(tmp_path / "c"))


@pytest.mark.parametrize("obj", [np.arange(3), nbdl.Tensor(np.ones((1, 2), np.float32)), 3, None,
                                 [1, "x"], np.asfortranarray(np.ones((2, 3)))])
def test_round_trip_top_level_values(tmp_path, obj):
    nbdl.save(obj, tmp_path / "v")
    back = nbdl.load(str(tmp_path / "v"))
    assert_same(obj, back)
    if isinstance(obj, np.ndarray):
        assert back.flags.f_contiguous == obj.flags.f_contiguous


def test_requires_grad_round_trips(tmp_path):
    nbdl.save({"w": nbdl.Tensor(np.ones(2, np.float32), requires_grad=True)}, tmp_path / "g")
    assert nbdl.load(tmp_path / "g")["w"].requires_grad


def test_overwrite_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    nbdl.save({"v": 1}, path)
    nbdl.save({"v": 2}, path)
    assert nbdl.load(path) == {"v": 2}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_file_mode_is_that_of_a_plain_new_file(tmp_path):
    (tmp_path / "plain").write_bytes(b"")
    nbdl.save({}, tmp_path / "ckpt")
    assert os.stat(tmp_path / "ckpt").st_mode == os.stat(tmp_path / "plain").st_mode


def test_crash_mid_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    nbdl.save({"w": np.arange(4)}, path)
    old_bytes = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def crash_on_second_array(fp, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            fp.write(b"partial")
            raise KeyboardInterrupt("power cut")
        real_write(fp, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_on_second_array)
    with pytest.raises(KeyboardInterrupt):
        nbdl.save({"w": np.zeros(4), "v": np.ones(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert_same(nbdl.load(path), {"w": np.arange(4)})
    assert os.listdir(tmp_path) == ["ckpt.npz"]


def test_crash_before_rename_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    nbdl.save({"v": 1}, path)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(nbdl.serialization.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        nbdl.save({"v": 2}, path)
    monkeypatch.undo()
    assert nbdl.load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["ckpt.npz"]


class Boom:
    """Unpickling this runs code: the test fails if load ever does."""
    ran = False

    def __reduce__(self):
        return (Boom.trigger, ())

    @staticmethod
    def trigger():
        Boom.ran = True
        return 0


def test_malicious_object_array_is_refused_without_running_code(tmp_path):
    path = tmp_path / "evil.npz"
    header = json.dumps({"format": "nbdl-checkpoint", "version": 1,
                         "tree": {"dict": [["w", {"ndarray": "w"}]]}}).encode()
    evil = np.empty(1, dtype=object)
    evil[0] = Boom()
    np.savez(path, __nbdl__=np.frombuffer(header, np.uint8), w=evil)
    with pytest.raises(ValueError, match="not a valid nbdl checkpoint"):
        nbdl.load(path)
    assert not Boom.ran


@pytest.mark.parametrize("write", [
    lambda p: p.write_bytes(b"just some text"),
    lambda p: np.save(p, np.arange(3)),                                  # a .npy, not an npz
    lambda p: np.savez(p, a=np.arange(3)),                               # an npz without header
    lambda p: np.savez(p, __nbdl__=np.frombuffer(b"{not json", np.uint8)),
    lambda p: np.savez(p, __nbdl__=np.frombuffer(json.dumps(
        {"format": "nbdl-checkpoint", "version": 99, "tree": 1}).encode(), np.uint8)),
    lambda p: np.savez(p, __nbdl__=np.frombuffer(json.dumps(
        {"format": "nbdl-checkpoint", "version": 1, "tree": {"eval": "x"}}).encode(), np.uint8)),
    lambda p: np.savez(p, __nbdl__=np.frombuffer(json.dumps(
        {"format": "nbdl-checkpoint", "version": 1, "tree": {"ndarray": "missing"}}).encode(), np.uint8)),
])
def test_not_a_checkpoint(tmp_path, write):
    path = tmp_path / "file"
    write(path)
    path = path if path.exists() else next(tmp_path.iterdir())
    with pytest.raises(ValueError, match="load: .* is not a valid nbdl checkpoint"):
        nbdl.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="load: no such file"):
        nbdl.load(tmp_path / "nope.npz")
    with pytest.raises(FileNotFoundError, match="save: directory .* does not exist"):
        nbdl.save({}, tmp_path / "no_dir" / "x.npz")


@pytest.mark.parametrize("obj, match", [
    ({"model": {"w": {1, 2}}}, r"unsupported value of type set at key 'model\.w'"),
    ({"opt": {"state": {0: [object()]}}}, r"type object at key 'opt\.state\.0\.0'"),
    ({"a": {(1, 2): 3}}, r"dict keys must be str or int, got \(1, 2\) \(tuple\) at key 'a'"),
    ({True: 1}, "dict keys must be str or int"),
    ({"o": np.array([None])}, r"array at key 'o' has dtype object"),
])
def test_unsupported_values_raise_before_writing(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        nbdl.save(obj, tmp_path / "x")
    assert os.listdir(tmp_path) == []
