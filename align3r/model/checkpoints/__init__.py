"""Checkpoint files: reading, writing and converting them, safely and strictly.

One module per job; none of them builds a network (that is ``align3r.model.load``, the one way to
load a network, which depends on these and on ``network.py``, never the other way round):

- ``format.py``: :class:`LoadedCheckpoint` (what every reader returns) and the markers of our format.
- ``pth.py``: ``.pth`` files, official (``args`` + ``model``) or from ``align3r train``
  (``checkpoint-*.pth``), unpickled weights-only with an allow-list.
- ``folder.py``: ``config.json`` + ``model.safetensors`` folders, the official Hub layout or ours.
- ``read.py``: :func:`read_checkpoint`, any source (released name, file, folder, Hub repo id)
  resolved and read by the two above.
- ``write.py``: our format (``write_checkpoint``, ``save_pretrained``, ``write_training_metadata``).
- ``convert.py``: any readable checkpoint to our format (``align3r convert``).

Every key of a file is loaded or is a documented alias (``state_dict.py``); any other difference
raises ``CheckpointError`` naming the keys.
"""
