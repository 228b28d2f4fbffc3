"""Shared by the benchmarks: machine facts printed next to every figure."""
import os
import platform

import psutil


def machine() -> str:
  load = os.getloadavg()[0]
  return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load avg (1 min) {load:.2f} "
          f"(other CPU users distort timings: run on a quiet machine)")
