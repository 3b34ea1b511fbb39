"""im2col and col2im on the convolution shapes' geometry."""
OPS = ["im2col", "col2im"]


def test_im2col(run):
    run()
