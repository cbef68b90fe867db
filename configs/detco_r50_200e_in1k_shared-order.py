_base_ = './detco_r50_200e_in1k.py'
# Targets no published row: compare with detco_r50_200e_in1k.py (DetCo-200ep).
# Ablation: P_q and P_k of an image share one patch order (by default each local view is
# shuffled on its own, as its own local transform; the concatenating local head is
# order-sensitive, so this makes l2l easier). docs/detco.md
train_pipeline = [dict(step, shared_order=True) if step['type'] == 'JigsawPatches' else step
                  for step in _base_.train_pipeline]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
