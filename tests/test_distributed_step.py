"""One CrossCL training step on two CPU processes (gloo over loopback),
against an independent single-process computation of the same step.

What makes the distributed step CrossCL's, each checked numerically:
shuffle BN (the momentum encoder normalises each rank's slice of the
shuffled global batch, and its outputs are unshuffled), P4 negatives
gathered from every rank while P3 negatives stay on their rank, gradients
averaged over ranks by DDP, and the queue receiving every rank's keys in
rank order. The permutation is fixed by seeding the RNG that draws it on
rank 0 (the same ``torch.randperm`` a training run uses).

The ranks are forked from the test process, which has imported everything
already (as mmengine's dataloader workers are forked).
"""
import copy
import traceback
from datetime import timedelta

import torch
import torch.nn.functional as F

SIZE = 64
PER_RANK = 2
WORLD = 2
TEMPERATURE = 0.2
SHUFFLE_SEED = 16  # torch.randperm(4) after this seed is [1, 3, 0, 2]: each rank's
#                   slice of the shuffled batch mixes both ranks' images.
LOSSES = ('loss_global', 'loss_p4', 'loss_p3', 'loss_p4_p3', 'loss_p3_p4')
GRAD_PARAMS = ('backbone.conv1.weight', 'backbone.bn1.weight', 'backbone.layer4.1.conv2.weight',
               'neck.mlp.2.weight', 'fpn.lateral_convs.0.conv.weight',
               'fpn.fpn_convs.1.conv.weight')


def build_model():
    from crosscl_mm.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='CrossCL', queue_len=8, feat_dim=16, momentum=0.99,
        backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(1, 2, 3),
                      norm_cfg=dict(type='BN'), zero_init_residual=False),
        neck=dict(type='GlobalProjectionNeck', in_channels=512, hid_channels=64, out_channels=16),
        fpn=dict(type='TopDownFPN', in_channels=(128, 256, 512), out_channels=32)))
    # PyTorch's default initialisation, seeded: the same weights on every rank and in
    # the expected computation (init_weights would only cost seconds per process).
    return model.train()


def to_batch(items):
    """``pseudo_collate``'s layout from plain tensors: views, then samples."""
    from mmengine.structures import BaseDataElement, InstanceData
    samples = []
    for item in items:
        sample = BaseDataElement()
        for level in ('p4', 'p3'):
            sample.set_field(InstanceData(**item[level]), f'regions_{level}')
        samples.append(sample)
    return dict(inputs=[[item['query'] for item in items], [item['key'] for item in items]],
                data_samples=samples)


def worker(rank, port, data_path, out_path):
    """One rank: the step as the Runner runs it (data preprocessor, forward
    through MMDistributedDataParallel, summed losses, backward with DDP's
    gradient all-reduce), then what it computed, written to ``out_path``
    (or the traceback, to ``out_path + '.error'``)."""
    try:
        run_rank(rank, port, data_path, out_path)
    except BaseException:
        with open(out_path + '.error', 'w') as f:
            f.write(traceback.format_exc())
        raise


