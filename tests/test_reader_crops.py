"""train/reader_crops.py: crops cut the way the reader cuts them, labelled by a generated scene's truth."""

from __future__ import annotations

import numpy as np
import pytest

from tests.synth_pages import load_mnist
from train.junk import NOT_A_DIGIT
from train.reader_crops import build, label_for


def test_labels_follow_the_truth_boxes():
    truth = [(4, (100, 50, 30, 40)), (7, (128, 50, 26, 40))]
    assert label_for((100, 50, 30, 40), truth) == 4  # the digit itself
    assert label_for((99, 49, 33, 42), truth) == 4  # with a sliver of margin
    assert label_for((100, 50, 56, 40), truth) == NOT_A_DIGIT  # both digits in one crop
    assert label_for((100, 50, 14, 40), truth) == NOT_A_DIGIT  # half a digit
    assert label_for((400, 300, 10, 10), truth) == NOT_A_DIGIT  # nowhere near a digit
    assert label_for((100, 50, 24, 40), truth) is None  # most of a digit: left out, neither


def test_crops_from_generated_scenes_are_mnist_sized_and_labelled_both_ways():
    x, y = load_mnist()
    crops, labels = build(x, y, n_scenes=14, seed=3, progress=False)
    assert crops.dtype == np.uint8 and crops.shape[1:] == (28, 28) and len(crops) == len(labels)
    digits = labels[labels != NOT_A_DIGIT]
    # Every condition once: each scene's digits are found whole, and the cuts give "not a digit" pieces.
    assert len(digits) >= 14 * 5 and len(set(digits.tolist())) == 10
    assert (labels == NOT_A_DIGIT).sum() >= len(digits) // 2
    # A crop the truth calls a digit holds ink: normalised MNIST-style, bright strokes on black.
    assert all(c.max() > 200 for c in crops[labels != NOT_A_DIGIT])
    again, labels_again = build(x, y, n_scenes=14, seed=3, progress=False)
    assert np.array_equal(again, crops) and np.array_equal(labels_again, labels)


@pytest.mark.parametrize("args", [["--scenes", "0"]])
def test_bad_arguments_are_usage_errors(args, capsys):
    from train.reader_crops import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "--scenes" in capsys.readouterr().err
