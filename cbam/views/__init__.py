"""Views: pure functions from a trace (or a run) to what the app shows, drawn by the browser.

    >>> from cbam import CBAM, trace, views
    >>> t = trace(CBAM(64), torch.randn(1, 64, 16, 16))
    >>> chart = views.channel.channel_weights(t)     # a Vega-Lite spec, its numbers, and its PNG
    >>> chart.vega_lite()["datasets"]["main"][0]     # {'series': 0, 'i': 0, 'label': 12, ...}
    >>> chart.png.draw()                             # the matplotlib figure of the same numbers

``channel``, ``spatial`` and ``network`` hold the views of each page, ``steps`` the guided walk; ``overlay`` colours maps over
the photo with NumPy; ``base`` defines ``Chart``, ``Picture`` and the colour scales.
"""

from . import base, channel, network, overlay, spatial, steps
from .base import Chart, Picture, Scale, ViewError

__all__ = ["Chart", "Picture", "Scale", "ViewError", "base", "channel", "network", "overlay", "spatial", "steps"]
