"""Transformer layers: Embedding, LayerNorm, MultiheadAttention,
TransformerEncoderLayer, TransformerEncoder (torch's names, defaults and
parameter layouts, so a torch state_dict loads by name) and a sinusoidal
PositionalEncoding."""
import copy
import math

import numpy as np

import nbdl.functional as _ops
from nbdl.creation import empty, ones, tensor, zeros
from nbdl.functional.attention import embedding, layer_norm, scaled_dot_product_attention
from nbdl.nn import init
from nbdl.nn.layers import Dropout, Linear, ModuleList
from nbdl.nn.module import Module
from nbdl.nn.parameter import Parameter
from nbdl.tensor import DEFAULT_DTYPE, Tensor


def _positive_int(owner, name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{owner}: {name} must be a positive int, got {v!r}")
    return int(v)


class Embedding(Module):
    """A lookup table weight (num_embeddings, embedding_dim), N(0, 1) init;
    the ``padding_idx`` row starts at zero and gets no gradient."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, dtype=None):
        super().__init__()
        self.num_embeddings = _positive_int("Embedding", "num_embeddings", num_embeddings)
        self.embedding_dim = _positive_int("Embedding", "embedding_dim", embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx must be in [-{num_embeddings}, "
                                 f"{num_embeddings}), got {padding_idx}")
            padding_idx %= num_embeddings
        self.padding_idx = padding_idx
        self.weight = Parameter(empty(num_embeddings, embedding_dim, dtype=dtype))
        self.reset_parameters()

    def reset_parameters(self):
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


class LayerNorm(Module):
    """Normalise over the trailing ``normalized_shape`` dims; weight ones, bias zeros."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (int(normalized_shape),)
        self.normalized_shape = tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(ones(*self.normalized_shape, dtype=dtype))
            self.bias = Parameter(zeros(*self.normalized_shape, dtype=dtype)) if bias else None
        else:
            self.weight = self.bias = None
        for name in ("weight", "bias"):
            if getattr(self, name) is None:
                self.register_parameter(name, None)

    def forward(self, input):
        return layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


def _additive(mask, dtype, name):
    """A bool mask (True = masked out, nn.MultiheadAttention's meaning) or a
    float mask as a float mask to add to the scores (outside the graph)."""
    if mask.dtype == np.bool_:
        return zeros(*mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -np.inf)
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be a bool or float tensor, got {mask.dtype}")
    return mask.detach().to(dtype=dtype)


class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention: in_proj_weight (3E, E) and in_proj_bias
    (3E,) when kdim = vdim = embed_dim, else q_proj_weight (E, E),
    k_proj_weight (E, kdim), v_proj_weight (E, vdim); out_proj (Linear E -> E).

    forward(query, key, value, key_padding_mask, need_weights, attn_mask,
    average_attn_weights, is_causal) -> (output, weights or None). Masks take
    torch's meaning here: bool True = masked out, float = added. With
    need_weights the weights come from the plain path (scores, softmax,
    matmul: differentiable twice, and fully masked rows give NaN as torch);
    without, the fused attention kernel (fully masked rows give zeros)."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, dtype=None):
        super().__init__()
        name = "MultiheadAttention"
        self.embed_dim = _positive_int(name, "embed_dim", embed_dim)
        self.num_heads = _positive_int(name, "num_heads", num_heads)
        if embed_dim % num_heads:
            raise ValueError(f"{name}: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(f"{name}: add_bias_kv and add_zero_attn are not supported")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.kdim = embed_dim if kdim is None else _positive_int(name, "kdim", kdim)
        self.vdim = embed_dim if vdim is None else _positive_int(name, "vdim", vdim)
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.head_dim = embed_dim // num_heads
        self.dropout, self.batch_first = dropout, batch_first
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, dtype=dtype))
            for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(n, None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, dtype=dtype))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, dtype=dtype))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, dtype=dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        self._reset_parameters()

    def _reset_parameters(self):
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)

    def _project(self, query, key, value):
        e = self.embed_dim
        b = self.in_proj_bias
        bq, bk, bv = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            if query is key and key is value:      # self-attention: one GEMM
                return _ops.linear(query, w, b).chunk(3, -1)
            wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return _ops.linear(query, wq, bq), _ops.linear(key, wk, bk), _ops.linear(value, wv, bv)

    def _check(self, query, key, value):
        name = "MultiheadAttention"
        for arg, t, d in (("query", query, self.embed_dim), ("key", key, self.kdim),
                          ("value", value, self.vdim)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{name}: {arg} must be a Tensor, got {type(t).__name__}")
            if t.ndim not in (2, 3) or t.shape[-1] != d:
                raise ValueError(f"{name}: {arg} must be (L, {d}) or 3-D ending in {d}, got {t.shape}")
        if not query.ndim == key.ndim == value.ndim:
            raise ValueError(f"{name}: query, key and value must all be batched or all unbatched, "
                             f"got {query.shape}, {key.shape}, {value.shape}")
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{name}: key {key.shape} and value {value.shape} differ in length or batch")
        bdim = 0 if self.batch_first else 1
        if query.ndim == 3 and query.shape[bdim] != key.shape[bdim]:
            raise ValueError(f"{name}: query {query.shape} and key {key.shape} differ in batch size")

    def _mask(self, attn_mask, key_padding_mask, n, lq, lk, dtype):
        """One float mask broadcasting to (N, H, Lq, Lk), or None."""
        name = "MultiheadAttention"
        h = self.num_heads
        mask = None
        if attn_mask is not None:
            if attn_mask.shape == (lq, lk):
                mask = _additive(attn_mask, dtype, "attn_mask")
            elif attn_mask.shape == (n * h, lq, lk):
                mask = _additive(attn_mask, dtype, "attn_mask").reshape(n, h, lq, lk)
            else:
                raise ValueError(f"{name}: attn_mask must be ({lq}, {lk}) or ({n * h}, {lq}, {lk}), "
                                 f"got {attn_mask.shape}")
        if key_padding_mask is not None:
            if key_padding_mask.shape != (n, lk):
                raise ValueError(f"{name}: key_padding_mask must be ({n}, {lk}), got {key_padding_mask.shape}")
            kpm = _additive(key_padding_mask, dtype, "key_padding_mask").reshape(n, 1, 1, lk)
            mask = kpm if mask is None else mask + kpm
        return mask

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        self._check(query, key, value)
        unbatched = query.ndim == 2
        if unbatched:
            query, key, value = query.unsqueeze(0), key.unsqueeze(0), value.unsqueeze(0)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif not self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        n, lq, lk, h, hd = query.shape[0], query.shape[1], key.shape[1], self.num_heads, self.head_dim
        q, k, v = self._project(query, key, value)
        q, k, v = (t.reshape(n, t.shape[1], h, hd).transpose(1, 2) for t in (q, k, v))
        mask = self._mask(attn_mask, key_padding_mask, n, lq, lk, q.dtype)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))
            if mask is not None:
                scores = scores + mask
            elif is_causal:
                causal = tensor(np.triu(np.ones((lq, lk), bool), 1), device=q.device)
                scores = scores.masked_fill(causal, -np.inf)
            weights = scores.softmax(-1)
            if p > 0:
                weights = _ops.dropout(weights, p)
            out = weights @ v
            if average_attn_weights:
                weights = weights.mean(1)
            if unbatched:
                weights = weights.squeeze(0)
        else:
            out = scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p,
                                               is_causal=is_causal and mask is None)
        out = self.out_proj(out.transpose(1, 2).reshape(n, lq, self.embed_dim))
        if unbatched:
            out = out.squeeze(0)
        elif not self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def extra_repr(self):
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, batch_first={self.batch_first}"


