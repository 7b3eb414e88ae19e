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

and the seed paper's own networks for CIFAR (32x32 colour images), in plain torch:

- ``"resnet9"``: the BatchNorm + ReLU ResNet-9 of the fast CIFAR training
  literature (Page 2018, "How to train your ResNet"; Myrtle.ai's DAWNBench
  entry): 6,573,130 parameters for 10 classes and 6,619,300 for 100, of which
  2,240 are BatchNorm biases;
- ``"resnet9_gn"``: the same with GroupNorm (32 groups, per-channel affine
  weight and bias) in place of BatchNorm: the normalisation control;
- ``"resnet18"``: the CIFAR variant of ResNet-18 (He et al. 2016; 3x3 stem,
  no max pool, as in the common ``kuangliu/pytorch-cifar`` code): 11,173,962
  parameters for 10 classes (11,220,132 for 100), of which 4,800 are
  BatchNorm biases.
"""

from __future__ import annotations

import functools
import math

__all__ = ["DEFAULT_WIDTHS", "NETWORKS", "build_network", "norm_bias_names"]

#: Networks known to :func:`build_network`.
NETWORKS = ("cnn_bn", "cnn_ln", "mlp_bn", "resnet9", "resnet9_gn", "resnet18")
#: The width each network has unless told otherwise (the ResNets': the paper's).
DEFAULT_WIDTHS = {"cnn_bn": 16, "cnn_ln": 16, "mlp_bn": 16, "resnet9": 64, "resnet9_gn": 64, "resnet18": 64}


def _norm(kind, channels):
    import torch.nn as nn

    if kind == "bn":
        return nn.BatchNorm2d(channels)
    if kind == "gn":
        return nn.GroupNorm(math.gcd(32, channels), channels)
    return nn.GroupNorm(1, channels)


def build_network(name, width=None, classes=10, in_shape=(1, 8, 8)):
    """Build a network (a ``torch.nn.Module``) by name.

    Parameters
    ----------
    name : {"cnn_bn", "cnn_ln", "mlp_bn", "resnet9", "resnet9_gn", "resnet18"}
    width : int, optional
        Channels of the first stage (the next have ``2 * width`` and, for
        the ResNets, ``4 * width`` and ``8 * width``), or hidden units of the
        MLP; default :data:`DEFAULT_WIDTHS` (16, and the paper's 64 for the
        ResNets).  ``width=16`` on 8x8 inputs: 9,850 parameters (``cnn_bn``),
        of which 80 are BatchNorm biases.  A smaller width makes a ResNet of
        the same structure, cheaper (tests).
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
    ``resnet9`` (``C = width``, ``B(c)`` = ``conv3x3(c) -> N -> ReLU``):
    ``B(C) -> B(2C) -> maxpool2 -> [B(2C) -> B(2C)] + skip -> B(4C) -> maxpool2
    -> B(8C) -> maxpool2 -> [B(8C) -> B(8C)] + skip -> global max pool ->
    linear``.  ``resnet18``: ``B(C)``, then four stages of two basic blocks
    (``conv3x3 -> BN -> ReLU -> conv3x3 -> BN``, plus the input, or its
    ``conv1x1 -> BN`` projection where the shape changes, then ReLU) of
    ``C, 2C, 4C, 8C`` channels, strides 1, 2, 2, 2, global average pool,
    linear.  With ``width=64`` and ``in_shape=(3, 32, 32)``: 6,573,130
    (``resnet9``, 10 classes; 6,619,300 for 100) and 11,173,962
    (``resnet18``, 10 classes) parameters, of which 2,240 and 4,800 are
    normalisation biases.  Any input of at least 8x8 pixels works (the pools
    are global).  Convolutions and hidden linear layers have no bias (the
    normalisation layer's bias plays its role).
    """
    import torch.nn as nn

    if name not in NETWORKS:
        raise ValueError(f"unknown network {name!r}; networks are {NETWORKS}")
    if width is None:
        width = DEFAULT_WIDTHS[name]
    if int(width) != width or width < 1:
        raise ValueError(f"width must be a positive integer, got {width!r}")
    width = int(width)
    cin = in_shape[0]
    if name.startswith("resnet"):
        resnet9, resnet18 = _resnet_classes()
        if name == "resnet18":
            return resnet18(cin, width, classes)
        return resnet9(cin, width, classes, "gn" if name == "resnet9_gn" else "bn")
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


@functools.lru_cache(maxsize=None)
def _resnet_classes():
    import torch.nn as nn

    def block(cin, cout, kind, pool=False):
        layers = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), _norm(kind, cout), nn.ReLU()]
        return nn.Sequential(*layers, nn.MaxPool2d(2)) if pool else nn.Sequential(*layers)

    class Residual(nn.Module):
        def __init__(self, *layers):
            super().__init__()
            self.res = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.res(x)

    class ResNet9(nn.Sequential):
        def __init__(self, cin, c, classes, kind):
            super().__init__(
                block(cin, c, kind),
                block(c, 2 * c, kind, pool=True),
                Residual(block(2 * c, 2 * c, kind), block(2 * c, 2 * c, kind)),
                block(2 * c, 4 * c, kind, pool=True),
                block(4 * c, 8 * c, kind, pool=True),
                Residual(block(8 * c, 8 * c, kind), block(8 * c, 8 * c, kind)),
                nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(8 * c, classes),
            )

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
            self.shortcut = nn.Identity()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.body(x) + self.shortcut(x))

    class ResNet18(nn.Sequential):
        def __init__(self, cin, c, classes):
            stages, prev = [], c
            for i, stride in enumerate((1, 2, 2, 2)):
                cout = c * 2 ** i
                stages += [BasicBlock(prev, cout, stride), BasicBlock(cout, cout, 1)]
                prev = cout
            super().__init__(block(cin, c, "bn"), *stages, nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(prev, classes))

    return ResNet9, ResNet18


def norm_bias_names(model):
    """Names of the normalisation layers' bias parameters (BatchNorm, GroupNorm, LayerNorm)."""
    import torch.nn as nn

    kinds = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    names = []
    for mname, module in model.named_modules():
        if isinstance(module, kinds) and getattr(module, "bias", None) is not None:
            names.append(f"{mname}.bias" if mname else "bias")
    return names
