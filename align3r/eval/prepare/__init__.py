"""Raw benchmark downloads -> the layouts :mod:`align3r.eval.datasets` reads.

- :func:`prepare_bonn`, :func:`prepare_tum`: the ``rgb_K``/``depth_K``/``groundtruth_K.txt`` subsets.
- :func:`prepare_sintel`: the ground-truth dynamic labels (``dynamic_label_perfect``).
- :func:`prepare_pointodyssey`, :func:`prepare_flyingthings3d`: the processed layout.

The ``scripts/eval/prepare_*.py`` files are command-line wrappers around these.
"""

from align3r.eval.prepare.processed import prepare_flyingthings3d, prepare_pointodyssey
from align3r.eval.prepare.sintel import prepare_sintel
from align3r.eval.prepare.subsets import prepare_bonn, prepare_rgbd_subset, prepare_tum

__all__ = [
    "prepare_bonn",
    "prepare_flyingthings3d",
    "prepare_pointodyssey",
    "prepare_rgbd_subset",
    "prepare_sintel",
    "prepare_tum",
]
