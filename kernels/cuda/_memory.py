"""A caching allocator for the GPU's memory: Numba's own allocator calls
cuMemAlloc for every new array and queues a cuMemFree for every dead one,
flushing the queue every ten arrays; cuMemFree waits for the device, so the
host stalls behind the GPU every few ops (as PyTorch's caching allocator
avoids, so does this one). Here a dead array's block goes back to a free
list of its size class and the next array of that class reuses it.

Reuse without waiting is safe because every nbdl kernel and copy runs on the
default stream, in order: a kernel that writes a reused block starts after
every kernel that read it before it was freed. An allocation that finds the
device full returns every cached block to the driver and tries once more.

Installed as Numba's External Memory Management plugin when the kernels are
first imported (``install``), before the first CUDA context exists, unless
``NBDL_CUDA_CACHING_ALLOCATOR=0`` or ``NUMBA_CUDA_MEMORY_MANAGER`` names
another plugin. ``empty_cache()`` hands the cached blocks back to the driver
(``nbdl.cuda.empty_cache``).
"""
import os
import weakref

from numba import config, cuda

SMALL = 1 << 20        # sizes below round up to 512 bytes, larger ones to 1/8 of their octave


def size_class(size):
    """The block size that serves ``size`` bytes (waste at most 512 B or 12.5%)."""
    if size <= SMALL:
        return max(512, -(-size // 512) * 512)
    step = 1 << (size.bit_length() - 4)
    return -(-size // step) * step


if not config.ENABLE_CUDASIM:
    from numba.cuda.cudadrv.driver import (AutoFreePointer, CudaAPIError, GetIpcHandleMixin,
                                           HostOnlyCUDAMemoryManager, MemoryInfo, binding, driver)

    class CachingMemoryManager(GetIpcHandleMixin, HostOnlyCUDAMemoryManager):
        """Numba EMM plugin: device blocks kept in free lists by size class."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.free_blocks = {}     # size class -> [device pointer]
            self.cached_bytes = 0

        def initialize(self):
            if self.deallocations.memory_capacity == 0:   # (as Numba's: flush host frees at a fraction of it)
                self.deallocations.memory_capacity = self.get_memory_info().total

        def memalloc(self, size):
            block = size_class(size)
            blocks = self.free_blocks.get(block)
            if blocks:
                ptr = blocks.pop()
                self.cached_bytes -= block
            else:
                ptr = self._new_block(block)
            mem = AutoFreePointer(weakref.proxy(self.context), ptr, size,
                                  finalizer=self._give_back(ptr, block))
            self.allocations[int(ptr)] = mem   # (the array holds only a weak proxy of mem)
            return mem.own()

        def _new_block(self, block):
            try:
                return driver.cuMemAlloc(block)
            except CudaAPIError as e:
                if e.code != binding.CUresult.CUDA_ERROR_OUT_OF_MEMORY:
                    raise
                self.empty_cache()
                return driver.cuMemAlloc(block)

        def _give_back(self, ptr, block):
            allocations, free_blocks = self.allocations, self.free_blocks

            def give_back():
                allocations.pop(int(ptr), None)
                free_blocks.setdefault(block, []).append(ptr)
                self.cached_bytes += block
            return give_back

        def empty_cache(self):
            """cuMemFree every cached block (after the queued kernels that may use them)."""
            if self.cached_bytes:
                driver.cuCtxSynchronize()
                for blocks in self.free_blocks.values():
                    for ptr in blocks:
                        driver.cuMemFree(ptr)
                self.free_blocks.clear()
                self.cached_bytes = 0

        def reset(self):
            super().reset()
            self.empty_cache()

        def get_memory_info(self):
            free, total = driver.cuMemGetInfo()
            return MemoryInfo(free=free, total=total)

        @property
        def interface_version(self):
            return 1


def install():
    """Make CachingMemoryManager Numba's allocator for contexts created from now on
    (a no-op in the simulator, when switched off, or when another plugin is named)."""
    if (config.ENABLE_CUDASIM or os.environ.get("NBDL_CUDA_CACHING_ALLOCATOR", "1") == "0"
            or config.CUDA_MEMORY_MANAGER != "default"):
        return
    cuda.set_memory_manager(CachingMemoryManager)


def empty_cache():
    """Hand the current context's cached blocks back to the driver."""
    manager = cuda.current_context().memory_manager
    if hasattr(manager, "empty_cache"):
        manager.empty_cache()