def run_rank(rank, port, data_path, out_path):
    import torch.distributed as dist
    import crosscl_mm  # noqa: F401 (registries, compat)
    from mmengine.model import MMDistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
                            world_size=WORLD, timeout=timedelta(seconds=120))
    model = build_model()
    ddp = MMDistributedDataParallel(module=model, broadcast_buffers=False)  # as the Runner
    items = torch.load(data_path, weights_only=True)[rank * PER_RANK:(rank + 1) * PER_RANK]
    data = model.data_preprocessor(to_batch(items), training=True)
    torch.manual_seed(SHUFFLE_SEED)  # rank 0 draws the permutation and broadcasts it
    losses = ddp(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    params = dict(model.named_parameters())
    torch.save(dict(losses={k: v.detach() for k, v in losses.items()},
                    grads={name: params[name].grad for name in GRAD_PARAMS},
                    queue=model.queue.keys.clone(), ptr=model.queue.ptr.clone()), out_path)
    dist.destroy_process_group()


def photo_batch(n):
    """``n`` real photos through the training pipeline (without colour
    augmentation), as plain tensors."""
    from mmengine.dataset import Compose
    from crosscl_mm.registry import TRANSFORMS
    from conftest import PHOTOS, skimage_photo
    pipeline = Compose([TRANSFORMS.build(dict(type='LoadImageRGB')),
                        TRANSFORMS.build(dict(type='PairedRandomResizedCrop', size=SIZE)),
                        TRANSFORMS.build(dict(type='SlidingWindowRegions')),
                        TRANSFORMS.build(dict(type='PackRegionPairInputs'))])
    torch.manual_seed(0)
    items = []
    for i in range(n):
        out = pipeline(dict(img_path=skimage_photo(PHOTOS[i])))
        sample = out['data_samples']
        regions = {lvl: getattr(sample, f'regions_{lvl}') for lvl in ('p4', 'p3')}
        items.append(dict(query=out['inputs'][0], key=out['inputs'][1], **{
            lvl: {f: r[f] for f in ('query_boxes', 'key_boxes', 'valid')}
            for lvl, r in regions.items()}))
    return items


def expected_step(items):
    """The same step in one process, from its definition: per-rank batch
    statistics, the key encoder on each rank's slice of the shuffled batch,
    P4 negatives from all images and P3 negatives from the rank's own,
    gradients averaged over ranks, the queue filled in rank order. Regions,
    pooling and losses as the reference computes them
    (tests/crosscl_reference.py)."""
    import crosscl_reference as ref

    model = build_model()
    queue = model.queue.keys.clone()  # the same random start as on every rank
    online = dict(backbone=model.backbone, neck=model.neck, fpn=model.fpn)
    momentum = copy.deepcopy(online)  # its first update copies the online weights

    def encode(enc, x):
        c3, c4, c5 = enc['backbone'](x)
        p3, p4 = enc['fpn']((c3, c4, c5))
        return F.normalize(enc['neck'](c5), dim=1), dict(p4=p4, p3=p3)

    batch = model.data_preprocessor(to_batch(items), training=True)
    img_q, img_k = batch['inputs']
    perm = torch.randperm(WORLD * PER_RANK, generator=torch.Generator().manual_seed(SHUFFLE_SEED))
    halves = perm.view(WORLD, PER_RANK)
    assert all(len(set((halves[r] // PER_RANK).tolist())) == WORLD for r in range(WORLD)), perm

    with torch.no_grad():
        slices = [encode(momentum, img_k[halves[r]]) for r in range(WORLD)]  # BN per rank
        k_shuffled = torch.cat([k for k, _ in slices])
        maps_shuffled = {lvl: torch.cat([m[lvl] for _, m in slices]) for lvl in ('p4', 'p3')}
        unshuffle = torch.argsort(perm)
        k_all = k_shuffled[unshuffle]
        maps_k = {lvl: m[unshuffle] for lvl, m in maps_shuffled.items()}  # image order
        neg_p4_all = ref.reference_negatives(maps_k['p4'], 1, 1)  # every cell at 64 px

    scale = dict(p4=1 / 16., p3=1 / 8.)
    per_rank, total = [], 0
    for r in range(WORLD):
        own = slice(r * PER_RANK, (r + 1) * PER_RANK)
        q, maps_q = encode(online, img_q[own])
        with torch.no_grad():
            negatives = dict(p4=neg_p4_all, p3=ref.reference_negatives(maps_k['p3'][own], 1, 1))
        out = {}
        out['loss_global'], out['acc_global'] = ref.reference_loss_and_accuracy(
            ref.reference_logits(q, k_all[own], queue.clone(), TEMPERATURE),
            torch.zeros(PER_RANK, dtype=torch.long))
        for name, q_lvl, k_lvl in (('p4', 'p4', 'p4'), ('p3', 'p3', 'p3'),
                                   ('p4_p3', 'p4', 'p3'), ('p3_p4', 'p3', 'p4')):
            regions = [items[i][q_lvl] for i in range(own.start, own.stop)]
            query_boxes = torch.stack([reg['query_boxes'] for reg in regions])
            key_boxes = torch.stack([reg['key_boxes'] for reg in regions])
            labels = torch.where(torch.stack([reg['valid'] for reg in regions]), 0, -1).view(-1)
            query = F.normalize(ref.precise_roi_pool_all(maps_q[q_lvl], query_boxes,
                                                         scale[q_lvl]), dim=1)
            with torch.no_grad():
                positive = F.normalize(ref.precise_roi_pool_all(
                    maps_k[k_lvl][own], key_boxes, scale[k_lvl]), dim=1)
            out[f'loss_{name}'], out[f'acc_{name}'] = ref.reference_loss_and_accuracy(
                ref.reference_logits(query, positive, negatives[k_lvl], TEMPERATURE), labels)
        per_rank.append({k: v.detach() for k, v in out.items()})
        total = total + sum(out[name] for name in LOSSES) / WORLD  # DDP averages gradients
    total.backward()
    params = dict(model.named_parameters())
    queue_after = queue.clone()
    queue_after[:, :WORLD * PER_RANK] = k_all.t()  # rank 0's keys, then rank 1's
    return dict(per_rank=per_rank, grads={n: params[n].grad for n in GRAD_PARAMS},
                queue=queue_after, ptr=WORLD * PER_RANK % queue.shape[1])


def test_two_process_step_equals_the_single_process_definition(tmp_path):
    import crosscl_mm  # noqa: F401
    from conftest import run_forked_ranks

    items = photo_batch(WORLD * PER_RANK)
    valid = torch.stack([item['p4']['valid'] for item in items])
    assert valid.any() and not valid.all()
    data_path = str(tmp_path / 'batch.pth')
    torch.save(items, data_path)
    ranks = run_forked_ranks(worker, WORLD, tmp_path, data_path)

    expected = expected_step(items)
    for r in range(WORLD):
        got = ranks[r]
        assert set(got['losses']) == set(expected['per_rank'][r])
        for name, value in expected['per_rank'][r].items():
            torch.testing.assert_close(got['losses'][name], value, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f'rank {r} {name}: {m}')
        for name, grad in expected['grads'].items():
            torch.testing.assert_close(got['grads'][name], grad, rtol=1e-5, atol=1e-5,
                                       msg=lambda m: f'rank {r} gradient of {name}: {m}')
        torch.testing.assert_close(got['queue'], expected['queue'], rtol=1e-5, atol=1e-5,
                                   msg=lambda m: f'rank {r} queue: {m}')
        assert int(got['ptr']) == expected['ptr']
