"""conv2d forward, and backward (grad_x + grad_weight + grad_bias) alone."""
OPS = ["conv2d", "conv2d_backward"]


def test_conv2d(run):
    run()
