"""cbam.plots: every figure is titled, labelled, has colour bars, shows the data it was given,
survives edge cases (C = 1, 1×1 maps, k = 1, C = 2048) and leaves pyplot untouched."""

import io
import math
import os
import re
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.text import Text

from cbam import CBAM, fonts, i18n, plots, trace

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_pyplot_figures():
    """The plots never go through pyplot: no figure may be left open after any test."""
    assert plt.get_fignums() == []
    yield
    assert plt.get_fignums() == []


@pytest.fixture(scope="module")
def traced():
    """A real CBAM block (C = 32, r = 4, k = 7) and the trace of one forward pass (without
    gradients, so tests can call .numpy(); the integration test traces with them)."""
    torch.manual_seed(0)
    block = CBAM(32, 4, 7)
    x = torch.randn(1, 32, 14, 14).relu()
    with torch.no_grad():
        return block, trace(block, x)


def rgb_image(height=56, width=72):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def colorbars(fig):
    """Every colour bar of the figure (matplotlib keeps a back-reference on its axes)."""
    return [ax._colorbar for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def image_axes(fig):
    """The axes that show an image (colour bar axes excluded)."""
    return [ax for ax in fig.axes if ax.images and getattr(ax, "_colorbar", None) is None]


def data_axes(fig):
    """Axes that plot something (not colour bars, not hidden ones such as a table's)."""
    return [
        ax
        for ax in fig.axes
        if getattr(ax, "_colorbar", None) is None and ax.axison and (ax.images or ax.lines or ax.patches)
    ]


def bar_heights(ax):
    return np.array([patch.get_height() for patch in ax.patches if isinstance(patch, Rectangle)])


def check_figure(fig, *, name=""):
    """The rules every figure follows: a Figure with a title, every image's colour scale shown by
    a colour bar, its axes labelled, and no visible text under 10 pt."""
    assert isinstance(fig, Figure), name
    assert fig.get_suptitle().strip(), name
    norms = [cb.mappable.norm for cb in colorbars(fig)]
    for ax in image_axes(fig):
        top_image = ax.images[-1]
        assert any(top_image.norm is norm for norm in norms), f"{name}: image {ax.get_title()!r} has no colour bar"
    axes = data_axes(fig)
    if axes:
        assert any(ax.get_xlabel() for ax in axes) or fig.get_supxlabel(), f"{name}: no x label"
        assert any(ax.get_ylabel() for ax in axes) or fig.get_supylabel(), f"{name}: no y label"
    fig.draw_without_rendering()
    for text in fig.findobj(Text):
        if text.get_visible() and text.get_text().strip():
            assert text.get_fontsize() >= 10, f"{name}: {text.get_text()!r} is {text.get_fontsize()} pt"
    check_layout(fig, name=name)


def check_layout(fig, *, name=""):
    """Nothing is cut off and nothing is drawn over a panel: every visible text lies inside the
    figure, and no panel's labels (tick labels, axis labels, title) reach into another panel's plot
    area. The figure is drawn once before (as ``check_figure`` does): a layout that moves on each
    drawing, as constrained layout does with fixed-aspect panels, is caught here too."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    drawn = []  # the texts actually drawn (an axis keeps tick labels outside its view, undrawn)
    original_draw = Text.draw

    def recording_draw(text, renderer_):
        drawn.append(text)
        return original_draw(text, renderer_)

    Text.draw = recording_draw
    try:
        fig.draw(renderer)
    finally:
        Text.draw = original_draw
    page = fig.bbox
    for text in drawn:
        if not (text.get_visible() and text.get_text().strip()):
            continue
        box = text.get_window_extent(renderer)
        inside = box.x0 >= page.x0 - 1 and box.y0 >= page.y0 - 1 and box.x1 <= page.x1 + 1 and box.y1 <= page.y1 + 1
        assert inside, f"{name}: {text.get_text()!r} is cut off at {box.extents} (figure {page.extents})"
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
    for ax in panels:
        labels = ax.get_tightbbox(renderer)
        for other in panels:
            if other is ax:
                continue
            area = other.get_window_extent(renderer)
            overlap_x = min(labels.x1, area.x1) - max(labels.x0, area.x0)
            overlap_y = min(labels.y1, area.y1) - max(labels.y0, area.y0)
            assert not (overlap_x > 2 and overlap_y > 2), (
                f"{name}: panel {ax.get_title()!r} or its labels reach into panel {other.get_title()!r}"
            )


# --------------------------------------------------------------------------------------------
# Integration: a real trace through every function
# --------------------------------------------------------------------------------------------


def every_figure(block, t):
    """Every builder of cbam.plots, drawn from the trace ``t`` of ``block``, by name."""
    image = rgb_image(112, 140)
    outputs = {"paper": t.out, "authors": t.out * 0.5, "blog": t.out + 0.1}
    history = [
        {"epoch": e, "loss": 1 / (e + 1), "accuracy": 0.5 + e / 20, "val_accuracy": 0.4 + e / 20} for e in range(5)
    ]
    return {
        "feature_grid": plots.feature_grid(t.x, [0, 5, 31], weights=t.channel_weights),
        "pooled_descriptors": plots.pooled_descriptors(t.avg_pool, t.max_pool),
        "mlp_branches": plots.mlp_branches(t.mlp_hidden_avg, t.mlp_hidden_max, t.mlp_avg, t.mlp_max),
        "channel_weights": plots.channel_weights(t.channel_logits, t.channel_weights, sort=True),
        "channel_before_after": plots.channel_before_after(t.x, t.x_channel, [1, 2], t.channel_weights),
        "spatial_pools": plots.spatial_pools(t.spatial_avg, t.spatial_max),
        "spatial_kernel": plots.spatial_kernel(block.spatial_attention.conv.weight),
        "spatial_mask": plots.spatial_mask(t.spatial_logits, t.spatial_mask),
        "mask_overlay": plots.mask_overlay(image, t.spatial_mask, kernel_size=7, feature_stride=10),
        "step_changes": plots.step_changes(t.x, t.x_channel, t.out),
        "compare_outputs": plots.compare_outputs(outputs),
        "layer_masks_grid": plots.layer_masks_grid(
            image, {"block": t.spatial_mask, "half": t.spatial_mask[..., ::2, ::2]}
        ),
        "channel_weights_heatmap": plots.channel_weights_heatmap(
            {"a": t.channel_weights, "b": t.channel_weights[:, :8]}
        ),
        "pipeline_diagram": plots.pipeline_diagram(highlight="channel"),
        "training_curves": plots.training_curves(history),
        "heat_overlay": plots.heat_overlay(image, t.spatial_logits),
    }


def figures_of_the_pages(t):
    """The builders the app's pages use beside those of ``every_figure``, by name."""
    image = rgb_image(112, 140)
    ablations = [{"name": "reference", "axis": "reference", "value": "CBAM (avg+max, k=7, channel→spatial, r=16)",
                  "accuracy": {"mean": 0.9, "std": 0.01}},
                 {"name": "kernel-3", "axis": "kernel", "value": 3, "accuracy": {"mean": 0.8, "std": 0.02}}]
    return {
        "sample_grid": plots.sample_grid([image, image], [image[..., 0] > 128] * 2),
        "masks_on_images": plots.masks_on_images([image], [t.spatial_mask]),
        "ablation_bars": plots.ablation_bars(ablations),
    }


def test_every_figure_from_a_real_trace(traced):
    block, _ = traced
    t = trace(block, torch.randn(1, 32, 14, 14).relu())  # tensors that require grad: plots detach them
    assert t.out.requires_grad
    figures = every_figure(block, t)
    for name, fig in figures.items():
        check_figure(fig, name=name)
    png = plots.figure_to_png(figures["feature_grid"], dpi=50)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def require_cjk_font():
    """Skip without a CJK font, except in CI, where scripts/test.sh installs one: there it fails."""
    if fonts.cjk_family() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("no CJK font: scripts/test.sh installs fonts-noto-cjk")
        pytest.skip("no CJK font installed (Debian: apt-get install fonts-noto-cjk)")


def missing_glyphs(fig):
    """matplotlib's "Glyph ... missing from font(s)" warnings while the figure is rendered to PNG."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=40)
    return [str(w.message) for w in caught if "missing from font" in str(w.message)]


def figure_texts(fig):
    """Every visible text of the (drawn) figure."""
    return [text.get_text() for text in fig.findobj(Text) if text.get_visible() and text.get_text().strip()]


TEST_NAMES = {"paper", "authors", "blog", "block", "half"}  # the variants and blocks this file names
CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_figure_in_chinese_has_all_its_glyphs_and_no_english_words(traced):
    from test_i18n import english_words

    require_cjk_font()
    block, t = traced
    with i18n.use("zh"):
        figures = every_figure(block, t) | figures_of_the_pages(t)
    for name, fig in figures.items():
        assert missing_glyphs(fig) == [], name
        texts = figure_texts(fig)
        assert any(CJK.search(text) for text in texts), (name, texts)
        english = {text: words for text in texts if (words := english_words(text) - TEST_NAMES)}
        assert not english, (name, english)


def test_english_figures_keep_their_words_and_fonts(traced):
    block, t = traced
    fig = plots.spatial_mask(t.spatial_logits, t.spatial_mask)
    assert fig.get_suptitle() == "Spatial attention Ms = σ(conv([AvgPool; MaxPool]))"
    assert all(text.get_fontfamily() == matplotlib.rcParams["font.family"] for text in fig.findobj(Text))


def test_a_described_figure_is_drawn_in_the_language_it_was_described_in(traced):
    _, t = traced
    with i18n.use("zh"):
        described = plots.plot(plots.spatial_mask, t.spatial_logits, t.spatial_mask)
    assert described.draw().get_suptitle() == "空间注意力 Ms = σ(卷积([AvgPool; MaxPool]))"


def test_without_a_cjk_font_a_chinese_figure_is_drawn_after_one_warning(traced, monkeypatch):
    from matplotlib import font_manager

    _, t = traced
    fonts.cjk_family.cache_clear()
    monkeypatch.setattr(fonts, "CJK_FAMILIES", ("No Such CJK Font",))
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda **_: [])
    try:
        with pytest.warns(UserWarning, match="No CJK font found") as caught, i18n.use("zh"):
            figures = [plots.spatial_mask(t.spatial_logits, t.spatial_mask) for _ in range(2)]
        assert len([w for w in caught if "No CJK font" in str(w.message)]) == 1
        assert all(CJK.search(fig.get_suptitle()) for fig in figures)
    finally:
        fonts.cjk_family.cache_clear()


def test_figure_to_png_returns_png_bytes_without_pyplot():
    fig = plots.pipeline_diagram()
    png = plots.figure_to_png(fig, dpi=40)
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG")
    assert plt.get_fignums() == []


# --------------------------------------------------------------------------------------------
# Each function shows the data it was given
# --------------------------------------------------------------------------------------------


def grid_panels(fig, width):
    """(title, map) of each panel of a feature grid, row by row: one Axes per map, ``width`` pixels
    wide, with its title above it."""
    panels = []
    for ax in image_axes(fig):
        shown = np.ma.filled(ax.images[0].get_array(), np.nan)
        assert shown.shape[1] == width
        panels.append((ax.get_title(), shown))
    return panels


def test_feature_grid_panels_titles_and_shared_colorbar(traced):
    _, t = traced
    weights = t.channel_weights[0]
    fig = plots.feature_grid(t.x, [12, 0, 3], weights=t.channel_weights, ncols=2)
    panels = grid_panels(fig, t.x.shape[-1])
    assert [title for title, _ in panels] == [f"ch {c}\nMc={weights[c]:.2f}" for c in (12, 0, 3)]
    for (_, shown), c in zip(panels, (12, 0, 3)):
        np.testing.assert_array_equal(shown, t.x[0, c].numpy())
    assert len(image_axes(fig)) == 3  # two rows: two panels, then one (the empty cell is removed)
    assert len(colorbars(fig)) == 1
    assert len({id(ax.images[0].norm) for ax in image_axes(fig)}) == 1  # one shared colour scale
    assert fig.get_supxlabel() == "x (feature-map px)"
    assert [title for title, _ in grid_panels(plots.feature_grid(t.x, [4]), t.x.shape[-1])] == ["ch 4"]


def test_feature_grid_rejects_bad_channels_and_handles_none(traced):
    _, t = traced
    with pytest.raises(ValueError, match="out of range"):
        plots.feature_grid(t.x, [32])
    with pytest.raises(ValueError, match="weights"):
        plots.feature_grid(t.x, [0], weights=np.ones(5))
    check_figure(plots.feature_grid(t.x, []))


def test_pooled_descriptors_bars_are_the_descriptors(traced):
    _, t = traced
    fig = plots.pooled_descriptors(t.avg_pool, t.max_pool)
    ax = data_axes(fig)[0]
    avg_bars, max_bars = ax.containers
    np.testing.assert_allclose([b.get_height() for b in avg_bars], t.avg_pool[0].numpy())
    np.testing.assert_allclose([b.get_height() for b in max_bars], t.max_pool[0].numpy())
    assert ax.get_xlabel() == "channel index"
    only_max = plots.pooled_descriptors(None, t.max_pool)
    assert len(data_axes(only_max)[0].containers) == 1
    check_figure(plots.pooled_descriptors(None, None))


def test_mlp_branches_skips_missing_series(traced):
    _, t = traced
    fig = plots.mlp_branches(t.mlp_hidden_avg, t.mlp_hidden_max, t.mlp_avg, t.mlp_max)
    ax_hidden, ax_out = data_axes(fig)
    np.testing.assert_allclose([b.get_height() for b in ax_hidden.containers[0]], t.mlp_hidden_avg[0].numpy())
    np.testing.assert_allclose([b.get_height() for b in ax_out.containers[1]], t.mlp_max[0].numpy())
    assert ax_out.get_xlabel() == "channel index"
    fig = plots.mlp_branches(None, t.mlp_hidden_max, None, t.mlp_max)
    assert all(len(ax.containers) == 1 for ax in data_axes(fig))
    assert [t.get_text() for t in data_axes(fig)[1].get_legend().get_texts()] == ["MLP(MaxPool F)"]
    check_figure(plots.mlp_branches(None, None, None, None))


def test_channel_weights_bars_equal_weights_and_sorting(traced):
    _, t = traced
    weights = t.channel_weights[0].numpy()
    fig = plots.channel_weights(t.channel_logits, t.channel_weights)
    ax_logits, ax_weights = fig.axes[:2]
    np.testing.assert_allclose(bar_heights(ax_weights), weights)
    np.testing.assert_allclose(bar_heights(ax_logits), t.channel_logits[0].numpy())
    assert ax_weights.get_xlabel() == "channel index"
    assert ax_weights.get_ylim()[0] == 0

    fig = plots.channel_weights(t.channel_logits, t.channel_weights, sort=True)
    ax_logits, ax_weights = fig.axes[:2]
    heights = bar_heights(ax_weights)
    assert np.all(np.diff(heights) <= 0)
    np.testing.assert_allclose(heights, np.sort(weights)[::-1])
    assert np.all(np.diff(bar_heights(ax_logits)) <= 0)  # σ is monotone: logits follow the same order
    assert "rank" in ax_weights.get_xlabel()


def test_channel_before_after_rows_share_a_scale(traced):
    _, t = traced
    fig = plots.channel_before_after(t.x, t.x_channel, [3, 7], t.channel_weights)
    axes = image_axes(fig)  # one row per channel: F and F' side by side, one scale per row
    assert len(axes) == 4 and len(colorbars(fig)) == 2
    panels = grid_panels(fig, t.x.shape[-1])
    for row, c in enumerate((3, 7)):
        (title_before, before), (title_after, after) = panels[2 * row], panels[2 * row + 1]
        np.testing.assert_array_equal(before, t.x[0, c].numpy())
        np.testing.assert_array_equal(after, t.x_channel[0, c].numpy())
        assert title_before == f"F, ch {c}" and title_after.startswith("F' = ")
        assert f"Mc = {t.channel_weights[0, c]:.2f}" in axes[2 * row].get_ylabel()
        assert axes[2 * row].images[0].norm is axes[2 * row + 1].images[0].norm
    assert [cb.mappable.norm for cb in colorbars(fig)] == [ax.images[0].norm for ax in axes[::2]]
    check_figure(fig)


def test_spatial_pools_squeezes_and_survives_constant_maps(traced):
    _, t = traced
    fig = plots.spatial_pools(t.spatial_avg, t.spatial_max)  # (1, 1, H, W) each
    ax_avg, ax_max = image_axes(fig)
    np.testing.assert_array_equal(ax_avg.images[0].get_array(), t.spatial_avg[0, 0].numpy())
    np.testing.assert_array_equal(ax_max.images[0].get_array(), t.spatial_max[0, 0].numpy())
    fig = plots.spatial_pools(np.zeros((4, 4)), np.full((1, 4, 4), 3.0))
    for cb in colorbars(fig):
        assert cb.vmin < cb.vmax
    check_figure(fig)


def test_spatial_kernel_shows_the_kernel_symmetrically(traced):
    block, _ = traced
    kernel = block.spatial_attention.conv.weight  # (1, 2, 7, 7)
    fig = plots.spatial_kernel(kernel)
    first, second = image_axes(fig)
    np.testing.assert_array_equal(first.images[0].get_array(), kernel[0, 0].detach().numpy())
    np.testing.assert_array_equal(second.images[0].get_array(), kernel[0, 1].detach().numpy())
    norm = first.images[0].norm
    assert -norm.vmin == norm.vmax == pytest.approx(kernel.abs().max().item())
    assert first.images[0].get_cmap().name == "RdBu_r"
    assert "avg" in first.get_title() and "max" in second.get_title()
    assert len(first.texts) == 49  # every cell annotated for k ≤ 7
    swapped = image_axes(plots.spatial_kernel(kernel[0], pool_order="max-avg"))
    assert "max" in swapped[0].get_title()
    assert len(image_axes(plots.spatial_kernel(torch.zeros(2, 9, 9)))[0].texts) == 0
    with pytest.raises(ValueError):
        plots.spatial_kernel(kernel, pool_order="avg")
    with pytest.raises(ValueError):
        plots.spatial_kernel(torch.zeros(3, 3, 3))


def test_spatial_mask_colour_scales(traced):
    _, t = traced
    fig = plots.spatial_mask(t.spatial_logits, t.spatial_mask)
    ax_logits, ax_mask = image_axes(fig)
    logit_norm, mask_norm = ax_logits.images[0].norm, ax_mask.images[0].norm
    assert logit_norm.vmin == -logit_norm.vmax > -math.inf
    assert (mask_norm.vmin, mask_norm.vmax) == (0, 1)
    assert ax_mask.images[0].get_cmap().name == "magma"
    np.testing.assert_array_equal(ax_mask.images[0].get_array(), t.spatial_mask[0, 0].numpy())


def test_mask_overlay_colorbar_and_receptive_field():
    image = rgb_image(40, 60)
    mask = np.full((4, 6), 0.2, dtype=np.float32)
    mask[1, 4] = 0.9
    fig = plots.mask_overlay(image, mask, kernel_size=3, feature_stride=10)
    ax = image_axes(fig)[0]
    (cbar,) = colorbars(fig)
    assert (cbar.mappable.norm.vmin, cbar.mappable.norm.vmax) == (0, 1)
    overlay = ax.images[-1]
    assert overlay.get_array().shape == (40, 60) and overlay.get_alpha() == 0.5
    (window,) = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert (window.get_width(), window.get_height()) == (30, 30)
    assert window.get_xy() == (pytest.approx((4 - 1) * 10 - 0.5), pytest.approx((1 - 1) * 10 - 0.5))
    assert any("3×3 window" in t.get_text() for t in fig.legends[0].get_texts())
    assert ax.get_xlabel() == "x (image px)"
    check_figure(fig)

    plain = plots.mask_overlay(image, mask)
    assert not plain.legends and not [p for p in image_axes(plain)[0].patches if isinstance(p, Rectangle)]


def test_heat_overlay_normalises_to_unit_range():
    heat = np.array([[2.0, 4.0], [6.0, 10.0]])
    fig = plots.heat_overlay(rgb_image(), heat)
    ax = image_axes(fig)[0]
    upsampled = np.asarray(ax.images[-1].get_array())
    assert upsampled.min() == pytest.approx(0) and upsampled.max() == pytest.approx(1)
    (cbar,) = colorbars(fig)
    assert cbar.ax.get_ylabel() == "relevance (normalised)"
    assert (cbar.mappable.norm.vmin, cbar.mappable.norm.vmax) == (0, 1)
    check_figure(plots.heat_overlay(rgb_image()[:, :, 0], np.ones((3, 3))))  # grey image, constant heat


def test_step_changes_bars_are_relative_changes(traced):
    _, t = traced
    x, xc, out = t.x[0], t.x_channel[0], t.out[0]
    fig = plots.step_changes(t.x, t.x_channel, t.out)
    ax_bars, ax_energy = data_axes(fig)
    expected = [
        100 * (xc - x).norm() / x.norm(),
        100 * (out - xc).norm() / xc.norm(),
        100 * (out - x).norm() / x.norm(),
    ]
    np.testing.assert_allclose(bar_heights(ax_bars), [float(e) for e in expected], rtol=1e-5)
    np.testing.assert_allclose(ax_energy.lines[0].get_ydata(), (x.double() ** 2).mean((1, 2)).numpy(), rtol=1e-6)
    assert ax_energy.get_xlabel() == "channel index"
    zeros = np.zeros((1, 1, 1))
    check_figure(plots.step_changes(zeros, zeros, zeros))


def test_compare_outputs_shared_scale_and_differences(traced):
    _, t = traced
    fig = plots.compare_outputs({"a": t.out, "b": t.out + 0.25, "c": t.out * 0})
    axes = image_axes(fig)
    assert [ax.get_title().split("\n")[0] for ax in axes] == ["a", "b", "c"]
    assert len({id(ax.images[0].norm) for ax in axes}) == 1
    np.testing.assert_allclose(axes[0].images[0].get_array(), t.out[0].mean(0).numpy(), rtol=1e-6)
    (table,) = [table for ax in fig.axes for table in ax.tables]
    cells = {key: cell.get_text().get_text() for key, cell in table.get_celld().items()}
    assert cells[(1, 2)] == f"{0.25:.3g}"  # row a, column b
    assert cells[(1, 1)] == "0"
    check_figure(plots.compare_outputs({"only": t.out}))
    check_figure(plots.compare_outputs({}))


def test_layer_masks_grid_titles_and_colorbar():
    masks = {"layer1.0.cbam": np.random.rand(1, 1, 8, 8), "layer4.1.cbam": np.random.rand(2, 3)}
    fig = plots.layer_masks_grid(rgb_image(40, 60), masks)
    axes = image_axes(fig)
    assert [ax.get_title() for ax in axes] == ["layer1.0.cbam\nMs 8×8", "layer4.1.cbam\nMs 2×3"]
    (cbar,) = colorbars(fig)
    assert (cbar.mappable.norm.vmin, cbar.mappable.norm.vmax) == (0, 1)
    assert all(ax.images[-1].get_array().shape == (40, 60) for ax in axes)
    check_figure(fig)


def test_channel_weights_heatmap_pads_with_nan():
    weights = {"small": np.linspace(0, 1, 4), "big": torch.full((1, 10), 0.5)}
    fig = plots.channel_weights_heatmap(weights)
    ax = image_axes(fig)[0]
    matrix = np.ma.filled(ax.images[0].get_array().astype(float), np.nan)
    assert matrix.shape == (2, 10)
    np.testing.assert_allclose(matrix[0, :4], np.linspace(0, 1, 4))
    assert np.isnan(matrix[0, 4:]).all() and not np.isnan(matrix[1]).any()
    norm = ax.images[0].norm
    assert (norm.vmin, norm.vmax) == (0, 1)
    assert ax.get_xlabel() == "channel index"
    check_figure(fig)


def test_pipeline_diagram_highlights():
    texts = " ".join(t.get_text() for t in plots.pipeline_diagram().findobj(Text))
    for step in ("AvgPool", "MaxPool", "shared\nMLP", "σ", "Mc", "⊗", "F'", "concat", "k×k conv", "Ms", "F''"):
        assert step in texts
    assert "7×7 conv" in " ".join(t.get_text() for t in plots.pipeline_diagram(kernel_size=7).findobj(Text))
    for highlight in ("channel", "spatial"):
        check_figure(plots.pipeline_diagram(highlight=highlight))
    with pytest.raises(ValueError):
        plots.pipeline_diagram(highlight="both")


def test_training_curves_plots_the_history():
    history = [
        {"epoch": 1, "loss": 2.0, "accuracy": 0.3},
        {"epoch": 2, "loss": 1.0, "accuracy": 0.6, "val_accuracy": 0.5},
    ]
    fig = plots.training_curves(history)
    ax_loss, ax_accuracy = data_axes(fig)
    np.testing.assert_allclose(ax_loss.lines[0].get_ydata(), [2.0, 1.0])
    np.testing.assert_allclose(ax_accuracy.lines[0].get_ydata(), [0.3, 0.6])
    assert np.isnan(ax_accuracy.lines[1].get_ydata()[0])  # missing val_accuracy is a gap
    assert ax_loss.get_xlabel() == "epoch"
    check_figure(fig)
    check_figure(plots.training_curves([]))


# --------------------------------------------------------------------------------------------
# Edge cases: one channel, one hidden unit, 1×1 maps, k = 1, thousands of channels
# --------------------------------------------------------------------------------------------


def test_smallest_block_everywhere():
    torch.manual_seed(0)
    block = CBAM(1, 16, 1)  # C = 1, hidden width 1, k = 1
    t = trace(block, torch.randn(1, 1, 1, 1))
    image = rgb_image(20, 30)
    figures = [
        plots.feature_grid(t.x, [0], weights=t.channel_weights),
        plots.pooled_descriptors(t.avg_pool, t.max_pool),
        plots.mlp_branches(t.mlp_hidden_avg, t.mlp_hidden_max, t.mlp_avg, t.mlp_max),
        plots.channel_weights(t.channel_logits, t.channel_weights, sort=True),
        plots.channel_before_after(t.x, t.x_channel, [0], t.channel_weights),
        plots.spatial_pools(t.spatial_avg, t.spatial_max),
        plots.spatial_kernel(block.spatial_attention.conv.weight),
        plots.spatial_mask(t.spatial_logits, t.spatial_mask),
        plots.mask_overlay(image, t.spatial_mask, kernel_size=1, feature_stride=30),
        plots.step_changes(t.x, t.x_channel, t.out),
        plots.compare_outputs({"one": t.out, "two": t.out}),
        plots.layer_masks_grid(image, {"one": t.spatial_mask}),
        plots.channel_weights_heatmap({"one": t.channel_weights}),
    ]
    for fig in figures:
        check_figure(fig)
    assert image_axes(figures[6])[0].images[0].get_array().shape == (1, 1)


def test_constant_maps_get_a_nonzero_colour_range():
    constant = np.full((3, 5, 5), 2.0)
    for fig in (
        plots.feature_grid(constant, [0, 1]),
        plots.channel_before_after(constant, constant, [0]),
        plots.spatial_mask(np.zeros((5, 5)), np.full((5, 5), 0.5)),
        plots.spatial_kernel(np.zeros((2, 3, 3))),
        plots.compare_outputs({"a": np.zeros((3, 5, 5))}),
    ):
        for cb in colorbars(fig):
            assert cb.vmin < cb.vmax
        png = plots.figure_to_png(fig, dpi=30)
        assert png.startswith(b"\x89PNG")


@pytest.mark.parametrize("channels", [128, 2048])
def test_many_channels_become_lines(channels):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=channels).astype(np.float32)
    weights = 1 / (1 + np.exp(-logits))
    fig = plots.channel_weights(logits, weights)
    ax_weights = fig.axes[1]
    assert len(bar_heights(ax_weights)) == 0  # no bars: a line instead
    line = ax_weights.lines[0]
    if channels <= plots.STEP_LIMIT:
        np.testing.assert_allclose(line.get_ydata(), weights)
    else:  # binned: the line is each bin's mean
        bin_size = math.ceil(channels / plots.BINS)
        np.testing.assert_allclose(line.get_ydata(), weights.reshape(-1, bin_size).mean(1), rtol=1e-6)
    sorted_fig = plots.channel_weights(logits, weights, sort=True)
    assert np.all(np.diff(sorted_fig.axes[1].lines[0].get_ydata()) <= 1e-12)
    hidden = rng.random(channels // 16)
    check_figure(plots.mlp_branches(hidden, hidden, logits, logits))
    check_figure(plots.pooled_descriptors(weights, weights))
    check_figure(plots.channel_weights_heatmap({"wide": weights, "narrow": weights[:64]}))
    check_figure(
        plots.step_changes(rng.random((channels, 2, 2)), rng.random((channels, 2, 2)), rng.random((channels, 2, 2)))
    )


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        plots.feature_grid(np.zeros((4, 4)), [0])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        plots.spatial_mask(np.zeros((2, 4, 4)), np.zeros((4, 4)))
    with pytest.raises(ValueError, match="same length"):
        plots.channel_weights(np.zeros(3), np.zeros(4))


@pytest.mark.parametrize("scale", [1e-4, 1.0, -2.5e4])
@pytest.mark.parametrize("shape", [(7, 7), (56, 56), (112, 28), (14, 96)])
def test_map_figures_keep_their_labels_inside_and_apart(scale, shape):
    """The figures of the step-by-step views, with wide tick labels (−25000, 0.0001) and tall, wide
    and tiny maps: no text leaves the figure, no labels run into another panel."""
    rng = np.random.default_rng(1)
    H, W = shape
    C = 24
    x = torch.from_numpy(rng.standard_normal((C, H, W)).astype(np.float32) * scale)
    weights = torch.sigmoid(torch.from_numpy(rng.standard_normal(C).astype(np.float32)))
    hidden = torch.from_numpy(rng.random(6).astype(np.float32) * abs(scale))
    logits = torch.from_numpy(rng.standard_normal(C).astype(np.float32) * scale)
    figures = {
        "feature_grid": plots.feature_grid(x, list(range(16)), weights=weights),
        "pooled_descriptors": plots.pooled_descriptors(x.mean((1, 2)), x.amax((1, 2))),
        "mlp_branches": plots.mlp_branches(hidden, hidden * 2, logits, -logits),
        "channel_weights": plots.channel_weights(logits, weights, sort=True),
        "channel_before_after": plots.channel_before_after(x, x * weights[:, None, None], [0, 3], weights),
        "spatial_pools": plots.spatial_pools(x.mean(0), x.amax(0)),
        "spatial_kernel": plots.spatial_kernel(torch.from_numpy(rng.standard_normal((2, 7, 7)).astype(np.float32) * scale)),
        "spatial_mask": plots.spatial_mask(x[0], torch.sigmoid(x[0])),
        "mask_overlay": plots.mask_overlay(rgb_image(H * 4, W * 4), torch.sigmoid(x[0]), kernel_size=7, feature_stride=4),
        "heat_overlay": plots.heat_overlay(rgb_image(H * 4, W * 4), x[1]),
    }
    for name, fig in figures.items():
        check_figure(fig, name=f"{name} {shape} ×{scale}")
