"""Start-up: `import nbdl`, and the first training step of a fresh process with
a cold Numba cache (a new NUMBA_CACHE_DIR) and with a warm one."""
import os
import subprocess
import sys
import tempfile

FIRST_STEP = """
import nbdl, nbdl.nn as nn, nbdl.nn.functional as F
x, y = nbdl.randn(64, 64), nbdl.randint(0, 10, (64,))
model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
opt = nbdl.optim.Adam(model.parameters(), lr=1e-3)
loss = F.cross_entropy(model(x), y)
loss.backward()
opt.step()
"""


class Startup:
    timeout = 300

    def setup(self):
        self.warm_dir = tempfile.mkdtemp(prefix="nbdl-warm-cache-")
        env = dict(os.environ, NUMBA_CACHE_DIR=self.warm_dir)
        subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, check=True)

    def timeraw_import(self):
        return "import nbdl"

    def timeraw_first_step_warm_cache(self):
        return f"import os; os.environ['NUMBA_CACHE_DIR'] = {self.warm_dir!r}\n" + FIRST_STEP

    def timeraw_first_step_cold_cache(self):
        return ("import os, tempfile; os.environ['NUMBA_CACHE_DIR'] = tempfile.mkdtemp()\n"
                + FIRST_STEP)
