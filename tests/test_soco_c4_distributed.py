"""One SoCo-C4 step on two CPU processes (gloo over loopback, DDP) against
the single-process definition written in the test: each rank's images go
through the official forward (tests/test_soco_c4.py's re-derivation of
``SoCo_C4.forward``) with their own BatchNorm statistics (per-process BN, as
SyncBN is on CPU here), each rank's loss is its own half batch's, and the
gradients DDP leaves on every rank are the mean over ranks of the per-rank
gradients; the momentum update is the same on both ranks.

The ranks are forked from the test process, as in test_distributed_step.py."""
import traceback
from datetime import timedelta

import numpy as np
import torch

from test_soco_c4 import (make_views_and_boxes, off_correspondence, off_forward, official_boxes,
                          official_state, samples_of, soco_c4_model)
from test_soco_model import perturb, set_momentum_updates

WORLD = 2
K_STEP, MAX_ITERS = 7, 20
GRADS = ('backbone.conv1.weight', 'backbone.layer3.5.bn3.weight', 'head.layer4.0.conv2.weight',
         'projector.linear1.weight', 'predictor.linear2.weight', 'predictor.bn1.bias')
KEYS = ('encoder_k.layer1.0.conv1.weight', 'encoder_k.layer4.2.conv3.weight',
        'projector_k.linear2.bias')


def worker(rank, port, model, views, samples, out_path):
    try:
        import torch.distributed as dist
        from mmengine.model import MMDistributedDataParallel
        torch.set_num_threads(1)
        dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                                world_size=WORLD, timeout=timedelta(seconds=120))
        ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False)
        own = [v[rank:rank + 1].clone() for v in views]  # one photo per rank
        losses = ddp(inputs=own, data_samples=samples[rank:rank + 1], mode='loss')
        (losses['loss_v1_v2'] + losses['loss_v2_v1']).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if n in GRADS}
        state = official_state(model.state_dict())
        torch.save(dict(losses={k: v.detach() for k, v in losses.items()}, grads=grads,
                        keys={n: state[n] for n in KEYS}), out_path)
        dist.destroy_process_group()
    except BaseException:
        with open(out_path + '.error', 'w') as f:
            f.write(traceback.format_exc())
        raise


def test_two_process_step_equals_the_per_rank_definition(tmp_path, one_thread):
    from conftest import run_forked_ranks
    torch.manual_seed(0)
    model = soco_c4_model()
    model.init_weights()
    rng = torch.Generator().manual_seed(1)
    perturb(model, rng)
    model.momentum_encoder.update_parameters(model._online_encoder())
    perturb(model, rng)  # online != target
    set_momentum_updates(model.momentum_encoder, K_STEP)
    model.momentum_encoder.max_iters = MAX_ITERS
    model.train()
    views, crops, flips, sets = make_views_and_boxes((64, 72), np.random.RandomState(2))
    samples = samples_of(sets, crops, flips)
    W0 = official_state(model.state_dict())

    got = run_forked_ranks(worker, WORLD, tmp_path, model, views, samples)

    # The definition: each rank's photo alone through the official forward.
    boxes = [official_boxes(sets, crops, flips, v) for v in (0, 1)]
    corres = torch.stack([off_correspondence(a[:, 4], b[:, 4]) for a, b in zip(*sets)])
    per_rank_grads, keys = [], None
    for r in range(WORLD):
        W = {n: t.clone() for n, t in W0.items()}
        own = slice(r, r + 1)
        leaves = {n: W[n].requires_grad_() for n in W
                  if n.startswith(('encoder.', 'projector.', 'predictor.')) and
                  W[n].dtype.is_floating_point and not n.endswith(('running_mean', 'running_var'))}
        t12, t21, m = off_forward(W, views[0][own].clone(), views[1][own].clone(),
                                  boxes[0][own], boxes[1][own], corres[own], K_STEP, MAX_ITERS)
        for name, value in (('loss_v1_v2', t12), ('loss_v2_v1', t21)):
            torch.testing.assert_close(got[r]['losses'][name], value.detach(), rtol=1e-5,
                                       atol=1e-5, msg=lambda s: f'rank {r} {name}: {s}')
        assert abs(float(got[r]['losses']['momentum']) - m) < 1e-15
        per_rank_grads.append(dict(zip(leaves, torch.autograd.grad(t12 + t21,
                                                                   list(leaves.values())))))
        keys = {n: W[n].detach() for n in KEYS}
    losses = [float(got[r]['losses']['loss_v1_v2']) for r in range(WORLD)]
    assert abs(losses[0] - losses[1]) > 1e-3, losses  # the ranks saw different photos

    for r in range(WORLD):
        mine = official_state(got[r]['grads'])
        assert len(mine) == len(GRADS)
        for name, grad in mine.items():
            mean = sum(g[name] for g in per_rank_grads) / WORLD
            scale = float(mean.abs().max())
            torch.testing.assert_close(grad, mean, rtol=0, atol=1e-4 * scale,
                                       msg=lambda s: f'rank {r} {name}: {s}')
            assert float((per_rank_grads[0][name] - per_rank_grads[1][name]).abs().max()) \
                > 1e-2 * scale, name  # the average is not either rank's own
        for name, value in keys.items():
            torch.testing.assert_close(got[r]['keys'][name], value, rtol=0, atol=1e-7)
