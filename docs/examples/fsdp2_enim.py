"""Enim under FSDP2, with the whole model's telemetry logged on rank 0.

    torchrun --nproc-per-node 2 docs/examples/fsdp2_enim.py [CHECKPOINT_DIR]

CPU (gloo) or, where torch sees GPUs, one per process (NCCL).  The optimizer
finds its process group from the DTensor parameters; every number it
computes is that of one process stepping the whole model.
"""

import math
import os
import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

from lni_geometry.torch import Enim
from lni_geometry.torch.distributed import get_state_dict

cuda = torch.cuda.is_available()
dist.init_process_group("nccl" if cuda else "gloo")
rank, world = dist.get_rank(), dist.get_world_size()
device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
if cuda:
    torch.cuda.set_device(device)
mesh = init_device_mesh(device.type, (world,))

torch.manual_seed(0)  # the same initial weights on every rank
model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10)).to(device)
for layer in model:
    if isinstance(layer, torch.nn.Linear):
        fully_shard(layer, mesh=mesh)
fully_shard(model, mesh=mesh)


def log(record):  # the whole model's telemetry, the same on every rank: print it once
    if rank == 0 and record["step"] % 5 == 0:
        print(f"step {record['step']}: sign angle {math.degrees(record['sign_angle']):.2f} deg "
              f"(turn applied {math.degrees(record['angle']):.2f}), n = {record['n']:,}", flush=True)


opt = Enim(model.parameters(), lr=1e-3, angle="lion", seed=0, telemetry=True, history=False, callback=log)
data = torch.Generator().manual_seed(1 + rank)  # each rank its own batches
for step in range(20):
    x = torch.randn(32, 64, generator=data).to(device)
    y = torch.randint(0, 10, (32,), generator=data).to(device)
    opt.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()

if len(sys.argv) > 1:  # a checkpoint that resumes at any world size (see lni_geometry.torch.distributed)
    dcp.save(get_state_dict(model, opt), checkpoint_id=sys.argv[1])
    if rank == 0:
        print(f"saved {sys.argv[1]}")
dist.destroy_process_group()
