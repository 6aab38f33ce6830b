"""Every @cuda.jit kernel of nbdl.kernels.cuda with the argument types its
wrapper passes, for a float dtype ``f`` (numba float32 / float64): what
tests/test_cuda_ptx.py compiles. ``find_kernels`` walks the modules, so a
kernel missing here fails that test. Import only without the simulator.
"""
from numba import types as t
from numba.cuda.dispatcher import CUDADispatcher

from nbdl.kernels.cuda import (_launch, conv, elementwise, indexing, linalg, norm, optim, pool, random,
                               reduce)

MODULES = (_launch, elementwise, reduce, linalg, indexing, random, optim, pool, norm, conv)
from nbdl.kernels.cuda import recurrence  # noqa: E402
MODULES += (recurrence,)
from nbdl.kernels.cuda import attention  # noqa: E402
MODULES += (attention,)

U = t.UniTuple(t.int64, 3)   # shapes and strides (a kernel compiles per rank; 3 stands for all)
I = t.int64
B = t.boolean
U64 = t.uint64
F64 = t.float64


def A(dtype):
    """A 1-D C-contiguous device array (what the wrappers pass: flat views and bases)."""
    return t.Array(dtype, 1, "C")


def G(ty):
    """A GROUP-tuple of ``ty`` (the grouped optimizer kernels)."""
    return t.UniTuple(ty, optim.GROUP)


def _unary(name):
    def sig(f):
        out = B if name == "logical_not" else f
        p = f if name == "clamp" else F64
        return t.void(A(out), U, A(f), I, U, p, p)
    return sig


def _binary(name):
    def sig(f):
        out = B if name in ("lt", "le", "gt", "ge", "eq", "ne", "logical_and", "logical_or") else f
        return t.void(A(out), U, A(f), I, U, f, B, A(f), I, U, f, B)
    return sig


