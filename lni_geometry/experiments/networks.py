"""Small networks for the training experiments (need torch).

The seed paper's momentum-tracing mechanism needs a normalisation layer, a
ReLU behind it, and a path by which the gradient can come back to a unit whose
ReLU is dead (a skip connection).  Three networks of that kind, small enough
for 2 CPU cores:

- ``"cnn_bn"``: a residual CNN, BatchNorm + ReLU, one skip connection;
- ``"cnn_ln"``: the same with a per-sample LayerNorm over (channels, height,
  width) (``GroupNorm(1, C)``: per-channel affine weight and bias, like
  BatchNorm's) in place of BatchNorm: the control;
- ``"mlp_bn"``: a BatchNorm + ReLU multilayer perceptron.
"""

from __future__ import annotations

__all__ = ["NETWORKS", "build_network", "norm_bias_names"]

#: Networks known to :func:`build_network`.
NETWORKS = ("cnn_bn", "cnn_ln", "mlp_bn")


def _norm(kind, channels):
    import torch.nn as nn

    if kind == "bn":
        return nn.BatchNorm2d(channels)
    return nn.GroupNorm(1, channels)


def build_network(name, width=16, classes=10, in_shape=(1, 8, 8)):
    """Build a network (a ``torch.nn.Module``) by name.

    Parameters
    ----------
    name : {"cnn_bn", "cnn_ln", "mlp_bn"}
    width : int
        Channels of the first stage (the second has ``2 * width``), or hidden
        units of the MLP.  ``width=16`` on 8x8 inputs: 9,850 parameters
        (``cnn_bn``), of which 80 are BatchNorm biases.
    classes : int
    in_shape : tuple of int
        ``(channels, height, width)`` of an input image.

    Returns
    -------
    torch.nn.Module
        Initialised from torch's global generator: seed it first
        (``torch.manual_seed``) for a reproducible network.

    Notes
    -----
    ``cnn_*``: ``conv3x3(C) -> N -> ReLU -> [conv3x3(C) -> N -> ReLU ->
    conv3x3(C) -> N] + skip -> ReLU -> conv3x3(2C, stride 2) -> N -> ReLU ->
    global average pool -> linear``, ``N`` the normalisation.  ``mlp_bn``:
    ``linear(H) -> BN -> ReLU -> linear(H) -> BN -> ReLU -> linear``.
    Convolutions and hidden linear layers have no bias (the normalisation
    layer's bias plays its role).
    """
    import torch.nn as nn

    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; networks are {NETWORKS}")
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    width = int(width)
    cin = in_shape[0]
    if name == "mlp_bn":
        flat = 1
        for s in in_shape:
            flat *= s
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, width, bias=False), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Linear(width, classes),
        )
    kind = "bn" if name == "cnn_bn" else "ln"
    return _ResidualCNN(cin, width, classes, kind)


def _residual_cnn_class():
    import torch.nn as nn

    class ResidualCNN(nn.Module):
        def __init__(self, cin, width, classes, kind):
            super().__init__()
            c = width
            self.stem = nn.Sequential(nn.Conv2d(cin, c, 3, padding=1, bias=False), _norm(kind, c), nn.ReLU())
            self.block = nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1, bias=False), _norm(kind, c), nn.ReLU(),
                nn.Conv2d(c, c, 3, padding=1, bias=False), _norm(kind, c),
            )
            self.act = nn.ReLU()
            self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1, bias=False),
                                      _norm(kind, 2 * c), nn.ReLU())
            self.head = nn.Linear(2 * c, classes)

        def forward(self, x):
            x = self.stem(x)
            x = self.act(x + self.block(x))
            x = self.down(x)
            return self.head(x.mean(dim=(2, 3)))

    return ResidualCNN


def _ResidualCNN(cin, width, classes, kind):
    return _residual_cnn_class()(cin, width, classes, kind)


def norm_bias_names(model):
    """Names of the normalisation layers' bias parameters (BatchNorm, GroupNorm, LayerNorm)."""
    import torch.nn as nn

    kinds = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    names = []
    for mname, module in model.named_modules():
        if isinstance(module, kinds) and getattr(module, "bias", None) is not None:
            names.append(f"{mname}.bias" if mname else "bias")
    return names
