"""Convert any readable checkpoint (e.g. an official ``.pth``) to our format (``align3r convert``)."""

from __future__ import annotations

import os
from pathlib import Path

from align3r.atomic import check_output_folder
from align3r.model.checkpoints.format import LoadedCheckpoint
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.checkpoints.write import write_checkpoint
from align3r.model.config import describe
from align3r.model.load import expected_shapes
from align3r.model.state_dict import check_state_dict


def convert_checkpoint(source: str | os.PathLike, directory: str | Path) -> LoadedCheckpoint:
    """Convert any readable checkpoint (e.g. an official ``.pth``) to our format, strictly checked.

    No network is materialised: the keys are checked against the architecture on the meta
    device and the tensors written as they are.
    """
    check_output_folder(directory)  # before the (possibly long) read
    loaded = read_checkpoint(source)
    check_state_dict(expected_shapes(loaded.config), loaded.state_dict, str(loaded.path),
                     f"a checkpoint for the {describe(loaded.config)}")
    write_checkpoint(loaded.config, loaded.state_dict, directory)
    return loaded
