"""The vision app's table of tasks, gathered from its three families (`pipelines/catalog.py` points here). No
TensorFlow here: `dlsuite list` reads this module.

    classification/   Fashion-MNIST / MNIST classifier
    generative/       autoencoder, vae, gan, diffusion (on the same images)
    photos/           detection and segmentation of photographs (Penn-Fudan, VOC, COCO), listed last
"""

from apps.vision.classification.config import TASKS as CLASSIFICATION_TASKS
from apps.vision.generative.config import TASKS as GENERATIVE_TASKS
from apps.vision.photos.config import TASKS as PHOTO_TASKS

TASKS = {**CLASSIFICATION_TASKS, **GENERATIVE_TASKS, **PHOTO_TASKS}
