"""The digit CNN: small, int8-friendly (Conv2D, BatchNorm folded, ReLU, MaxPool, Dense, Softmax only).

``vgg`` (the default): Conv5x5(16)-pool-Conv3x3(32)x2-pool-Conv3x3(64)x2-pool-Dense(96)-Dense(11), about 127k
parameters (~142 KB as int8 TFLite) and ~5.7 M multiply-adds per digit (~21 us per digit with XNNPACK on one
x86 core in batches of 32). ``wide`` spends the dense layer's parameters on convolutions instead:
Conv5x5(16)-pool-Conv3x3(32)-Conv3x3(48)-pool-Conv3x3(64)-Conv3x3(96)-pool-Dense(11) on the 3x3x96 map.
"""

from __future__ import annotations

NUM_CLASSES = 11  # digits 0-9 and 10 = "not a digit"
ARCHS = ("vgg", "wide")


def build_model(num_classes: int = NUM_CLASSES, dropout: float = 0.3, arch: str = "vgg"):
    from tensorflow import keras

    L = keras.layers
    if arch not in ARCHS:
        raise ValueError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHS)}")

    def conv(x, filters: int, kernel: int = 3):
        x = L.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.ReLU()(x)

    inp = keras.Input((28, 28, 1), name="digit")
    if arch == "vgg":
        x = conv(inp, 16, 5)
        x = L.MaxPool2D()(x)          # 14x14
        x = conv(x, 32)
        x = conv(x, 32)
        x = L.MaxPool2D()(x)          # 7x7
        x = conv(x, 64)
        x = conv(x, 64)
        x = L.MaxPool2D()(x)          # 3x3
        x = L.Flatten()(x)
        x = L.Dropout(dropout)(x)
        x = L.Dense(96, activation="relu")(x)
    else:
        x = conv(inp, 16, 5)
        x = L.MaxPool2D()(x)          # 14x14
        x = conv(x, 32)
        x = conv(x, 48)
        x = L.MaxPool2D()(x)          # 7x7
        x = conv(x, 64)
        x = conv(x, 96)
        x = L.MaxPool2D()(x)          # 3x3
        x = L.Flatten()(x)
    x = L.Dropout(dropout)(x)
    out = L.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="digits_cnn")
