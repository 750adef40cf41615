"""The CBAM modules against the paper's equations, written out independently here."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from cbam import CBAM, ChannelAttention, SpatialAttention, hidden_width


def reference_channel_weights(m: ChannelAttention, x: torch.Tensor) -> torch.Tensor:
    """Mc(F) = σ(Σ_pool W1 ReLU(W0 pool(F))), one pooling branch at a time, as in Eq. 2."""
    pools = {
        "avg": lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1),
        "max": lambda t: F.adaptive_max_pool2d(t, 1).flatten(1),
        "lp": lambda t: F.lp_pool2d(t, 2, t.shape[2:]).flatten(1),
        "lse": lambda t: t.flatten(2).exp().sum(2).log(),
    }
    total = 0
    for pool in m.pool_types:
        h = F.relu(F.linear(pools[pool](x), m.fc1.weight, m.fc1.bias))
        total = total + F.linear(h, m.fc2.weight, m.fc2.bias)
    return torch.sigmoid(total)


def reference_spatial_mask(m: SpatialAttention, x: torch.Tensor) -> torch.Tensor:
    """Ms(F) = σ(f^{k×k}([mean_c F; max_c F])), Eq. 3 (maps swapped for the authors' order)."""
    avg, mx = x.mean(1, keepdim=True), x.max(1, keepdim=True).values
    maps = torch.cat([avg, mx] if m.pool_order == "avg-max" else [mx, avg], 1)
    logits = F.conv2d(maps, m.conv.weight, padding=m.kernel_size // 2)
    if m.bn is not None:
        logits = m.bn(logits)
    return torch.sigmoid(logits)


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g) * 0.1)
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    return module


@pytest.mark.parametrize("pools", [("avg", "max"), ("avg",), ("max",), ("lp",), ("lse",), ("avg", "max", "lp", "lse")])
@pytest.mark.parametrize("bias", [True, False])
def test_channel_attention_matches_equation_2(pools, bias):
    m = randomise(ChannelAttention(24, 4, pools, mlp_bias=bias))
    x = torch.randn(3, 24, 5, 7)
    expected = reference_channel_weights(m, x)
    # 'lp' and 'lse' are written differently in the reference (lp_pool2d, exp-sum-log), so float
    # rounding may differ by a few ulps of the pooled values
    tol = 1e-6 if set(pools) <= {"avg", "max"} else 1e-5
    torch.testing.assert_close(m.weights(x), expected, rtol=tol, atol=tol)
    torch.testing.assert_close(m(x), x * expected[:, :, None, None], rtol=tol, atol=tol)


@pytest.mark.parametrize("k, order, bn", list(itertools.product([1, 3, 5, 7, 9, 11], ["avg-max", "max-avg"], [False, True])))
def test_spatial_attention_matches_equation_3(k, order, bn):
    m = randomise(SpatialAttention(k, order, bn)).eval()
    x = torch.randn(2, 6, 13, 11)
    expected = reference_spatial_mask(m, x)
    assert m.mask(x).shape == (2, 1, 13, 11)
    torch.testing.assert_close(m.mask(x), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(m(x), x * expected, rtol=1e-6, atol=1e-6)


def test_cbam_arrangements_follow_their_definitions():
    x = torch.randn(2, 32, 8, 8)
    blocks = {a: randomise(CBAM(32, 8, 5, arrangement=a), seed=1) for a in ("channel-spatial", "spatial-channel", "parallel")}
    ca, sa = blocks["channel-spatial"].channel_attention, blocks["channel-spatial"].spatial_attention
    f1 = x * reference_channel_weights(ca, x)[:, :, None, None]
    torch.testing.assert_close(blocks["channel-spatial"](x), f1 * reference_spatial_mask(sa, f1), rtol=1e-6, atol=1e-6)
    ca, sa = blocks["spatial-channel"].channel_attention, blocks["spatial-channel"].spatial_attention
    f1 = x * reference_spatial_mask(sa, x)
    torch.testing.assert_close(blocks["spatial-channel"](x), f1 * reference_channel_weights(ca, f1)[:, :, None, None], rtol=1e-6, atol=1e-6)
    ca, sa = blocks["parallel"].channel_attention, blocks["parallel"].spatial_attention
    expected = x * reference_channel_weights(ca, x)[:, :, None, None] * reference_spatial_mask(sa, x)
    torch.testing.assert_close(blocks["parallel"](x), expected, rtol=1e-6, atol=1e-6)
    # and the three really are different functions
    outs = [b(x) for b in blocks.values()]
    assert not torch.allclose(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_channel_only_block():
    m = CBAM(16, 4, spatial=False)
    x = torch.randn(1, 16, 4, 4)
    assert m.spatial_attention is None and m.kernel_size is None
    torch.testing.assert_close(m(x), m.channel_attention(x))


def test_presets():
    paper, authors, blog = CBAM.paper(64), CBAM.authors(64), CBAM.blog(64)
    assert paper.channel_attention.fc1.bias is None and blog.channel_attention.fc1.bias is None
    assert authors.channel_attention.fc1.bias is not None
    assert (paper.kernel_size, authors.kernel_size, blog.kernel_size) == (7, 7, 3)
    assert paper.spatial_attention.pool_order == "avg-max" and authors.spatial_attention.pool_order == "max-avg"
    assert authors.spatial_attention.bn is not None and paper.spatial_attention.bn is None
    assert CBAM.blog(64, kernel_size=7).kernel_size == 7
    assert all(b.channel_attention.hidden_channels == 4 for b in (paper, authors, blog))


def test_hidden_width_is_never_zero():
    assert hidden_width(64, 16) == 4
    assert hidden_width(8, 16) == 1  # the blog's 8 // 16 would be 0
    assert hidden_width(1, 1) == 1
    assert CBAM(4, 16).channel_attention.hidden_channels == 1
    # with one hidden unit the weights still depend on the input
    m = randomise(CBAM(4, 16))
    inputs = torch.randn(16, 4, 5, 5, generator=torch.Generator().manual_seed(0)) * torch.linspace(-3, 3, 16)[:, None, None, None]
    weights = m.channel_attention.weights(inputs)
    assert weights.std(dim=0).max() > 1e-3


@pytest.mark.parametrize("k", [0, -3, 2, 4, 8, 3.0, True, "7"])
def test_bad_kernel_size_is_a_clear_value_error(k):
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer"):
        CBAM(8, kernel_size=k)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reduction_ratio": 0}, "reduction_ratio"),
        ({"pool_types": ("avg", "mean")}, "pool_types"),
        ({"pool_types": ()}, "pool_types"),
        ({"pool_types": ("avg", "avg")}, "pool_types"),
        ({"arrangement": "channel-first"}, "arrangement"),
        ({"spatial_pool_order": "max-min"}, "pool_order"),
    ],
)
def test_bad_options_are_clear_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CBAM(8, **kwargs)


