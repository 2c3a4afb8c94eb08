"""Desktop side: train the digit CNN on MNIST (uses TensorFlow; never imported by edge/)."""