_ACTIVATIONS = {"relu": _ops.relu, "gelu": _ops.gelu}


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each with a residual and a
    LayerNorm (after, or before with norm_first=True), as torch's layer:
    self_attn, linear1, dropout, linear2, norm1, norm2, dropout1, dropout2."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, dtype=None):
        super().__init__()
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                            batch_first=batch_first, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if isinstance(activation, str):
            if activation not in _ACTIVATIONS:
                raise ValueError(f"TransformerEncoderLayer: activation must be 'relu', 'gelu' or a "
                                 f"callable, got {activation!r}")
            activation = _ACTIVATIONS[activation]
        self.activation = activation

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))


class TransformerEncoder(Module):
    """``num_layers`` copies of ``encoder_layer`` (layers.0, layers.1, ...),
    then the optional final ``norm``."""

    def __init__(self, encoder_layer, num_layers, norm=None):
        super().__init__()
        _positive_int("TransformerEncoder", "num_layers", num_layers)
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        for layer in self.layers:
            x = layer(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask, is_causal=is_causal)
        return x if self.norm is None else self.norm(x)


def sinusoidal_table(length, d_model):
    """(length, d_model) float64: sin(pos / 10000^(2i/d)) in even columns, cos in odd ones."""
    pos = np.arange(length)[:, None]
    freq = np.exp(np.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    pe = np.zeros((length, d_model))
    pe[:, 0::2] = np.sin(pos * freq)
    pe[:, 1::2] = np.cos(pos * freq)[:, :d_model // 2]
    return pe


class PositionalEncoding(Module):
    """x + the sinusoidal table (Vaswani et al.) of its positions, then dropout.
    x is (L, N, d_model), or (N, L, d_model) with batch_first."""

    def __init__(self, d_model, max_len=5000, dropout=0.0, batch_first=False, dtype=None):
        super().__init__()
        self.d_model = _positive_int("PositionalEncoding", "d_model", d_model)
        self.max_len = _positive_int("PositionalEncoding", "max_len", max_len)
        self.batch_first = batch_first
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", tensor(sinusoidal_table(max_len, d_model), dtype=dtype or DEFAULT_DTYPE),
                             persistent=False)

    def forward(self, x):
        dim = 1 if self.batch_first else 0
        if x.ndim != 3 or x.shape[-1] != self.d_model or x.shape[dim] > self.max_len:
            raise ValueError(f"PositionalEncoding: expected a 3-D input ending in {self.d_model} with "
                             f"at most {self.max_len} positions, got {x.shape}")
        pe = self.pe[:x.shape[dim]].to(dtype=x.dtype)
        pe = pe.unsqueeze(0) if self.batch_first else pe.unsqueeze(1)
        return self.dropout(x + pe)

    def extra_repr(self):
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"