def kernel_list():
    """[(name, dispatcher, signature builder f -> signature)]."""
    E, R, L, X, Q, O, P, N = elementwise, reduce, linalg, indexing, random, optim, pool, norm
    C = conv
    out = [(f"elementwise.KERNELS[{n!r}]", E.KERNELS[n], _unary(n)) for n in E._UNARY]
    out += [(f"elementwise.KERNELS[{n!r}]", E.KERNELS[n], _binary(n)) for n in E._BINARY]
    out += [(f"elementwise.KERNELS['copy'] (cast to {d})", E.KERNELS["copy"],
             lambda f, d=d: t.void(A(d), U, A(f), I, U, F64, F64)) for d in (B, I)]
    out += [
        ("elementwise._copy_kernel", E._copy_kernel, lambda f: t.void(A(f), I, U, A(f), I, U, U, I)),
        ("elementwise._fill_kernel", E._fill_kernel, lambda f: t.void(A(f), f)),
        ("elementwise._where_kernel", E._where_kernel, lambda f: t.void(
            A(f), U, A(B), I, U, A(f), I, U, f, B, A(f), I, U, f, B)),
        ("reduce._reduce_serial", R._reduce_serial, lambda f: t.void(
            I, A(f), f, A(f), I, U, U, U, U, I)),
        ("reduce._reduce_tree", R._reduce_tree, lambda f: t.void(
            I, A(f), f, A(f), I, U, U, U, U, I, I, I)),
        ("reduce._arg_serial", R._arg_serial, lambda f: t.void(I, A(I), A(f), I, U, U, I, I)),
        ("reduce._arg_tree", R._arg_tree, lambda f: t.void(I, A(I), A(f), I, U, U, I, I)),
        ("reduce._rows", R._rows, lambda f: t.void(A(f), A(f), I, I)),
        ("linalg._matmul_kernel", L._matmul_kernel, lambda f: t.void(
            A(f), U, I, I, I, I, A(f), I, U, I, I, A(f), I, U, I, I, A(f), B)),
        ("linalg._sum_splits_kernel", L._sum_splits_kernel, lambda f: t.void(A(f), A(f), I, A(f), B)),
        ("indexing._gather_kernel", X._gather_kernel, lambda f: t.void(
            A(f), U, A(f), I, U, I, I, A(I), I, U, A(t.int32))),
        ("indexing._scatter_add_kernel", X._scatter_add_kernel, lambda f: t.void(
            A(f), U, I, U, I, I, A(I), I, U, A(f), I, U, A(t.int32))),
        ("indexing._take_kernel", X._take_kernel, lambda f: t.void(A(f), A(f), I, A(I))),
        ("indexing._put_kernel", X._put_kernel, lambda f: t.void(A(f), A(I), U, A(f), I, U)),
        ("indexing._put_add_kernel", X._put_add_kernel, lambda f: t.void(A(f), A(I), U, A(f), I, U)),
        ("random._fill_uniform_kernel", Q._fill_uniform_kernel, lambda f: t.void(A(f), U64, U64, F64, F64)),
        ("random._fill_normal_kernel", Q._fill_normal_kernel, lambda f: t.void(A(f), U64, U64, F64, F64)),
        ("random._bernoulli_kernel", Q._bernoulli_kernel, lambda f: t.void(A(f), U64, U64, F64, F64)),
        ("optim._sgd_kernel", O._sgd_kernel, lambda f: t.void(
            *[G(A(f))] * 3, G(I), G(f), G(f), G(F64), G(U64), f, f, f, B, B, U64)),
        ("optim._adam_kernel", O._adam_kernel, lambda f: t.void(
            *[G(A(f))] * 5, G(I), G(f), G(f), *[f] * 7, B, B, B)),
        ("optim._rmsprop_kernel", O._rmsprop_kernel, lambda f: t.void(
            *[G(A(f))] * 5, G(I), *[f] * 7, B, B)),
        ("optim._adagrad_kernel", O._adagrad_kernel, lambda f: t.void(
            *[G(A(f))] * 3, G(I), G(f), f, f, B)),
        ("pool._max_pool_kernel", P._max_pool_kernel, lambda f: t.void(A(f), A(I), A(f), *[I] * 12)),
        ("pool._max_pool_scatter_kernel", P._max_pool_scatter_kernel, lambda f: t.void(
            A(f), A(f), A(I), I, I, A(t.int32))),
        ("pool._window_mean_kernel", P._window_mean_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, *[A(I)] * 6, I)),
        ("pool._window_mean_backward_kernel", P._window_mean_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, *[A(I)] * 6, I, *[A(I)] * 4)),
        ("pool._nearest_kernel", P._nearest_kernel, lambda f: t.void(A(f), A(f), I, I, I, I, A(I), A(I))),
        ("pool._nearest_backward_kernel", P._nearest_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, *[A(I)] * 4)),
        ("pool._bilinear_kernel", P._bilinear_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, A(I), A(I), A(f), A(f), A(I), A(I), A(f), A(f))),
        ("pool._bilinear_backward_kernel", P._bilinear_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, A(I), A(I), A(f), A(f), A(I), A(I), A(f), A(f), *[A(I)] * 4)),
        ("norm._bn_forward_kernel", N._bn_forward_kernel, lambda f: t.void(
            A(f), I, I, I, A(F64), A(F64), F64, A(f), A(F64), A(F64), A(F64))),
        ("norm._bn_backward_kernel", N._bn_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, A(F64), A(F64), A(F64), A(f), A(f), A(f))),
        ("norm._gn_forward_kernel", N._gn_forward_kernel, lambda f: t.void(
            A(f), I, I, I, I, A(F64), A(F64), F64, A(f), A(F64), A(F64), A(F64))),
        ("norm._gn_backward_kernel", N._gn_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, I, I, A(F64), A(F64), A(F64), A(f), A(F64), A(F64))),
        ("norm._sum_rows_kernel", N._sum_rows_kernel, lambda f: t.void(A(f), A(F64), I, I)),
        ("conv._im2col_kernel", C._im2col_kernel, lambda f: t.void(A(f), A(f), *[I] * 13)),
        ("conv._col2im_kernel", C._col2im_kernel, lambda f: t.void(A(f), A(f), *[I] * 13, A(f), B)),
        ("conv._to_nchw_kernel", C._to_nchw_kernel, lambda f: t.void(A(f), A(f), I, I, A(f), B)),
    ]
    S = recurrence
    out += [
        ("recurrence._rnn_step_kernel", S._rnn_step_kernel, lambda f: t.void(*[A(f)] * 7, A(I), I, I, B)),
        ("recurrence._lstm_step_kernel", S._lstm_step_kernel, lambda f: t.void(*[A(f)] * 11, A(I), I, I)),
        ("recurrence._gru_step_kernel", S._gru_step_kernel, lambda f: t.void(*[A(f)] * 9, A(I), I, I)),
        ("recurrence._rnn_back_kernel", S._rnn_back_kernel, lambda f: t.void(*[A(f)] * 5, A(I), I, B, I, I)),
        ("recurrence._lstm_back_kernel", S._lstm_back_kernel, lambda f: t.void(*[A(f)] * 8, A(I), I, I, I)),
        ("recurrence._gru_back_kernel", S._gru_back_kernel, lambda f: t.void(*[A(f)] * 9, A(I), I, I, I)),
    ]
    AT = attention
    mask_args = (A(I), B, I, I, B, F64, F64, U64, U64)   # mask_index .. offset (after the mask)
    out += [
        ("attention._attention_forward_kernel", AT._attention_forward_kernel, lambda f: t.void(
            *[A(f)] * 3, *[I] * 5, A(f), *mask_args, A(f), A(f))),
        ("attention._attention_dq_kernel", AT._attention_dq_kernel, lambda f: t.void(
            *[A(f)] * 6, *[I] * 5, A(f), *mask_args, A(f), A(f))),
        ("attention._attention_dkv_kernel", AT._attention_dkv_kernel, lambda f: t.void(
            *[A(f)] * 6, *[I] * 5, A(f), *mask_args, A(f), A(f))),
        ("attention._ln_forward_kernel", AT._ln_forward_kernel, lambda f: t.void(
            A(f), I, I, A(F64), A(F64), F64, A(f), A(F64), A(F64))),
        ("attention._ln_backward_kernel", AT._ln_backward_kernel, lambda f: t.void(
            A(f), A(f), I, I, A(F64), A(F64), A(F64), A(f))),
        ("attention._ln_params_kernel", AT._ln_params_kernel, lambda f: t.void(
            A(f), A(f), I, I, *[A(F64)] * 4)),
        ("attention._embedding_kernel", AT._embedding_kernel, lambda f: t.void(A(f), A(I), I, I, A(f))),
        ("attention._embedding_backward_kernel", AT._embedding_backward_kernel, lambda f: t.void(
            A(f), A(I), I, I, I, A(f))),
    ]
    return out


def find_kernels():
    """{id: name} of every kernel dispatcher in the modules (globals and dict values)."""
    found = {}
    for mod in MODULES:
        for name, v in vars(mod).items():
            items = v.items() if isinstance(v, dict) else [(None, v)]
            for key, obj in items:
                if isinstance(obj, CUDADispatcher) and not obj.targetoptions.get("device"):
                    found[id(obj)] = f"{mod.__name__}.{name}" + (f"[{key!r}]" if key else "")
    return found
