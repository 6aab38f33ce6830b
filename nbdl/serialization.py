"""Checkpoints: ``save(obj, path)`` / ``load(path)`` without pickle.

A checkpoint is an ``.npz`` (zip) file. Every array leaf is one ``.npy`` entry
named by its dotted key path (``model.fc1.weight``, ``optimizer.state.0.exp_avg``),
so ``np.load(path)`` shows the arrays. The entry ``__nbdl__`` holds the JSON of the
whole structure (UTF-8 bytes as a uint8 array): dicts keep their key order and
their str/int keys (dots included), lists and tuples stay apart, Python
scalars (bool, int, float incl. nan/inf, str, None) are stored in the JSON, and
array leaves are references to their entries. Loading reads with
``allow_pickle=False`` and only ever builds dicts, lists, tuples, scalars,
numpy arrays and Tensors: an untrusted file cannot run code.

``save`` is atomic: it writes a temporary file in the target's directory,
flushes and fsyncs it, then ``os.replace``-s it over ``path``; a crash at any
point leaves either the old file or the new one, never a torn one.
"""
import json
import os
import uuid
import zipfile

import numpy as np

from nbdl.tensor import Tensor

FORMAT = "nbdl-checkpoint"
VERSION = 1
_META = "__nbdl__"


def save(obj, path):
    """Write ``obj`` to ``path`` (the name is used as given; no suffix is added).

    ``obj`` is built from dicts (str or int keys), lists, tuples, nbdl Tensors,
    numpy arrays and numpy scalars (any non-object dtype), bool, int, float, str
    and None. Tensors are stored from the host (they load on "cpu").
    Raises TypeError naming the key path of an unsupported value.
    """
    path = os.fspath(path)
    arrays = {_META: None}  # reserve the header's name; filled in below
    tree = _encode(obj, (), arrays)
    meta = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree})
    arrays[_META] = np.frombuffer(meta.encode("utf-8"), dtype=np.uint8)

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"save: directory {directory!r} does not exist")
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
    # created like any new file (mode 0o666 less the umask), unlike mkstemp's 0o600
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    if os.name == "posix":  # make the rename itself durable
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def load(path):
    """Read a checkpoint written by ``save``: the same structure, with Tensors
    (on "cpu", ``requires_grad`` restored), numpy arrays and scalars with their
    exact dtypes and shapes. Raises FileNotFoundError for a missing path and
    ValueError for a file that is not a valid nbdl checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"load: no such file {path!r}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(bytes(npz[_META + ".npy"]).decode("utf-8"))
            if not (isinstance(meta, dict) and meta.get("format") == FORMAT):
                raise ValueError("no nbdl header")
            if meta.get("version") != VERSION:
                raise ValueError(f"format version {meta.get('version')!r}, this nbdl "
                                 f"reads version {VERSION}")
            return _decode(meta["tree"], npz)
    except (ValueError, KeyError, TypeError, OSError, EOFError, AttributeError,
            RecursionError, zipfile.BadZipFile) as err:
        raise ValueError(f"load: {path!r} is not a valid nbdl checkpoint ({err})") from None


def _write_npz(f, arrays):
    """Write {entry name: array} to the open binary file ``f`` as an npz."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as entry:
                np.lib.format.write_array(entry, arr, allow_pickle=False)


def _entry(arr, path, arrays):
    """Store ``arr`` under the dotted ``path`` (made unique) and return the name."""
    if arr.dtype.hasobject:
        raise TypeError(f"save: array at key {_dotted(path)!r} has dtype {arr.dtype}; "
                        f"object arrays cannot be saved without pickle")
    base = _dotted(path) or "_"
    name, k = base, 0
    while name in arrays:  # e.g. keys 1 and "1", or "a.b" next to "a" -> "b"
        k += 1
        name = f"{base}~{k}"
    arrays[name] = arr
    return name


def _dotted(path):
    return ".".join(str(k) for k in path)


def _encode(obj, path, arrays):
    """The JSON tree of ``obj``; its arrays go into ``arrays``. Containers and
    arrays are tagged objects ({"dict": [[key, value], ...]}, {"list": [...]},
    {"tuple": [...]}, {"tensor": name}, {"ndarray": name}, {"scalar": name});
    Python scalars are stored as themselves."""
    if isinstance(obj, np.generic):  # before float: np.float64 subclasses it
        return {"scalar": _entry(np.asarray(obj), path, arrays)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Tensor):
        node = {"tensor": _entry(obj.numpy(), path, arrays)}
        if obj.requires_grad:
            node["requires_grad"] = True
        return node
    if isinstance(obj, np.ndarray):
        return {"ndarray": _entry(obj, path, arrays)}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: dict keys must be str or int, got {key!r} "
                                f"({type(key).__name__}) at key {_dotted(path)!r}")
            items.append([key, _encode(value, path + (key,), arrays)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "tuple" if isinstance(obj, tuple) else "list"
        return {kind: [_encode(v, path + (i,), arrays) for i, v in enumerate(obj)]}
    raise TypeError(f"save: unsupported value of type {type(obj).__name__} at key "
                    f"{_dotted(path)!r}; expected a dict, list, tuple, Tensor, numpy "
                    f"array or scalar, bool, int, float, str or None")


def _decode(node, npz):
    """Invert ``_encode``: rebuild the object from its JSON tree and the npz."""
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if not (isinstance(node, dict) and node):
        raise ValueError(f"malformed node {node!r:.80}")
    tag = next(iter(node))
    value = node[tag]
    if tag == "dict":
        return {_key(k): _decode(v, npz) for k, v in value}
    if tag in ("list", "tuple"):
        items = [_decode(v, npz) for v in value]
        return items if tag == "list" else tuple(items)
    if tag in ("tensor", "ndarray", "scalar"):
        arr = npz[value + ".npy"]
        if not isinstance(arr, np.ndarray):
            raise ValueError(f"entry {value!r} is not an array")
        if tag == "scalar":
            return arr[()]
        return arr if tag == "ndarray" else Tensor(arr, requires_grad=node.get("requires_grad", False))
    raise ValueError(f"unknown node tag {tag!r:.80}")


def _key(key):
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise ValueError(f"malformed dict key {key!r:.80}")
    return key
