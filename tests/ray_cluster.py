"""A real multi-node Ray cluster on this machine for tests: a head and worker nodes, each a
raylet of its own with the resources it declares (GPUs it does not have included)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import ray
from ray.cluster_utils import Cluster


@contextlib.contextmanager
def local_cluster(
    workers: list[dict], head_cpus: float = 0, by_value: tuple[str, ...] = ()
) -> Iterator[Cluster]:
    """`workers`: each node's `ray start` resources, e.g. {"num_cpus": 1, "num_gpus": 2}.
    The head has `head_cpus` CPUs (0: it runs the driver only, like a real head node).
    Modules named in `by_value` are shipped to workers by value (they cannot import tests/)."""
    from ray import cloudpickle

    for name in by_value:
        cloudpickle.register_pickle_by_value(sys.modules[name])
    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": head_cpus, "num_gpus": 0, "include_dashboard": False},
    )
    try:
        for node in workers:
            cluster.add_node(**node)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        for name in by_value:
            cloudpickle.unregister_pickle_by_value(sys.modules[name])
