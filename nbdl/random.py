"""The global counter-based generator: a seed and a counter offset.

Every draw of n numbers claims counters [offset, offset + n) and advances the
offset, so the values depend only on (seed, counter), never on the thread
count or the device (see ``nbdl.kernels.cpu.random``).
"""


class Generator:
    """A (seed, offset) pair; ``claim(n)`` reserves n counters."""

    def __init__(self, seed=0):
        self.manual_seed(seed)

    def manual_seed(self, seed):
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"manual_seed: seed must be an int, got {type(seed).__name__}")
        self.seed = seed % 2**64
        self.offset = 0
        return self

    def claim(self, n):
        """Return the first counter of n fresh draws and advance past them."""
        start = self.offset
        self.offset += int(n)
        return start

    def get_state(self):
        return {"seed": self.seed, "offset": self.offset}

    def set_state(self, state):
        self.seed = int(state["seed"]) % 2**64
        self.offset = int(state["offset"])


default_generator = Generator(0)


def manual_seed(seed):
    """Seed the global generator (and reset its counter)."""
    return default_generator.manual_seed(seed)


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(state):
    default_generator.set_state(state)
