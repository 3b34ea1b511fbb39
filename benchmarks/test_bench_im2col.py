"""im2col and col2im on the convolution shapes' geometry."""
FAMILY = "im2col"


def test_im2col(run):
    run()
