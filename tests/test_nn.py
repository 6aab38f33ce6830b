"""nn: Module bookkeeping, state dicts, layers and inits against torch."""
import math

import numpy as np
import pytest
import torch

import nbdl
import nbdl.nn as nn
import nbdl.nn.functional as F


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.act = nn.ReLU()
        self.blocks = nn.ModuleList([nn.Linear(8, 8), nn.Linear(8, 8, bias=False)])
        self.heads = nn.ModuleDict({"a": nn.Linear(8, 3)})
        self.register_buffer("steps", nbdl.zeros(1, dtype=nbdl.int64))
        self.register_buffer("scratch", nbdl.zeros(2), persistent=False)

    def forward(self, x):
        x = self.act(self.fc1(x))
        for b in self.blocks:
            x = b(x)
        return self.heads["a"](x)


def test_registration_names_and_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight", "heads.a.weight", "heads.a.bias"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "scratch"]
    assert [n for n, _ in net.named_children()] == ["fc1", "act", "blocks", "heads"]
    assert len(list(net.modules())) == 8
    assert list(net.state_dict()) == ["steps"] + names   # torch's order: own entries, then children
    assert "scratch" not in net.state_dict()


def test_state_dict_round_trip_and_errors():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    x = nbdl.randn(2, 4)
    np.testing.assert_array_equal(a(x).numpy(), b(x).numpy())
    sd = a.state_dict()
    del sd["fc1.bias"]
    sd["extra.weight"] = nbdl.zeros(1)
    with pytest.raises(ValueError, match=r"missing keys: \['fc1.bias'\].*unexpected keys: \['extra.weight'\]"):
        b.load_state_dict(sd)
    res = b.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["fc1.bias"] and res.unexpected_keys == ["extra.weight"]
    bad = a.state_dict()
    bad["fc1.weight"] = nbdl.zeros(3, 3)
    with pytest.raises(ValueError, match=r"size mismatch for fc1.weight.*\(3, 3\).*\(8, 4\)"):
        b.load_state_dict(bad)


def test_state_dict_detached_and_load_keeps_identity():
    net = Net()
    w = net.fc1.weight
    sd = net.state_dict()
    assert not sd["fc1.weight"].requires_grad
    net.load_state_dict({k: v * 0 for k, v in sd.items()} | {"steps": nbdl.tensor([3])})
    assert net.fc1.weight is w and float(w.abs().sum()) == 0 and int(net.steps.item()) == 3


def test_torch_state_dict_loads_by_name():
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    out = net(nbdl.tensor(x))
    tout = tnet(torch.tensor(x))
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-6)
    out.sum().backward()
    tout.sum().backward()
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


def test_train_eval_dropout_and_zero_grad():
    net = nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))
    assert net.training and net[1].training
    net.eval()
    assert not net[1].training
    x = nbdl.randn(4, 3)
    np.testing.assert_array_equal(net(x).numpy(), net[0](x).numpy())
    net.train()
    net(x).sum().backward()
    assert net[0].weight.grad is not None
    net.zero_grad()
    assert net[0].weight.grad is None


def test_apply_to_and_repr():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen.count("Linear") == 4
    w = net.fc1.weight
    net.double()
    assert net.fc1.weight is w and w.dtype == np.float64 and net.steps.dtype == np.int64
    assert net(nbdl.randn(1, 4, dtype=nbdl.float64)).dtype == np.float64
    text = repr(net)
    assert "(fc1): Linear(in_features=4, out_features=8, bias=True)" in text
    assert "(1): Linear(in_features=8, out_features=8, bias=False)" in text
    with pytest.raises(ValueError, match="unknown device"):
        net.to("tpu")


def test_sequential_and_containers():
    seq = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Identity())
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU)
    assert isinstance(seq[:2], nn.Sequential) and len(seq[:2]) == 2
    md = nn.ModuleDict({"x": nn.ReLU()})
    assert "x" in md and list(md.keys()) == ["x"]
    ml = nn.ModuleList()
    ml.extend([nn.ReLU(), nn.Tanh()])
    assert len(ml) == 2 and len(list(nn.Sequential(*ml).parameters())) == 0


