"""The classifier's MLflow figure: test images titled with the served class and the true one."""

from shared import plots


def test_samples(images, predicted_names, true_names, count=32):
    """A grid of the first `count` test images, each titled "<served class>\\n(true: <class>)"."""
    count = min(count, len(images))
    return plots.image_grid(images[:count], [f"{predicted_names[i]}\n(true: {true_names[i]})" for i in range(count)])
