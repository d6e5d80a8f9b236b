"""The classifier's MLflow figure: test images titled with the served class and the true one, mistakes in red."""

from shared import plots


def test_samples(images, predicted_names, true_names, count=32):
    """A grid of the first `count` test images, each titled "<served class>\\n(true: <class>)"; the misclassified
    ones have a red title and frame."""
    count = min(count, len(images))
    wrong = [predicted_names[i] != true_names[i] for i in range(count)]
    return plots.image_grid(
        images[:count], [f"{predicted_names[i]}\n(true: {true_names[i]})" for i in range(count)], highlight=wrong,
        title=f"Test samples: predicted (true); the {sum(wrong)} of {count} misclassified in red")
