"""Flow tests run single-threaded.

They work on 128 px images, where a second thread gains little, while on a shared, oversubscribed
machine OpenMP's spinning threads made each RAFT call ~8x slower (0.12 s vs 1 s measured). The
thread count is restored afterwards so other test folders keep their setting.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