def test_channels_must_be_positive():
    with pytest.raises(ValueError, match="channels"):
        CBAM(0)


OPTIONS = [
    dict(arrangement="channel-spatial", pool_types=("avg", "max"), mlp_bias=True, spatial_batch_norm=False),
    dict(arrangement="spatial-channel", pool_types=("avg", "max"), mlp_bias=False, spatial_pool_order="max-avg"),
    dict(arrangement="parallel", pool_types=("avg", "max"), mlp_bias=True, spatial_batch_norm=True),
    dict(arrangement="channel-spatial", pool_types=("lp", "lse"), mlp_bias=True),
    dict(arrangement="channel-spatial", pool_types=("max",), mlp_bias=False, spatial=False),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{v}" for v in o.values()))
def test_gradients_through_every_option(options):
    torch.manual_seed(0)
    m = CBAM(6, 2, 3, **options).double()
    m.train()
    # BatchNorm in training mode couples the batch; gradcheck still holds since it is deterministic.
    x = torch.randn(2, 6, 4, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: m(t), (x,), eps=1e-6, atol=1e-5)
    # and every parameter receives a gradient
    m.zero_grad()
    m(x).square().sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("preset", ["paper", "authors", "blog"])
def test_half_precision_inputs(dtype, preset):
    torch.manual_seed(0)
    m = getattr(CBAM, preset)(32, 8).eval()
    x = torch.randn(2, 32, 10, 10)
    expected = m(x)
    got = m.to(dtype)(x.to(dtype))
    assert got.dtype == dtype
    tol = 2e-2 if dtype == torch.float16 else 6e-2
    torch.testing.assert_close(got.float(), expected, rtol=tol, atol=tol)


def test_state_dict_keys_are_readable():
    keys = set(CBAM.authors(32).state_dict())
    assert {"channel_attention.fc1.weight", "channel_attention.fc1.bias", "channel_attention.fc2.weight",
            "spatial_attention.conv.weight", "spatial_attention.bn.running_mean"} <= keys


def test_spatial_padding_replicate():
    """The "replicate" option (not the paper's): the 2 pooled maps are padded by repeating their border."""
    x = torch.randn(2, 6, 6, 6)
    m = randomise(SpatialAttention(7, padding="replicate")).eval()
    avg, mx = x.mean(1, keepdim=True), x.max(1, keepdim=True).values
    padded = F.pad(torch.cat([avg, mx], 1), (3, 3, 3, 3), mode="replicate")
    torch.testing.assert_close(m.mask(x), torch.sigmoid(F.conv2d(padded, m.conv.weight)), rtol=1e-6, atol=1e-6)
    block = CBAM.paper(16, spatial_padding="replicate")
    assert block.spatial_attention.padding == "replicate" and "replicate" in repr(block)
    assert CBAM.paper(16).spatial_attention.padding == "zeros"  # the default is the paper's
    with torch.no_grad():  # inference (the fast path, where it applies) keeps the replicate padding
        y = torch.randn(2, 16, 12, 12)
        block.eval()
        torch.testing.assert_close(block(y), block.spatial_attention(block.channel_attention(y)), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="padding"):
        SpatialAttention(7, padding="reflect")