def test_linear_default_init_bounds():
    nbdl.manual_seed(0)
    lin = nn.Linear(50, 40)
    bound = 1 / math.sqrt(50)
    w, b = lin.weight.numpy(), lin.bias.numpy()
    assert w.min() >= -bound and w.max() <= bound and w.max() > 0.9 * bound
    assert b.min() >= -bound and b.max() <= bound
    # uniform(-bound, bound) has std bound / sqrt(3)
    assert abs(w.std() - bound / math.sqrt(3)) < 0.05 * bound


@pytest.mark.parametrize("name,kwargs,std", [
    ("xavier_uniform_", {}, math.sqrt(2 / (300 + 200))),
    ("xavier_normal_", {}, math.sqrt(2 / (300 + 200))),
    ("kaiming_uniform_", {"nonlinearity": "relu"}, math.sqrt(2 / 300)),
    ("kaiming_normal_", {"nonlinearity": "relu"}, math.sqrt(2 / 300)),
    ("kaiming_normal_", {"mode": "fan_out", "nonlinearity": "relu"}, math.sqrt(2 / 200)),
])
def test_init_statistics(name, kwargs, std):
    nbdl.manual_seed(1)
    w = nbdl.empty(200, 300)
    getattr(nn.init, name)(w, **kwargs)
    assert abs(w.numpy().std() / std - 1) < 0.03
    assert abs(w.numpy().mean()) < 0.05 * std


def test_init_constant_and_bad_input():
    w = nbdl.empty(3, 3)
    nn.init.ones_(w)
    assert w.numpy().sum() == 9
    nn.init.zeros_(w)
    assert w.numpy().sum() == 0
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        nn.init.xavier_uniform_(nbdl.empty(3))
    with pytest.raises(ValueError, match="mode"):
        nn.init.kaiming_uniform_(nbdl.empty(3, 3), mode="fan_middle")
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.init.calculate_gain("swishy")


@pytest.mark.parametrize("mod,tmod", [
    (nn.ReLU(), torch.nn.ReLU()), (nn.Tanh(), torch.nn.Tanh()), (nn.Sigmoid(), torch.nn.Sigmoid()),
    (nn.GELU(), torch.nn.GELU()), (nn.GELU("tanh"), torch.nn.GELU("tanh")),
    (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)), (nn.Softmax(1), torch.nn.Softmax(1)),
    (nn.LogSoftmax(0), torch.nn.LogSoftmax(0)), (nn.Flatten(), torch.nn.Flatten()),
    (nn.Identity(), torch.nn.Identity()),
])
def test_activation_modules_match_torch(mod, tmod):
    x = np.random.default_rng(0).standard_normal((3, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(mod(nbdl.tensor(x)).numpy(), tmod(torch.tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mod,tmod,target", [
    (nn.MSELoss(), torch.nn.MSELoss(), "float"),
    (nn.L1Loss(reduction="sum"), torch.nn.L1Loss(reduction="sum"), "float"),
    (nn.CrossEntropyLoss(label_smoothing=0.1), torch.nn.CrossEntropyLoss(label_smoothing=0.1), "class"),
    (nn.NLLLoss(), torch.nn.NLLLoss(), "class"),
    (nn.BCEWithLogitsLoss(), torch.nn.BCEWithLogitsLoss(), "prob"),
    (nn.KLDivLoss(reduction="batchmean"), torch.nn.KLDivLoss(reduction="batchmean"), "prob"),
])
def test_loss_modules_match_torch(mod, tmod, target):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    t = {"float": rng.standard_normal((6, 4)).astype(np.float32),
         "class": rng.integers(0, 4, 6),
         "prob": rng.uniform(size=(6, 4)).astype(np.float32)}[target]
    np.testing.assert_allclose(mod(nbdl.tensor(x), nbdl.tensor(t)).item(),
                               tmod(torch.tensor(x), torch.tensor(t)).item(), rtol=1e-5)


def test_module_errors():
    class NoInit(nn.Module):
        def __init__(self):
            self.w = 1

    with pytest.raises(AttributeError, match="super"):
        NoInit()
    with pytest.raises(ValueError, match="in_features"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match=r"linear: input of shape \(2, 5\)"):
        nn.Linear(4, 3)(nbdl.randn(2, 5))
    with pytest.raises(TypeError, match="Parameter"):
        nn.Module().register_parameter("w", nbdl.zeros(2))
    with pytest.raises(KeyError):
        nn.Module().register_buffer("a.b", nbdl.zeros(2))
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)


def test_functional_namespace():
    assert F.relu is nbdl.relu and callable(F.cross_entropy) and callable(F.pad)
