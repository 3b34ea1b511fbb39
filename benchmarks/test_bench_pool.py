"""Max pooling (with and without indices, backward) and average pooling."""
FAMILY = "pool"


def test_pool(run):
    run()
