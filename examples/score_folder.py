#!/usr/bin/python3
"""Scores every image of a folder with the paper's K-Means method and prints its AP against the
folder's labels (LABELS/<stem>.png; OOD_VALUE marks the unknown objects, IGNORE_VALUE is left out).
    PYTHONPATH=build/python python3 examples/score_folder.py assets/demo/test_ood assets/demo/testannot_ood 12 11
"""
import os
import sys

import numpy as np
import oodseg
from PIL import Image   # only to read the label PNGs (Debian: python3-pil)

images, labels, ood, ignore = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ev = oodseg.Evaluator("binary", methods=("kmeans",))
with oodseg.Model() as model:                              # the default model
    for name in sorted(os.listdir(images)):
        score = model.score(os.path.join(images, name), methods=("kmeans",))["kmeans"]
        raw = np.asarray(Image.open(os.path.join(labels, os.path.splitext(name)[0] + ".png")))
        ev.add(score, np.where(raw == ood, 1, np.where(raw == ignore, 255, 0)).astype(np.uint8), name)
r = ev.result()
print(f"kmeans: AP {100 * r['AP']:.2f}  AUROC {100 * r['AUROC']:.2f}  FPR95 {100 * r['FPR95']:.2f}  ({ev.images} images)")
