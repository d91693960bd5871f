"""Outputs: write a reconstruction directory atomically, read it back, (re)export formats.

See ``docs/outputs.md`` for the directory layout and every file's format.
"""

from align3r.export.original import OriginalResolution
from align3r.export.reader import SavedReconstruction, load_reconstruction
from align3r.export.writer import FORMATS, ExportOptions, export_formats, write_reconstruction

__all__ = [
    "FORMATS",
    "ExportOptions",
    "OriginalResolution",
    "SavedReconstruction",
    "export_formats",
    "load_reconstruction",
    "write_reconstruction",
]
