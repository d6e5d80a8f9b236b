"""The photo tasks' MLflow figures: detections and segmentation overlays on test images."""

import numpy as np


def draw_detections(images, truths, predictions, class_names, threshold, columns=4):
    """A figure: each image with its true boxes (green) and predicted boxes scoring >= threshold (red)."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, truth, predicted in zip(axes.ravel(), images, truths, predictions):
        axis.imshow(image)
        for box in truth:
            axis.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="lime", lw=1.5))
        shown = predicted["scores"] >= threshold
        for box, score, name in zip(predicted["boxes"][shown], predicted["scores"][shown],
                                    predicted["class_names"][shown]):
            axis.add_patch(Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, color="red", lw=1.2))
            label = name.decode() if isinstance(name, bytes) else str(name)
            axis.text(box[0], box[1], f"{label} {score:.2f}", color="white", fontsize=6, va="bottom",
                      bbox={"facecolor": "red", "alpha": 0.6, "pad": 1, "lw": 0})
        axis.set_title(f"{int(shown.sum())} found (score >= {threshold}), {len(truth)} true", fontsize=7)
    figure.suptitle(f"Test images: predictions (red, {class_names[0]}{'...' if len(class_names) > 1 else ''}) "
                    "and true boxes (green)", fontsize=9)
    figure.tight_layout()
    return figure


def draw_overlays(images, truths, predictions, ious, columns=4):
    """A figure: each image with its predicted mask in red and the true mask's outline in green."""
    import matplotlib.pyplot as plt

    rows = max(1, int(np.ceil(len(images) / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, truth, predicted, iou in zip(axes.ravel(), images, truths, predictions, ious):
        overlay = image.astype(np.float32)
        overlay[predicted > 0] = 0.55 * overlay[predicted > 0] + 0.45 * np.array([255.0, 0.0, 0.0])
        axis.imshow(overlay.astype(np.uint8))
        if truth.any() and not truth.all():
            axis.contour(truth, levels=[0.5], colors="lime", linewidths=1.0)
        axis.set_title(f"IoU {iou:.2f}", fontsize=8)
    figure.suptitle("Test images: predicted mask (red), true outline (green)", fontsize=9)
    figure.tight_layout()
    return figure
