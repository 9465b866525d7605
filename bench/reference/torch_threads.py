"""
Thread setup for the PyTorch references. Import it before torch: OpenBLAS and OpenMP size their
thread pools when torch loads, and torch.set_num_threads does not reach OpenBLAS.
"""

import argparse
import os
import sys


def cores():
    return len(os.sched_getaffinity(0))


def thread_count(argv):
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--threads", type=int, default=cores())
    return p.parse_known_args(argv)[0].threads


THREADS = thread_count(sys.argv[1:])
os.environ["OPENBLAS_NUM_THREADS"] = str(THREADS)
os.environ["OMP_NUM_THREADS"] = str(THREADS)
# Debian's torch runs its own ops on GNU OpenMP and its matmuls on OpenBLAS's pthreads: two pools
# of one thread per core. OpenMP workers that spin after each op starve the OpenBLAS threads, and
# every small op then takes milliseconds (measured on 2 cores: decode 6.6x, gpt2-sft 1.4x slower).
# Let idle workers sleep; set OMP_WAIT_POLICY=active to see the spinning figures.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
