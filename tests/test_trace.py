"""cbam.trace and cbam.trace_all: the forward pass itself, recorded; nothing left behind."""

import copy

import pytest
import torch
from torch import nn

from cbam import CBAM, CBAMTrace, ChannelAttention, SpatialAttention, cbam_blocks, trace, trace_all
from cbam.models import cbam_resnet18, cbam_smallnet

ARRANGEMENTS = ["channel-spatial", "spatial-channel", "parallel"]


def module_fingerprint(model: nn.Module):
    """Everything about a module that tracing must not change."""
    return (
        [(n, type(m), dict(m.__dict__.get("_forward_hooks", {})), dict(m._forward_pre_hooks), sorted(m.__dict__))
         for n, m in model.named_modules()],
        {k: v.clone() for k, v in model.state_dict().items()},
        model.training,
    )


def assert_same_model(before, after):
    assert before[0] == after[0]
    assert before[1].keys() == after[1].keys()
    for k in before[1]:
        assert torch.equal(before[1][k], after[1][k]), k
    assert before[2] == after[2]


@pytest.mark.parametrize("arrangement", ARRANGEMENTS)
@pytest.mark.parametrize("preset", ["paper", "authors", "blog"])
def test_trace_out_is_forward(arrangement, preset):
    torch.manual_seed(0)
    m = getattr(CBAM, preset)(32, 4, arrangement=arrangement).eval()
    x = torch.randn(2, 32, 9, 11)
    t = trace(m, x)
    assert torch.equal(t.out, m(x))
    assert t.x is x


def test_trace_fields_follow_the_paper():
    torch.manual_seed(0)
    m = CBAM.paper(32, 8, 7).eval()
    x = torch.randn(2, 32, 9, 11)
    t = trace(m, x)
    ca, sa = m.channel_attention, m.spatial_attention
    assert torch.equal(t.avg_pool, x.mean((2, 3)))
    assert torch.equal(t.max_pool, x.amax((2, 3)))
    torch.testing.assert_close(t.mlp_hidden_avg, torch.relu(ca.fc1(t.avg_pool)))
    torch.testing.assert_close(t.mlp_max, ca.fc2(t.mlp_hidden_max))
    torch.testing.assert_close(t.channel_logits, t.mlp_avg + t.mlp_max)
    assert torch.equal(t.channel_weights, torch.sigmoid(t.channel_logits))
    assert torch.equal(t.x_channel, x * t.channel_weights[:, :, None, None])
    assert torch.equal(t.spatial_avg, t.x_channel.mean(1, keepdim=True))
    assert torch.equal(t.spatial_max, t.x_channel.amax(1, keepdim=True))
    torch.testing.assert_close(t.spatial_logits, sa.conv(torch.cat([t.spatial_avg, t.spatial_max], 1)))
    assert torch.equal(t.spatial_mask, torch.sigmoid(t.spatial_logits))
    assert torch.equal(t.out, t.x_channel * t.spatial_mask)
    assert t.mlp_hidden_avg.shape == (2, 4) and t.spatial_mask.shape == (2, 1, 9, 11)
    assert t.x_spatial is None and t.extra_pools is None


def test_trace_parallel_and_spatial_first_fields():
    torch.manual_seed(0)
    x = torch.randn(1, 16, 6, 6)
    p = trace(CBAM(16, 4, arrangement="parallel"), x)
    # in parallel both maps come from F itself
    torch.testing.assert_close(p.spatial_avg, x.mean(1, keepdim=True))
    torch.testing.assert_close(p.x_spatial, x * p.spatial_mask)
    torch.testing.assert_close(p.out, x * p.channel_weights[:, :, None, None] * p.spatial_mask)
    s = trace(CBAM(16, 4, arrangement="spatial-channel"), x)
    torch.testing.assert_close(s.x_spatial, x * s.spatial_mask)
    torch.testing.assert_close(s.avg_pool, s.x_spatial.mean((2, 3)))
    assert torch.equal(s.x_channel, s.out)


def test_trace_extra_pools_and_missing_ones():
    x = torch.randn(1, 8, 5, 5)
    t = trace(CBAM(8, 2, pool_types=("max", "lse")), x)
    assert t.avg_pool is None and t.mlp_hidden_avg is None and t.max_pool is not None
    assert set(t.extra_pools) == {"lse"}
    torch.testing.assert_close(t.extra_pools["lse"]["pool"], torch.logsumexp(x.flatten(2), 2))
    torch.testing.assert_close(t.channel_logits, t.mlp_max + t.extra_pools["lse"]["mlp"])
    arrays = t.arrays()
    assert "lse_pool" in arrays and "avg_pool" not in arrays and arrays["out"].shape == (1, 8, 5, 5)


def test_trace_of_lone_submodules():
    x = torch.randn(2, 8, 5, 5)
    ca, sa = ChannelAttention(8, 2), SpatialAttention(3)
    tc, ts = trace(ca, x), trace(sa, x)
    assert torch.equal(tc.out, ca(x)) and tc.spatial_mask is None
    assert torch.equal(ts.out, sa(x)) and ts.channel_weights is None and ts.spatial_mask.shape == (2, 1, 5, 5)


