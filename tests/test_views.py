"""The views (cbam.views): charts and pictures from traces, without Streamlit.

Each chart's numbers are the trace's numbers, and the PNG figure of the same view is handed the same
numbers; charts are never handed NaN, infinity or an empty map; overlays keep the photo's shape."""

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from cbam import CBAM, explore, report, trace, views, zoo
from cbam.views import channel, network, overlay, spatial
from cbam.views.base import HOVER, MAX_CELLS, Chart, Scale, ViewError, colorize, fit_cells, unpack


def traced(channels=16, size=12, seed=0, **options):
    torch.manual_seed(seed)
    block = CBAM(channels, reduction_ratio=4, kernel_size=3, **options).eval()
    with torch.no_grad():
        return block, trace(block, torch.randn(1, channels, size, size))


def grid(chart: Chart, panel: int) -> np.ndarray:
    """Panel ``panel`` of a heatmap chart as a 2D array (rows y, columns x)."""
    return chart.panel(panel)


def series(chart: Chart, index: int = 0) -> np.ndarray:
    table = chart.table()
    return table["v"][table["series"] == index]


def test_every_chart_is_valid_json_vega_lite_with_its_rows():
    block, t = traced()
    n = explore.spatial_computation(block, t, 2, 3)
    charts = [channel.feature_grid(t), channel.descriptors(t), channel.mlp_hidden(t), channel.mlp_outputs(t),
              channel.channel_weights(t), channel.before_after(t, [0, 5]), spatial.pools(t), spatial.kernel(block),
              spatial.conv_output(t), spatial.mask(t), spatial.position_inputs(n), spatial.position_products(n),
              network.step_changes(t), network.channel_energy(t)]
    for chart in charts:
        spec = json.loads(json.dumps(chart.vega_lite()))
        rows = spec["datasets"]["main"]
        assert rows and set(chart.table()) <= set(rows[0]), chart.spec.get("title")
        assert len(rows) == len(next(iter(chart.table().values())))
        assert spec["data"] == {"name": "main"}


def test_the_feature_grid_shows_the_most_and_least_attended_channels_with_the_pngs_numbers():
    _, t = traced(channels=16)
    chart = channel.feature_grid(t, n=4)
    most, least = explore.ranked_channels(t.channel_weights[0], 4)
    png = chart.png
    assert png.args[1] == most + least
    for panel, c in enumerate(most + least):
        np.testing.assert_allclose(grid(chart, panel), t.x[0, c].numpy(), rtol=1e-6)
        np.testing.assert_allclose(png.args[0][c], t.x[0, c].numpy(), rtol=1e-6)


def test_large_maps_are_shown_as_block_means_within_the_cell_budget():
    _, t = traced(channels=16, size=80)
    chart = channel.feature_grid(t, n=4)
    assert sum(grid(chart, panel).size for panel in range(8)) <= MAX_CELLS
    most, _ = explore.ranked_channels(t.channel_weights[0], 4)
    step = int(np.diff(chart.spec["spec"]["layer"][-1]["encoding"]["x"]["scale"]["domain"])[0])
    assert step > 1 and "block means" in json.dumps(chart.spec)
    pooled = torch.nn.functional.avg_pool2d(t.x[0, most[0]][None, None], step, ceil_mode=True)[0, 0]
    np.testing.assert_allclose(grid(chart, 0), pooled.numpy(), rtol=1e-5)


