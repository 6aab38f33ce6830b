"""conv2d forward, and forward+backward (gradients w.r.t. input and weight), on
CNN-shaped layers, each beside its PyTorch CPU peer (torch imported in setup)."""
import numpy as np

from .common import warm_allocator

# (N, C_in, C_out, H=W, kernel, padding, stride)
SHAPES = {
    "N32_3to16_32x32_k3": (32, 3, 16, 32, 3, 1, 1),
    "N32_16to32_32x32_k3": (32, 16, 32, 32, 3, 1, 1),
    "N64_64to64_16x16_k3": (64, 64, 64, 16, 3, 1, 1),
    "N8_64to128_56x56_k3s2": (8, 64, 128, 56, 3, 1, 2),
}


class Conv2d:
    """F.conv2d(x, w, padding, stride) in float32; fwd and fwd+bwd (dx, dw)."""
    params = [list(SHAPES), ["nbdl", "torch"]]
    param_names = ["shape", "framework"]
    timeout = 300

    def setup(self, shape, framework):
        warm_allocator()
        n, cin, cout, hw, k, p, s = SHAPES[shape]
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, cin, hw, hw)).astype(np.float32)
        w = (rng.standard_normal((cout, cin, k, k)) / np.sqrt(cin * k * k)).astype(np.float32)
        self.kw = dict(padding=p, stride=s)
        if framework == "nbdl":
            import nbdl
            import nbdl.nn.functional as F
            self.x = nbdl.tensor(x, requires_grad=True)
            self.w = nbdl.tensor(w, requires_grad=True)
            self.conv, self.grad = F.conv2d, nbdl.grad
        else:
            import torch
            import torch.nn.functional as TF
            torch.set_num_threads(2)
            self.x = torch.tensor(x, requires_grad=True)
            self.w = torch.tensor(w, requires_grad=True)
            self.conv, self.grad = TF.conv2d, torch.autograd.grad
        self.time_forward_backward(shape, framework)     # compile / warm up

    def time_forward(self, shape, framework):
        self.conv(self.x.detach(), self.w.detach(), **self.kw)

    def time_forward_backward(self, shape, framework):
        self.grad(self.conv(self.x, self.w, **self.kw).sum(), [self.x, self.w])
