"""shared/plots: the figures every run logs show every curve, legibly, at the size the MLflow UI shows them."""

import matplotlib
import numpy as np
import pytest

from shared import plots


@pytest.fixture(autouse=True)
def headless():
    plots.use_headless_backend()
    yield
    plots.plt.close("all")


def _panels(figure):
    """{title: [line labels]} of the panels that are drawn."""
    return {axis.get_title(): [line.get_label() for line in axis.get_lines()] for axis in figure.axes if axis.axison}


def test_plot_learning_curves_draw_a_validation_only_metric_in_a_panel_of_its_own():
    curve = [(0, 0.5), (1, 0.4), (2, 0.3)]
    figure = plots.learning_curves({"loss": curve, "val_loss": curve, "val_ndcg_at_10": curve,
                                    "val_recall_at_10": curve, "epoch_seconds": curve})
    assert _panels(figure) == {"loss": ["loss", "val_loss"], "ndcg_at_10": ["val_ndcg_at_10"],
                               "recall_at_10": ["val_recall_at_10"]}


def test_plot_learning_curves_fold_a_constant_learning_rate_into_the_title():
    curve = [(0, 0.5), (1, 0.4)]
    constant = plots.learning_curves({"loss": curve, "learning_rate": [(0, 1e-3), (1, 1e-3)]})
    assert list(_panels(constant)) == ["loss"]
    assert constant.get_suptitle() == "learning rate 0.001 (constant)"
    scheduled = plots.learning_curves({"loss": curve, "learning_rate": [(0, 1e-3), (1, 5e-4)]})
    assert list(_panels(scheduled)) == ["learning_rate", "loss"] and scheduled.get_suptitle() == ""
    one_epoch = plots.learning_curves({"loss": curve[:1], "learning_rate": [(0, 0.0)]})  # annealed within it
    assert list(_panels(one_epoch)) == ["loss"] and one_epoch.get_suptitle() == "learning rate 0 at the end of the epoch"


def test_plot_learning_curves_wrap_after_three_panels_with_legible_ticks():
    curve = [(0, 0.5), (1, 0.4)]
    figure = plots.learning_curves({name: curve for name in ("auc", "loss", "precision", "recall")})
    rows = {round(axis.get_position().y0, 3) for axis in figure.axes if axis.axison}
    assert len(_panels(figure)) == 4 and len(rows) == 2  # 3 + 1, not 1 row of 4 at 1800 x 350 px
    width, height = figure.get_size_inches()
    assert width <= 13 and height >= 6  # about 1300 x 700 px: the UI shows it at about 1000 px wide
    ticks = [label for axis in figure.axes if axis.axison for label in axis.get_xticklabels()]
    assert min(label.get_fontsize() for label in ticks) >= 10


def test_plot_image_grid_marks_the_highlighted_images_in_red():
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    figure = plots.image_grid(images, ["cat\n(true: cat)", "dog\n(true: cat)", "cat\n(true: cat)"], columns=2,
                              highlight=[False, True, False], title="1 of 3 misclassified in red")
    drawn = [axis for axis in figure.axes if axis.axison]
    assert len(drawn) == 3  # the fourth cell of the 2 x 2 grid stays empty
    red = matplotlib.colors.to_rgba("tab:red")
    assert [matplotlib.colors.to_rgba(axis.title.get_color()) == red for axis in drawn] == [False, True, False]
    assert [axis.spines["left"].get_visible() for axis in drawn] == [False, True, False]
    assert min(axis.title.get_fontsize() for axis in drawn) >= 10
    assert figure.get_suptitle() == "1 of 3 misclassified in red"


def test_plot_image_grid_wants_one_highlight_flag_per_image():
    with pytest.raises(ValueError, match=r"One highlight flag per image\. Received: 1 flags for 2 images\."):
        plots.image_grid(np.zeros((2, 4, 4)), ["a", "b"], highlight=[True])
