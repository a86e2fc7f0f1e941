"""Tensor parallelism over `mx.distributed`.

`mlx.launch` starts one process per rank; each loads its share of the model
(load.py). Every rank has the same ModelRunner over its shard. Rank 0 runs
the engine (engine.py); each runner method that touches the model is first
sent to the other ranks (leader.py, over protocol.py), which run the same
method with the same arguments on their own runner (follower.py), so that
the collectives inside the sharded model pair up. Only rank 0 samples: a
decode step's call carries the tokens it sampled at the step before.
"""
