"""Evaluation: depth and pose metrics equal to the official scripts, benchmark readers and
dataset preparation.

- :mod:`align3r.eval.depth_metrics` — ``evaluate_video_depth``, ``average_results``
- :mod:`align3r.eval.pose_metrics` — ``evaluate_trajectory``, ``average_pose_results``
- :mod:`align3r.io.trajectory` — TUM / official ``pred_traj.txt`` files, association
- benchmark file formats (``.dpt``, ``.cam``, ``.flo``, PFM, 16-bit PNG depth) live in :mod:`align3r.io.formats`
- :mod:`align3r.eval.datasets` — benchmark readers yielding ``Sequence`` records
- :mod:`align3r.eval.prepare` — raw downloads -> the layouts the readers expect
"""