def test_trace_leaves_the_block_untouched_and_keeps_gradients():
    m = CBAM.authors(16, 4).train()
    before = module_fingerprint(m)
    x = torch.randn(2, 16, 5, 5, requires_grad=True)
    t = trace(m, x)
    t.out.sum().backward()
    assert x.grad is not None
    after = module_fingerprint(m)
    # BatchNorm in training mode updates its running statistics on every forward, traced or not
    before[1].pop("spatial_attention.bn.running_mean"), before[1].pop("spatial_attention.bn.running_var")
    before[1].pop("spatial_attention.bn.num_batches_tracked")
    for k in ("spatial_attention.bn.running_mean", "spatial_attention.bn.running_var", "spatial_attention.bn.num_batches_tracked"):
        after[1].pop(k)
    assert_same_model(before, after)
    assert "_record" not in m.__dict__ and "_record" not in m.channel_attention.__dict__


def test_trace_cleans_up_after_an_exception():
    m = CBAM(8, 2)
    with pytest.raises(RuntimeError):
        trace(m, torch.randn(1, 7, 4, 4))  # wrong channel count
    assert all("_record" not in mod.__dict__ for mod in m.modules())
    trace(m, torch.randn(1, 8, 4, 4))  # and it can be traced again


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_is_a_value_error(bad):
    x = torch.randn(1, 8, 4, 4)
    x[0, 3, 1, 2] = bad
    with pytest.raises(ValueError, match="non-finite"):
        trace(CBAM(8, 2), x)
    with pytest.raises(ValueError, match="non-finite"):
        trace_all(cbam_smallnet(4), torch.full((1, 3, 32, 32), bad))


def test_trace_rejects_wrong_inputs():
    with pytest.raises(ValueError, match="shape"):
        trace(CBAM(8, 2), torch.randn(8, 4, 4))
    with pytest.raises(TypeError):
        trace(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 4, 4))


def test_trace_all_on_a_resnet():
    torch.manual_seed(0)
    model = cbam_resnet18(num_classes=10).eval()
    before = module_fingerprint(model)
    x = torch.randn(1, 3, 64, 64)
    out, traces = trace_all(model, x)
    assert_same_model(before, module_fingerprint(model))
    assert torch.equal(out, model(x))
    assert list(traces) == [name for name, _ in cbam_blocks(model)]
    assert len(traces) == 8 and list(traces)[0] == "layer1.0.cbam"
    assert all(isinstance(t, CBAMTrace) for t in traces.values())
    # each block's trace is that block's own forward pass on the features it received
    block = model.get_submodule("layer3.1.cbam")
    t = traces["layer3.1.cbam"]
    assert t.x.shape == (1, 256, 4, 4)
    assert torch.equal(trace(block, t.x).out, t.out)


def test_trace_all_skips_blocks_that_did_not_run_and_models_without_cbam():
    class TwoPaths(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.unused = CBAM(4, 2), CBAM(4, 2)

        def forward(self, x):
            return self.used(x)

    _, traces = trace_all(TwoPaths(), torch.randn(1, 4, 3, 3))
    assert list(traces) == ["used"]
    out, traces = trace_all(nn.Conv2d(3, 3, 1), torch.randn(1, 3, 4, 4))
    assert traces == {} and out.shape == (1, 3, 4, 4)


def test_trace_all_leaves_no_state_even_when_the_model_fails():
    model = cbam_smallnet(4)
    snapshot = copy.deepcopy(model.state_dict())
    with pytest.raises(RuntimeError):
        trace_all(model, torch.randn(1, 5, 32, 32))
    assert all("_record" not in m.__dict__ for m in model.modules())
    assert all(torch.equal(snapshot[k], v) for k, v in model.state_dict().items())


def test_one_shared_block_traced_from_many_threads_at_once():
    """The app's sessions share one cached model; each thread must get its own, correct trace."""
    import threading

    torch.manual_seed(0)
    model = cbam_smallnet(4).eval()
    inputs = [torch.randn(1, 3, 64, 64) for _ in range(6)]
    expected = [trace_all(model, x)[1]["stages.2.cbam"].out for x in inputs]
    results, errors = {}, []
    barrier = threading.Barrier(len(inputs))

    def work(i):
        try:
            barrier.wait()
            for _ in range(5):
                results[i] = trace_all(model, inputs[i])[1]["stages.2.cbam"].out
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, out in enumerate(expected):
        assert torch.equal(results[i], out)


def test_tracing_a_block_inside_its_own_trace_is_refused():
    block = CBAM(8, 2)
    x = torch.randn(1, 8, 4, 4)

    class Reentrant(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = block

        def forward(self, t):
            trace(block, t)  # tracing the block again while trace_all traces it
            return self.block(t)

    with pytest.raises(RuntimeError, match="already being traced"):
        trace_all(Reentrant(), x)
    assert trace(block, x).out.shape == x.shape  # and nothing is left behind
