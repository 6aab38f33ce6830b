"""A run checkpointed with nbdl.save mid-way and resumed in a fresh model,
optimizer, scheduler and RNG state ends exactly where the uninterrupted run does."""
import numpy as np

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F
from nbdl.data import DataLoader, TensorDataset
from nbdl.optim.lr_scheduler import StepLR


def build():
    net = nn.Sequential(nn.Linear(13, 16), nn.Tanh(), nn.Dropout(0.2), nn.Linear(16, 3))
    opt = nbdl.optim.Adam(net.parameters(), lr=1e-2)
    return net, opt, StepLR(opt, step_size=2, gamma=0.5)


def train(net, opt, sched, loader, epochs):
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        sched.step()


def test_resume_matches_uninterrupted_run(tmp_path):
    data = nbdl.datasets.load_wine(standardize=True)
    loader = DataLoader(TensorDataset(data.X_train, data.y_train), batch_size=16, shuffle=True)

    nbdl.manual_seed(7)
    net, opt, sched = build()
    train(net, opt, sched, loader, 6)
    expected = {k: v.numpy().copy() for k, v in net.state_dict().items()}

    nbdl.manual_seed(7)
    net, opt, sched = build()
    train(net, opt, sched, loader, 3)
    path = tmp_path / "ckpt.npz"
    nbdl.save({"model": net.state_dict(), "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(), "rng": nbdl.get_rng_state()}, path)
    del net, opt, sched

    nbdl.manual_seed(12345)            # a fresh process would start elsewhere
    net, opt, sched = build()
    ckpt = nbdl.load(path)
    net.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    sched.load_state_dict(ckpt["scheduler"])
    nbdl.set_rng_state(ckpt["rng"])
    train(net, opt, sched, loader, 3)

    assert sched.get_last_lr() == [1e-2 * 0.5 ** 3]
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), expected[k], err_msg=k)
