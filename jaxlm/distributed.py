"""Joining a multi-process JAX job (several hosts, or several processes on one machine).

On Cloud TPU VMs and under SLURM, `jax.distributed.initialize()` finds the cluster by itself;
elsewhere the coordinator, process count and id are given on the command line. CPU processes
talk through gloo collectives, so multi-host code paths run (and are tested) without
accelerators.
"""

from __future__ import annotations

import os

import jax

from jaxlm.errors import ConfigError


def _cluster_detected() -> bool:
  """Whether this process runs inside a multi-process cluster JAX can discover on its own."""
  slurm = int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_JOB_ID" in os.environ
  tpu_hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return slurm or "," in tpu_hosts


def initialize(coordinator_address: str | None, num_processes: int | None,
               process_id: int | None, timeout_s: int = 300) -> None:
  """Joins the job, if there is one to join; a no-op for a single process."""
  explicit = [coordinator_address, num_processes, process_id]
  if any(v is not None for v in explicit):
    if any(v is None for v in explicit):
      raise ConfigError("--coordinator_address, --num_processes and --process_id go together")
    if not 0 <= process_id < num_processes:
      raise ConfigError(f"--process_id={process_id}: must be in [0, {num_processes})")
  elif not _cluster_detected():
    return
  if jax.config.jax_platforms in (None, "", "cpu") or os.environ.get("JAX_PLATFORMS") == "cpu":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  # Slow hosts are normal after a preemption; the timeout is generous and configurable.
  jax.distributed.initialize(coordinator_address=coordinator_address,
                             num_processes=num_processes, process_id=process_id,
                             initialization_timeout=timeout_s)
