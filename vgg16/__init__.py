"""The MindSpore model-zoo VGG16 recipe (arXiv 1409.1556): data, model, training, evaluation."""

import os

# MindSpore's CPU convolutions come from oneDNN. On this platform's AVX-512 Xeons its AVX-512
# kernels ran about 70x slower than its AVX2 ones (5 s vs 0.07 s for one 64-channel 3x3 conv
# at 32 px, batch 64), so cap the ISA unless the user has chosen one. It must be set before
# MindSpore loads oneDNN, hence here, before any submodule imports mindspore.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
