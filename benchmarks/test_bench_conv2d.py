"""conv2d forward, and backward (grad_x + grad_weight + grad_bias) alone."""
FAMILY = "conv2d"


def test_conv2d(run):
    run()
