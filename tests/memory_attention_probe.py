"""Peak memory of one long attention forward, for tests/test_attention.py
(run as a script in a fresh process, without torch):

    python tests/memory_attention_probe.py [L]

B=1 H=8 L=4096 D=64 float32 by default. After a warm-up call on the same
inputs (compiled kernels loaded, the allocator warmed), the peak RSS counter
is reset (``/proc/self/clear_refs``), the forward runs, and the rise of the
peak over the RSS before it is printed in MB: the output, the saved
log-sum-exps and the kernel's tile buffers; no L x L matrix.
"""
import sys

import numpy as np
from nbdl.kernels.cpu.attention import attention


def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024   # kB -> MB
    raise RuntimeError(f"no {field} in /proc/self/status")


def main():
    length = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    heads, dim = 8, 64
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((heads, length, dim), dtype=np.float32) for _ in range(3))
    attention(q[:, :300], k[:, :600], v[:, :600], None, None, False, dim ** -0.5, 1.0, 0, 0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")             # reset the peak RSS to the current RSS
    before = status("VmRSS")
    out, _ = attention(q, k, v, None, None, False, dim ** -0.5, 1.0, 0, 0)
    rise = status("VmHWM") - before
    print(f"B=1 H={heads} L={length} D={dim}: inputs {3 * q.nbytes / 2**20:.0f} MB, output "
          f"{out.nbytes / 2**20:.0f} MB, peak RSS rise MB: {rise:.1f}")


if __name__ == "__main__":
    main()
