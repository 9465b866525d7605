"""
--device for the PyTorch references: where new tensors and modules live (the default device,
so model code needs no changes), seeded generators on that device, a clock that waits for the
device's queued work, and the peak device memory.
"""

import time

import torch

DEVICE = "cpu"


def use(device):
    """Makes `device` ("cpu", "cuda", "cuda:N") the default for new tensors (torch >= 2.0 off the CPU)."""
    global DEVICE
    if device == "cpu":
        return
    if not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: torch.cuda.is_available() is false here")
    if not hasattr(torch, "set_default_device"):
        raise SystemExit(f"--device {device} needs torch >= 2.0 (this is {torch.__version__})")
    torch.set_default_device(device)
    torch.cuda.reset_peak_memory_stats()
    DEVICE = device


def generator(seed):
    """A seeded generator on the device (random ops on the device need one there)."""
    return torch.Generator(device=DEVICE).manual_seed(seed)


def clock():
    """perf_counter once the device has finished what was queued on it."""
    if DEVICE != "cpu":
        torch.cuda.synchronize()
    return time.perf_counter()


def peak_mb():
    """The most device memory tensors held (torch.cuda.max_memory_allocated), or None on the CPU."""
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if DEVICE != "cpu" else None
