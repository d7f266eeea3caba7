"""Test helpers shipped with the package: synthetic log directories and ways to read logs back.

Modules: ``synthetic`` (``write_synthetic_run``: every registered kind, no training),
``heads`` (``write_head_run``: CAMs of binary, regression and segmentation heads) and
``reading`` (``data_provider`` and ``read_run`` read a log as TensorBoard does; the stored
format's decoders ``decode_step``, ``decode_tiles``, ``recover_feature_maps``).

Example:
    >>> from tb_cnnvis.testing import read_run, write_synthetic_run
    >>> write_synthetic_run("/tmp/logs", epochs=3)
    >>> facts, pngs = read_run("/tmp/logs")["grad_cam/base/conv2"][3]
"""

from tb_cnnvis.testing.heads import write_head_run
from tb_cnnvis.testing.reading import (
    data_provider,
    decode_step,
    decode_tiles,
    read_run,
    recover_feature_maps,
)
from tb_cnnvis.testing.synthetic import CLASS_NAMES, write_synthetic_run

__all__ = [
    "CLASS_NAMES",
    "data_provider",
    "decode_step",
    "decode_tiles",
    "read_run",
    "recover_feature_maps",
    "write_head_run",
    "write_synthetic_run",
]
