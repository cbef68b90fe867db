"""Reading what an mmengine run wrote to its work dir."""
import glob
import json
import os.path as osp
from typing import List


def read_scalars(work_dir: str) -> List[dict]:
    """Every record the LocalVisBackend logged (``<timestamp>/vis_data/scalars.json``),
    across all runs in ``work_dir`` (a resumed run adds a timestamp folder), oldest first."""
    records = []
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            records += [json.loads(line) for line in f if line.strip()]
    return records
