"""The digit CNN: small, int8-friendly (Conv2D, BatchNorm folded, ReLU, MaxPool, Dense, Softmax only).

``wide`` (the default, shipped) and ``vgg`` (the model shipped before) share one stem and differ in widths
and head. ``vgg``: Conv5x5(16)-pool-Conv3x3(32)x2-pool-Conv3x3(64)x2-pool-Dense(96)-Dense(11), about 127k
parameters (~142 KB as int8 TFLite) and ~5.7 M multiply-adds per digit (~21 us per digit with XNNPACK on one
x86 core in batches of 32). ``wide`` spends the dense layer's parameters on convolutions instead:
Conv5x5(16)-pool-Conv3x3(32)-Conv3x3(48)-pool-Conv3x3(64)-Conv3x3(96)-pool-Dense(11) on the 3x3x96 map.
``strided`` is ``wide`` with the stem's convolution run at stride 2 instead of followed by a pool: the stem
on a one-channel 28x28 input, with its pool (and the head), took ~28% of ``wide``'s time per digit for 4% of
its multiply-adds (docs/experiments.md "Faster networks": faster, but it read four real photos fewer; not shipped).
``separable`` is ``wide`` with the three 3x3 convolutions after the first made depthwise-separable (a 3x3
depthwise convolution, then a 1x1 one): a quarter of the parameters, ~0.6x the time; 99.34% on MNIST (not
shipped).
``fast`` is ``wide`` with a 3x3 stem and the second pool moved before the last convolution, which so runs on
the 3x3 map instead of the 7x7 one: the same parameters and head, ~0.7x the time per digit (the 5x5 stem on a
one-channel input and the 96-filter convolution at 7x7 were the two costliest steps).
"""

from __future__ import annotations

from typing import NamedTuple

NUM_CLASSES = 11  # digits 0-9 and 10 = "not a digit"


class Arch(NamedTuple):
    """One network: a 16-filter stem, then four convolutions of these ``widths``."""

    widths: tuple[int, int, int, int]
    stem_kernel: int = 5
    #: 2: the stem convolution strides to 14x14; 1: it is followed by a 2x2 pool instead.
    stem_stride: int = 1
    #: the convolutions after the first of the four are depthwise 3x3 then 1x1
    separable: bool = False
    #: after which of the four convolutions a 2x2 pool follows (7x7, then 3x3)
    pools: tuple[int, int] = (1, 3)


_WIDE = (32, 48, 64, 96)
SPECS = {"vgg": Arch((32, 32, 64, 64)), "wide": Arch(_WIDE), "strided": Arch(_WIDE, stem_stride=2),
         "separable": Arch(_WIDE, separable=True), "fast": Arch(_WIDE, stem_kernel=3, pools=(1, 2))}
ARCHS = tuple(SPECS)


def build_model(num_classes: int = NUM_CLASSES, dropout: float = 0.3, arch: str = "wide"):
    from tensorflow import keras

    L = keras.layers
    if arch not in SPECS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")
    spec = SPECS[arch]

    def bn_relu(x):
        return L.ReLU()(L.BatchNormalization()(x))

    def conv(x, filters: int, kernel: int = 3, strides: int = 1):
        return bn_relu(L.Conv2D(filters, kernel, strides=strides, padding="same", use_bias=False)(x))

    inp = keras.Input((28, 28, 1), name="digit")
    x = conv(inp, 16, spec.stem_kernel, strides=spec.stem_stride)
    if spec.stem_stride == 1:
        x = L.MaxPool2D()(x)  # 14x14
    for i, filters in enumerate(spec.widths):
        if spec.separable and i > 0:
            x = conv(bn_relu(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)), filters, kernel=1)
        else:
            x = conv(x, filters)
        if i in spec.pools:
            x = L.MaxPool2D()(x)
    x = L.Flatten()(x)
    if arch == "vgg":
        x = L.Dropout(dropout)(x)
        x = L.Dense(96, activation="relu")(x)
    x = L.Dropout(dropout)(x)
    out = L.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="digits_cnn")