def test_descriptors_and_mlp_charts_hold_the_traced_vectors_as_the_png_does():
    _, t = traced()
    d = channel.descriptors(t)
    np.testing.assert_allclose(series(d, 0), t.avg_pool[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(series(d, 1), t.max_pool[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(d.png.args[0], t.avg_pool[0].numpy())
    hidden, outputs = channel.mlp_hidden(t), channel.mlp_outputs(t)
    np.testing.assert_allclose(series(hidden, 1), t.mlp_hidden_max[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(series(outputs, 0), t.mlp_avg[0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(outputs.png.args[2], t.mlp_avg[0].numpy())


def test_sorted_channel_weights_carry_each_bars_channel_and_logit():
    _, t = traced(channels=32)
    chart = channel.channel_weights(t, sort=True)
    table = chart.table()
    weights = t.channel_weights[0].numpy()
    assert np.all(np.diff(table["v"]) <= 0)  # highest first
    np.testing.assert_allclose(table["v"], weights[table["label"]], rtol=1e-6)
    np.testing.assert_allclose(table["logit"], t.channel_logits[0].numpy()[table["label"]], rtol=1e-6)
    assert chart.select == "channel" and chart.png.kwargs["sort"] is True
    unsorted = channel.channel_weights(t, sort=False).table()
    np.testing.assert_array_equal(unsorted["label"], np.arange(32))


def test_before_after_pairs_f_and_f_prime_of_each_chosen_channel():
    _, t = traced()
    chart = channel.before_after(t, [3, 7])
    for panel, (c, field) in enumerate([(3, "x"), (3, "x_channel"), (7, "x"), (7, "x_channel")]):
        np.testing.assert_allclose(grid(chart, panel), getattr(t, field)[0, c].numpy(), rtol=1e-6)
    assert chart.png.args[2] == [3, 7]


def test_spatial_charts_show_the_pooled_maps_the_kernel_and_the_mask():
    block, t = traced()
    np.testing.assert_allclose(grid(spatial.pools(t), 1), t.spatial_max[0, 0].numpy(), rtol=1e-6)
    kernel = spatial.kernel(block)
    np.testing.assert_allclose(grid(kernel, 0), block.spatial_attention.conv.weight[0, 0].detach().numpy(), rtol=1e-6)
    assert sorted(np.unique(kernel.table()["x"])) == [-1, 0, 1]  # offsets from the centre
    mask = spatial.mask(t)
    np.testing.assert_allclose(grid(mask, 0), t.spatial_mask[0, 0].numpy(), rtol=1e-6)
    assert mask.select == "position" and mask.spec["layer"][-1]["params"][0]["select"]["fields"] == ["x", "y"]
    assert [mask.table()["lo"][0], mask.table()["hi"][0]] == [0.0, 1.0]  # bounded: a fixed scale
    logits = spatial.conv_output(t)
    limit = float(t.spatial_logits.abs().max())
    np.testing.assert_allclose(grid(logits, 0), t.spatial_logits[0, 0].numpy(), rtol=1e-6)
    # the colour range rides in the data, signed: symmetric about 0
    assert [logits.table()["lo"][0], logits.table()["hi"][0]] == pytest.approx([-limit, limit])
    assert "domain" not in json.dumps(logits.spec["layer"][0]["encoding"]["color"])


@pytest.mark.parametrize("options", [{}, {"spatial_pool_order": "max-avg", "spatial_batch_norm": True}])
def test_the_convolution_at_one_position_adds_up_to_the_traced_logit(options):
    torch.manual_seed(1)
    block = CBAM(8, reduction_ratio=2, kernel_size=5, **options).eval()
    if block.spatial_attention.bn is not None:
        block.spatial_attention.bn.running_mean.fill_(0.3)
        block.spatial_attention.bn.running_var.fill_(2.0)
    with torch.no_grad():
        t = trace(block, torch.randn(1, 8, 7, 9))
    for row, col in [(0, 0), (3, 4), (6, 8)]:  # corners read the zero padding
        n = explore.spatial_computation(block, t, row, col)
        assert n["check"] < 1e-5
        assert n["mask"] == pytest.approx(float(torch.sigmoid(torch.tensor(n["logit"]))), abs=1e-6)
        assert n["inputs"].shape == n["kernel"].shape == (2, 5, 5)
    corner = explore.spatial_computation(block, t, 0, 0)
    assert np.all(corner["inputs"][:, :2, :] == 0)  # two rows above the map: padding
    with pytest.raises(ValueError, match="outside"):
        explore.spatial_computation(block, t, 7, 0)


def test_a_block_with_non_finite_numbers_gives_a_view_error_not_a_chart():
    block, _ = traced()
    with torch.no_grad():
        block.channel_attention.fc1.weight[0, 0] = float("nan")
        t = trace(block, torch.randn(1, 16, 12, 12))
    for view in (channel.channel_weights, spatial.mask, channel.feature_grid, network.step_changes):
        with pytest.raises(ViewError, match="non-finite"):
            view(t)
    channel.descriptors(t)  # the descriptors come before the NaN weight: they are fine


def test_one_by_one_feature_maps_are_drawn():
    block, t = traced(size=1)
    for chart in (channel.feature_grid(t), spatial.mask(t), spatial.pools(t)):
        assert grid(chart, 0).shape == (1, 1)
    assert len(network.step_changes(t).table()["v"]) >= 1
    photo = np.zeros((30, 50, 3), np.uint8)
    picture = spatial.mask_on_photo(photo, t, block)
    assert picture.rgb.shape == (30, 50, 3)


def test_fit_cells_keeps_small_maps_and_pools_large_ones():
    small = [np.ones((10, 10), np.float32)] * 3
    assert fit_cells(small, budget=300)[1] == 1
    pooled, step = fit_cells([np.arange(64 * 64, dtype=np.float32).reshape(64, 64)], budget=1024)
    assert step == 2 and pooled[0].shape == (32, 32)


def test_colours_follow_the_scale_and_overlays_keep_the_photos_shape():
    scale = Scale.unit()
    rgb = overlay.colorize(np.array([0.0, 1.0, 2.0, -1.0]), scale)
    assert rgb.shape == (4, 3) and np.array_equal(rgb[1], rgb[2]) and np.array_equal(rgb[0], rgb[3])  # clipped
    photo = overlay.display_photo(Image.new("RGB", (1200, 600), (200, 10, 10)))
    assert photo.shape == (256, 512, 3)  # long side 512, aspect kept
    mask = np.zeros((4, 4), np.float32)
    mask[0, 0] = 1.0
    out = overlay.on_photo(photo, mask, scale, alpha=1.0)
    top, left, side = overlay.crop_box(256, 512)
    assert (top, left, side) == (0, 128, 256)
    # inside the square: the mask's colours; outside: the photo, dimmed
    assert np.array_equal(out[5, left + 5], overlay.colorize(np.array([1.0]), scale)[0])
    assert out[5, 5, 0] < 200 and out[5, 5, 0] > 0


def test_the_window_is_drawn_around_the_chosen_position():
    photo = np.zeros((96, 96, 3), np.uint8)
    marked = overlay.mark_window(photo, (12, 12), 6, 6, 3)
    ys, xs = np.nonzero(np.all(marked == overlay.WINDOW_RGB, axis=-1))
    assert ys.min() >= 40 - 1 and ys.max() <= 71 + 1 and xs.min() >= 40 - 1 and xs.max() <= 71 + 1


def test_layer_masks_and_grad_cam_are_pictures_at_the_photos_shape():
    photo = np.full((120, 200, 3), 128, np.uint8)
    masks = {"a": torch.rand(6, 6), "b": torch.rand(3, 3)}
    pictures = network.layer_masks(photo, masks)
    assert [p.rgb.shape for p in pictures] == [(120, 200, 3)] * 2 and "3×3" in pictures[1].caption
    heat = network.grad_cam(photo, torch.rand(4, 4) * 5)
    assert heat.numbers["relevance"].min() == 0 and heat.numbers["relevance"].max() == 1


def test_network_charts_follow_the_run():
    weights = {"b0": torch.rand(16), "b1": torch.rand(32)}
    chart = network.channel_heatmap(weights)
    table = chart.table()
    np.testing.assert_allclose(unpack(table["cells"][1], (1, 32))[0], weights["b1"].numpy(), rtol=1e-6)
    assert list(table["c"]) == [16, 32] and list(table["name"]) == ["b0 (C=16)", "b1 (C=32)"]
    png = Image.open(io.BytesIO(base64.b64decode(table["url"][1].split(",", 1)[1])))  # one pixel a channel
    np.testing.assert_array_equal(np.asarray(png.convert("RGB")), colorize(weights["b1"].numpy()[None, :], Scale.unit()))
    assert chart.spec["layer"][2]["transform"][0] == {"filter": {"param": HOVER, "empty": False}}
    outputs = {"paper": torch.randn(4, 5, 5), "blog": torch.randn(4, 5, 5)}
    compared = network.compare_outputs(outputs, title="t")
    np.testing.assert_allclose(grid(compared, 1), outputs["blog"].mean(0).numpy(), rtol=1e-5)
    rows = network.output_differences(outputs)
    assert rows[0]["paper"] == 0 and rows[0]["blog"] == pytest.approx(float((outputs["paper"] - outputs["blog"]).abs().max()))
    history = [{"epoch": 1, "loss": 1.2, "accuracy": 0.4}, {"epoch": 2, "loss": 0.8, "accuracy": 0.7}]
    curves = network.training_curves(history).table()
    assert list(curves["v"]) == [1.2, 0.8, 0.4, 0.7]


def test_the_pngs_of_the_views_draw(tmp_path):
    block, t = traced()
    photo = np.full((60, 90, 3), 90, np.uint8)
    figures = [channel.channel_weights(t).png, spatial.kernel(block).png, network.step_changes(t).png,
               spatial.mask_on_photo(photo, t, block, position=(1, 2)).png]
    for figure in figures:
        from cbam import plots

        assert plots.figure_to_png(figure.draw())[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_views_match_what_inspect_writes(tmp_path):
    """``python -m cbam inspect`` and the app describe the step-by-step figures once (cbam.report)."""
    _, t = traced()
    assert set(report.channel_plots(t)) >= {"most_and_least", "channel_weights"}
    assert views.Chart is Chart


def test_every_step_of_the_guided_walk_has_its_views_and_live_numbers():
    from cbam.views import steps

    block, t = traced(channels=16)
    photo = np.full((40, 60, 3), 100, np.uint8)
    assert steps.available(block) == list(range(10))
    for index in range(10):
        views_ = steps.step_views(index, t, block, photo)
        assert views_ and all(isinstance(v, (Chart, views.Picture)) for v in views_)
        text = steps.numbers(index, t, block)
        assert "**" in text  # at least one live number, in bold
    most = int(t.channel_weights[0].argmax())
    n = explore.channel_computation(block, t, most)
    assert f"{n['channel_weight']:.4f}" in steps.numbers(3, t, block)  # Eq. 2's numbers of the most attended channel
    row, col = spatial.mask_peak(t)
    assert f"{float(t.spatial_mask[0, 0, row, col]):.4f}" in steps.numbers(8, t, block)
    assert steps.available(CBAM(16, 4, spatial=False)) == list(range(6))  # channel attention only


def test_the_diagram_lights_the_current_step_and_lets_each_box_be_clicked():
    from cbam.views import steps

    chart = steps.diagram(4)
    table = chart.table()
    assert len(table["step"]) == 10 and list(table["current"]).index(1) == 4
    assert chart.select == "step" and chart.spec["layer"][0]["params"][0]["select"]["fields"] == ["step"]


def test_a_charts_spec_does_not_change_with_its_data_so_the_browser_only_swaps_the_data():
    """Streamlit redraws a chart from scratch when its spec changes, and only replaces its data when the
    spec is the same: two traces of one block shape must give the same specs."""
    block, t1 = traced(channels=16, seed=1)
    _, t2 = traced(channels=16, seed=2)
    for view in (channel.feature_grid, channel.descriptors, channel.mlp_outputs, channel.channel_weights,
                 spatial.pools, spatial.conv_output, spatial.mask, network.step_changes, network.channel_energy,
                 lambda t: channel.before_after(t, [1, 2])):
        a, b = view(t1), view(t2)
        assert json.dumps(a.spec, sort_keys=True) == json.dumps(b.spec, sort_keys=True), view
        assert not all(np.array_equal(a.table()[k], b.table()[k]) for k in a.table())


def test_the_hidden_layers_spec_does_not_change_with_r_so_a_new_r_only_swaps_its_data():
    x = torch.randn(1, 16, 12, 12)
    specs, widths = [], []
    for r in (2, 4, 8):
        torch.manual_seed(0)
        with torch.no_grad():
            chart = channel.mlp_hidden(trace(CBAM(16, reduction_ratio=r, kernel_size=3).eval(), x))
        specs.append(json.dumps(chart.spec, sort_keys=True))
        widths.append(len(np.unique(chart.table()["i"])))
    assert widths == [8, 4, 2] and len(set(specs)) == 1


def test_a_map_without_numbers_or_clicks_is_one_picture_per_panel_with_its_cells_packed():
    """A mark per cell is work for the browser at every slider move: such a map is sent as one row per
    panel (its picture, its colour range and its values packed) and its cells get marks only in the
    panel under the pointer."""
    _, t = traced()
    chart = channel.feature_grid(t)
    table, most, least = chart.table(), *explore.ranked_channels(t.channel_weights[0], 4)
    assert list(table["panel"]) == list(range(8)) and "x" not in table and "v" not in table
    scale = Scale.data(*(t.x[0, c].numpy() for c in most + least))
    for panel, c in enumerate(most + least):
        values = t.x[0, c].numpy()
        np.testing.assert_allclose(unpack(table["cells"][panel], values.shape), values, rtol=1e-6)
        png = Image.open(io.BytesIO(base64.b64decode(table["url"][panel].split(",", 1)[1])))
        np.testing.assert_array_equal(np.asarray(png.convert("RGB")), colorize(values, scale))  # one pixel a cell
    assert (table["lo"] == scale.low).all() and (table["hi"] == scale.high).all()  # the legend's range
    legend, image, cells = chart.spec["spec"]["layer"]
    assert image["mark"]["type"] == "image" and image["mark"]["smooth"] is False
    assert cells["transform"][0] == {"filter": {"param": HOVER, "empty": False}}  # marks under the pointer only
    assert [f["field"] for f in cells["encoding"]["tooltip"]] == ["label", "x", "y", "v"]


def test_a_kernel_too_large_for_numbers_is_a_picture_still_labelled_by_offsets_from_the_centre():
    torch.manual_seed(0)
    block = CBAM(8, reduction_ratio=2, kernel_size=9).eval()
    kernel = spatial.kernel(block)
    assert "cells" in kernel.table()  # k = 9: no numbers in the cells, so drawn as a picture
    encoding = kernel.spec["spec"]["layer"][-1]["encoding"]
    assert encoding["x"]["scale"]["domain"] == encoding["y"]["scale"]["domain"] == list(range(-4, 5))
    positions = [t["calculate"] for t in kernel.spec["spec"]["layer"][-1]["transform"] if t.get("as") in ("x", "y")]
    assert all(p.endswith("- 4") for p in positions), positions  # the tooltip's x, y: offsets too
    np.testing.assert_allclose(grid(kernel, 0), block.spatial_attention.conv.weight[0, 0].detach().numpy(), rtol=1e-6)


def test_each_panel_of_the_pooled_maps_has_its_own_colour_range():
    _, t = traced()
    pools = spatial.pools(t)
    for panel, field in enumerate(["spatial_avg", "spatial_max"]):
        values = getattr(t, field)[0, 0].numpy()
        assert [pools.table()["lo"][panel], pools.table()["hi"][panel]] == pytest.approx([values.min(), values.max()])
    assert pools.spec["resolve"]["scale"]["color"] == "independent"


def test_maps_with_numbers_keep_a_mark_per_cell_and_a_signed_range_rides_in_two_hidden_cells():
    block, t = traced()
    kernel = spatial.kernel(block)
    assert "dark" in kernel.table()  # numbers in the cells: white on dark ones
    assert int(kernel.table()["ph"].sum()) == 2 and "opacity" in kernel.spec["spec"]["layer"][0]["encoding"]


def test_a_number_written_on_a_cell_or_bar_has_the_same_tooltip_as_its_cell_or_bar():
    """The numbers are drawn on top: hovering one must show the cell's map, position and value (it
    showed the text layer's raw fields, "v 0.00")."""
    block, t = traced()
    kernel = spatial.kernel(block).spec["spec"]["layer"]
    assert kernel[1]["encoding"]["tooltip"] == kernel[0]["encoding"]["tooltip"]
    assert [f["field"] for f in kernel[0]["encoding"]["tooltip"]] == ["label", "x", "y", "v"]
    changes = network.step_changes(t).spec["layer"]
    assert changes[1]["encoding"]["tooltip"] == changes[0]["encoding"]["tooltip"]
    assert [f["field"] for f in spatial.mask(t).spec["layer"][-1]["encoding"]["tooltip"]] == ["x", "y", "v"]  # one panel: no name


def test_the_kernel_sized_charts_have_one_spec_for_every_k_so_a_new_k_only_swaps_their_data():
    specs = []
    for k in (3, 5, 7):
        torch.manual_seed(0)
        block = CBAM(16, reduction_ratio=4, kernel_size=k).eval()
        with torch.no_grad():
            t = trace(block, torch.randn(1, 16, 12, 12))
        numbers = explore.spatial_computation(block, t, 4, 5)
        charts = (spatial.kernel(block), spatial.position_inputs(numbers), spatial.position_products(numbers))
        assert [len(np.unique(c.table()["x"])) for c in charts] == [k, k, k]
        specs.append([json.dumps(c.spec, sort_keys=True) for c in charts])
    assert specs[0] == specs[1] == specs[2]


def test_heatmap_panels_are_keyed_by_their_number_and_named_from_the_data():
    """The browser builds a facet's views per key: keyed by name, a panel whose name carries a weight
    was built anew on every swap. tests/test_browser.py checks that the headers show the names."""
    _, t1 = traced(channels=16, seed=1)
    _, t2 = traced(channels=16, seed=2)
    a, b = channel.feature_grid(t1), channel.feature_grid(t2)
    assert a.spec["facet"]["field"] == "panel" and "names" in a.spec["facet"]["header"]["labelExpr"]
    assert list(a.table()["label"]) != list(b.table()["label"])
    assert json.dumps(a.spec, sort_keys=True) == json.dumps(b.spec, sort_keys=True)


def as_np(value) -> np.ndarray:
    return value.detach().float().numpy() if isinstance(value, torch.Tensor) else np.asarray(value, dtype=np.float32)


def test_each_charts_png_is_handed_the_numbers_the_chart_shows():
    """The PNG download of a view draws the same numbers as its chart (cbam.plots gets them as arguments)."""
    block, t = traced(channels=16)
    pools = spatial.pools(t)
    np.testing.assert_allclose(as_np(pools.png.args[0]), grid(pools, 0), rtol=1e-6)
    np.testing.assert_allclose(as_np(pools.png.args[1]), grid(pools, 1), rtol=1e-6)
    for chart, field in ((spatial.conv_output(t), 0), (spatial.mask(t), 1)):
        np.testing.assert_allclose(as_np(chart.png.args[field])[0], grid(chart, 0), rtol=1e-6)
    kernel = spatial.kernel(block)
    np.testing.assert_allclose(as_np(kernel.png.args[0])[0], np.stack([grid(kernel, 0), grid(kernel, 1)]), rtol=1e-6)
    changes = network.step_changes(t)
    x, xc, out = (as_np(a) for a in changes.png.args)
    expected = [np.linalg.norm(xc - x) / np.linalg.norm(x), np.linalg.norm(out - xc) / np.linalg.norm(xc),
                np.linalg.norm(out - x) / np.linalg.norm(x)]
    np.testing.assert_allclose(changes.table()["v"], np.array(expected) * 100, rtol=1e-4)
    outputs = {"a": torch.randn(4, 5, 5), "b": torch.randn(4, 5, 5)}
    compared = network.compare_outputs(outputs, title="t")
    for panel, name in enumerate(outputs):
        np.testing.assert_allclose(as_np(compared.png.args[0][name]).mean(0), grid(compared, panel), rtol=1e-5)
    weights = {"b0": torch.rand(8), "b1": torch.rand(4)}
    heat = network.channel_heatmap(weights)
    for index, name in enumerate(weights):
        cells = heat.table()["cells"][index]
        np.testing.assert_allclose(unpack(cells, (1, len(weights[name])))[0], as_np(heat.png.args[0][name]), rtol=1e-6)
    history = [{"epoch": 1, "loss": 1.0, "accuracy": 0.5}, {"epoch": 2, "loss": 0.5, "accuracy": 0.9}]
    assert network.training_curves(history).png.args[0] == history
    rows = [{"name": "reference", "axis": "reference", "value": "-", "seeds": [0], "accuracy": {"mean": 0.9, "std": 0.01}},
            {"name": "k3", "axis": "kernel", "value": "3", "seeds": [0], "accuracy": {"mean": 0.8, "std": 0.02}}]
    bars_ = network.ablation_bars(rows, "accuracy")
    assert bars_.png.args[0] == rows and sorted(bars_.table()["v"]) == pytest.approx([80.0, 90.0])


def test_the_papers_orderings_are_checked_against_the_rows_means_and_their_spread():
    def row(name, mean, std, value=None):
        return {"name": name, "axis": "x", "value": value or name, "accuracy": {"mean": mean, "std": std}}

    rows = [row("reference", 0.95, 0.02), row("baseline", 0.80, 0.01), row("pool-avg", 0.94, 0.03),
            row("pool-max", 0.96, 0.005), row("kernel-3", 0.99, 0.01)]  # no arrangement rows: their claims are left out
    found = network.paper_claims(rows)
    verdicts = [list(r.values())[-1] for r in found]
    assert verdicts == ["same order", "same order, within the seeds' spread", "the opposite order, within the seeds' spread",
                        "the opposite order"]
    assert "95.0 ± 2.0 / 80.0 ± 1.0 %" in found[0].values()
    shipped = network.paper_claims(zoo.ablation_results()["rows"])
    assert len(shipped) == 6  # every ordering of Tables 1–3, and attention against none
