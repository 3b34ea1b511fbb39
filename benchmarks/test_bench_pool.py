"""Max pooling (with and without indices, backward) and average pooling."""
OPS = ["max_pool2d", "max_pool2d_indices", "max_pool2d_backward",
       "avg_pool2d", "avg_pool2d_backward"]


def test_pool(run):
    run()
