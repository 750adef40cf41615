"""CBAM Lab's library: the Convolutional Block Attention Module, its trace, and networks that use it.

    >>> import torch
    >>> from cbam import CBAM, trace
    >>> block = CBAM(64)                     # C = 64, r = 16, k = 7: the paper's defaults
    >>> t = trace(block, torch.randn(1, 64, 32, 32))
    >>> t.channel_weights.shape, t.spatial_mask.shape
    (torch.Size([1, 64]), torch.Size([1, 1, 32, 32]))

This package never imports streamlit: it works in a notebook, a script or the CLI alike.
"""

from .adopt import AdoptError, AdoptWarning, adopt
from .modules import ARRANGEMENTS, CBAM, CHANNEL_POOLS, ChannelAttention, SpatialAttention, hidden_width
from .trace import CBAMTrace, cbam_blocks, trace, trace_all

__all__ = [
    "ARRANGEMENTS",
    "AdoptError",
    "AdoptWarning",
    "CBAM",
    "CHANNEL_POOLS",
    "CBAMTrace",
    "ChannelAttention",
    "SpatialAttention",
    "adopt",
    "cbam_blocks",
    "hidden_width",
    "trace",
    "trace_all",
]

__version__ = "0.1.0"
