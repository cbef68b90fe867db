# The tiny run with a failure injected on rank 1 at iteration 2 (tests/plugins on PYTHONPATH).
_base_ = './crosscl_r18_tiny.py'
custom_imports = dict(imports=['crosscl_mm', 'fault_injection'], allow_failed_imports=False)
custom_hooks = [dict(type='RaiseOnRankHook', rank=1, at_iter=2)]
