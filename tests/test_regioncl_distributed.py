"""One RegionCL-M and one RegionCL-D step on two CPU processes (gloo over
loopback), against a single-process computation of the same step written
from the definitions: each rank draws its own box and partners (seeded per
rank here), pairs within its own batch and normalises its own batch; the key
batch is shuffled across ranks with rank 0's permutation and unshuffled;
the queues receive every rank's keys in rank order.

The ranks are forked from the test process, as in test_distributed_step.py.
"""
import traceback
from datetime import timedelta

import pytest
import torch
import torch.nn.functional as F

from test_regioncl_model import (build, ce, dense_head, grid_box_and_perm, make_inputs, mlp,
                                 official_box, regioncl_d_cfg, regioncl_m_cfg, region_term)

WORLD = 2
PER_RANK = 2
SEED = 44  # rank r seeds SEED + r before its step; rank 0's shuffle then mixes the ranks


def model_cfg(variant):
    return regioncl_m_cfg(queue_len=8) if variant == 'm' else regioncl_d_cfg(queue_len=8)


def worker(rank, port, variant, data_path, out_path):
    try:
        import torch.distributed as dist
        from mmengine.model import MMDistributedDataParallel
        torch.set_num_threads(1)
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                world_size=WORLD, timeout=timedelta(seconds=120))
        model = build(model_cfg(variant))
        ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False)
        img_q, img_k = (x[rank * PER_RANK:(rank + 1) * PER_RANK]
                        for x in torch.load(data_path, weights_only=True))
        torch.manual_seed(SEED + rank)
        losses = ddp(inputs=[img_q, img_k], mode='loss')
        queues = {name: (q.keys.clone(), q.ptr.clone()) for name, q in model.named_modules()
                  if name.endswith('queue')}
        torch.save(dict(losses={k: v.detach() for k, v in losses.items()}, queues=queues),
                   out_path)
        dist.destroy_process_group()
    except BaseException:
        with open(out_path + '.error', 'w') as f:
            f.write(traceback.format_exc())
        raise


def expected_step(variant, inputs):
    """Both ranks' losses and the queues after the step, in one process. The
    key encoder's first update copies the online weights."""
    model = build(model_cfg(variant))
    params = {k: v for k, v in model.state_dict().items()
              if k.startswith(('backbone.', 'neck.', 'dense_neck.'))}
    queue = model.instance_queue.keys.clone()
    dense_queue = model.dense_queue.keys.clone() if variant == 'd' else None
    img_q, img_k = inputs
    n = WORLD * PER_RANK
    # Rank 0's shuffle permutation, drawn after what precedes it on rank 0.
    torch.manual_seed(SEED)
    if variant == 'm':
        official_box(SEED)  # the swap is drawn first (and re-seeds SEED)
    shuffle = torch.randperm(n)
    halves = shuffle.view(WORLD, PER_RANK)
    assert all(len(set((halves[r] // PER_RANK).tolist())) == WORLD for r in range(WORLD)), shuffle
    with torch.no_grad():
        f_k = torch.cat([model.backbone(img_k[halves[r]])[-1] for r in range(WORLD)])
        f_k = f_k[torch.argsort(shuffle)]  # image order
        k_all = F.normalize(mlp(params, f_k.mean((2, 3))), dim=1)
    per_rank = []
    for r in range(WORLD):
        own = slice(r * PER_RANK, (r + 1) * PER_RANK)
        f_q = model.backbone(img_q[own])[-1]
        q = F.normalize(mlp(params, f_q.mean((2, 3))), dim=1)
        k = k_all[own]
        if variant == 'm':
            box = official_box(SEED + r)
            partner = torch.arange(PER_RANK - 1, -1, -1)
            out = dict(loss_instance=ce(q, k, queue))
        else:
            torch.manual_seed(SEED + r)
            torch.randperm(n)  # this rank's shuffle draw (rank 0's is the one used)
            box, partner = grid_box_and_perm(PER_RANK)
            dq = F.normalize(dense_head(params, f_q).flatten(2), dim=1)
            with torch.no_grad():
                dk = F.normalize(dense_head(params, f_k[own]).flatten(2), dim=1)
                sim = torch.einsum('nca,ncb->nab', F.normalize(f_q.flatten(2), dim=1),
                                   F.normalize(f_k[own].flatten(2), dim=1))
                dpos = torch.stack([dk[i][:, sim[i].argmax(1)] for i in range(PER_RANK)])
            out = dict(loss_global=0.5 * ce(q, k, queue),
                       loss_dense=0.5 * ce(dq.transpose(1, 2).reshape(-1, dq.shape[1]),
                                           dpos.transpose(1, 2).reshape(-1, dq.shape[1]),
                                           dense_queue))
        out['loss_region'] = region_term(model.backbone, params, img_q[own], box, partner, k,
                                         queue, 'as_released')
        per_rank.append({name: v.detach() for name, v in out.items()})
    queues = {'instance_queue': queue.clone()}
    queues['instance_queue'][:, :n] = k_all.t()  # rank 0's keys, then rank 1's
    if variant == 'd':
        with torch.no_grad():
            dense_mean = F.normalize(dense_head(params, f_k).flatten(2).mean(2), dim=1)
        queues['dense_queue'] = dense_queue.clone()
        queues['dense_queue'][:, :n] = dense_mean.t()
    return per_rank, queues


@pytest.mark.parametrize('variant', ['m', 'd'])
def test_two_process_step_equals_the_single_process_definition(variant, tmp_path):
    from conftest import run_forked_ranks
    inputs = make_inputs(WORLD * PER_RANK, seed=7)
    data_path = str(tmp_path / 'batch.pth')
    torch.save(inputs, data_path)
    got = run_forked_ranks(worker, WORLD, tmp_path, variant, data_path)

    expected, queues = expected_step(variant, inputs)
    for r in range(WORLD):
        losses = {k: v for k, v in got[r]['losses'].items() if k.startswith('loss_')}
        assert set(losses) == set(expected[r])
        for name, value in expected[r].items():
            torch.testing.assert_close(losses[name], value, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f'rank {r} {name}: {m}')
        assert set(got[r]['queues']) == set(queues)
        for name, keys in queues.items():
            got_keys, ptr = got[r]['queues'][name]
            torch.testing.assert_close(got_keys, keys, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f'rank {r} {name}: {m}')
            assert int(ptr) == WORLD * PER_RANK
    # each rank drew its own box
    if variant == 'm':
        assert official_box(SEED) != official_box(SEED + 1)
