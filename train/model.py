"""The digit CNN: small, int8-friendly (Conv2D, BatchNorm folded, ReLU, MaxPool, Dense, Softmax only).

About 127k parameters (~138 KB as int8 TFLite) and ~1.4 M multiply-adds per digit: a VGG-style stack
that XNNPACK runs at ~20 us per digit on one x86 core in batches of 32.
"""

from __future__ import annotations

NUM_CLASSES = 11  # digits 0-9 and 10 = "not a digit"


def build_model(num_classes: int = NUM_CLASSES, dropout: float = 0.3):
    from tensorflow import keras

    L = keras.layers

    def conv(x, filters: int, kernel: int = 3):
        x = L.Conv2D(filters, kernel, padding="same", use_bias=False)(x)
        x = L.BatchNormalization()(x)
        return L.ReLU()(x)

    inp = keras.Input((28, 28, 1), name="digit")
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
    x = L.Dropout(dropout)(x)
    out = L.Dense(num_classes, activation="softmax", name="probs")(x)
    return keras.Model(inp, out, name="digits_cnn")
