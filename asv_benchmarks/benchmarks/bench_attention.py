"""Scaled dot-product attention forward, and forward+backward (gradients
w.r.t. q, k and v), causal and not, and one training step of a small
transformer encoder, each beside its PyTorch CPU peer (torch imported in setup)."""
import numpy as np

from .common import warm_allocator

# (B, H, L, D); each runs causal and not
SHAPES = {"B8_H8_L256_D64": (8, 8, 256, 64), "B2_H8_L1024_D64": (2, 8, 1024, 64)}


class Attention:
    """F.scaled_dot_product_attention(q, k, v, is_causal=...) in float32."""
    params = [list(SHAPES), [False, True], ["nbdl", "torch"]]
    param_names = ["shape", "causal", "framework"]
    timeout = 300

    def setup(self, shape, causal, framework):
        warm_allocator()
        rng = np.random.default_rng(0)
        q, k, v = (rng.standard_normal(SHAPES[shape], dtype=np.float32) for _ in range(3))
        if framework == "nbdl":
            import nbdl
            import nbdl.nn.functional as F
            lib, self.sdpa, self.grad, self.no_grad = nbdl, F.scaled_dot_product_attention, nbdl.grad, nbdl.no_grad
        else:
            import torch
            import torch.nn.functional as TF
            torch.set_num_threads(2)
            lib, self.sdpa, self.grad, self.no_grad = torch, TF.scaled_dot_product_attention, \
                torch.autograd.grad, torch.no_grad
        self.qkv = [lib.tensor(a, requires_grad=True) for a in (q, k, v)]
        self.g = lib.tensor(rng.standard_normal(SHAPES[shape], dtype=np.float32))
        self.time_forward_backward(shape, causal, framework)     # compile / warm up

    def time_forward(self, shape, causal, framework):
        with self.no_grad():
            self.sdpa(*self.qkv, is_causal=causal)

    def time_forward_backward(self, shape, causal, framework):
        out = self.sdpa(*self.qkv, is_causal=causal)
        self.grad([(out * self.g).sum()], self.qkv)


def _encoder(nn, d_model=128, nhead=4, layers=2, **kw):
    layer = nn.TransformerEncoderLayer(d_model, nhead, 4 * d_model, dropout=0.1, batch_first=True,
                                       norm_first=True)
    return nn.Sequential(nn.TransformerEncoder(layer, layers, **kw), nn.Linear(d_model, 10))


class TransformerStep:
    """One Adam step of a 2-layer pre-norm encoder (d_model 128, 4 heads, ff 512,
    dropout 0.1) + a linear read-out on (32, 64, 128) inputs, cross-entropy per token."""
    params = ["nbdl", "torch"]
    param_names = ["framework"]
    timeout = 300

    def setup(self, framework):
        warm_allocator()
        rng = np.random.default_rng(0)
        x = rng.standard_normal((32, 64, 128), dtype=np.float32)
        y = rng.integers(0, 10, (32 * 64,))
        if framework == "nbdl":
            import nbdl
            from nbdl import nn
            nbdl.manual_seed(0)
            lib, self.loss = nbdl, nn.functional.cross_entropy
            self.model = _encoder(nn)
            self.opt = nbdl.optim.Adam(self.model.parameters(), lr=1e-3)
        else:
            import torch
            torch.set_num_threads(2)
            torch.manual_seed(0)
            lib, self.loss = torch, torch.nn.functional.cross_entropy
            self.model = _encoder(torch.nn, enable_nested_tensor=False)   # (unused with norm_first)
            self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, fused=True)
        self.x, self.y = lib.tensor(x), lib.tensor(y)
        self.time_step(framework)

    def time_step(self, framework):
        loss = self.loss(self.model(self.x).reshape(-1, 10), self.y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
