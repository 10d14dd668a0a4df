# Writes torch_variants.bin (torch.save, zip format) and torch_variants.json (the values
# PyTorch reads back, as float32 lists) for the weights tests:
# float16 and bfloat16 storages, a transposed (non-contiguous) tensor, a view with a
# storage offset, two tensors sharing one storage, an nn.Parameter and a 0-d tensor.
#
#   /usr/bin/python3 gen_torch_variants.py
import collections
import json

import torch

base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8 - 1.25
sd = collections.OrderedDict()
sd["half"] = torch.tensor([1.0, -2.0, 0.5, 65504.0, 2.0 ** -24, -0.0, 3.140625], dtype=torch.float16)
sd["bfloat"] = torch.tensor([1.0, -3.140625, 1e30, -1e-30], dtype=torch.bfloat16)
sd["transposed"] = base.t()                 # stride (1, 6)
sd["offset_view"] = base[1:3, 2:5]          # offset 8, stride (6, 1): non-contiguous
sd["row_view"] = base[2]                    # offset 12, contiguous, shares base's storage
sd["param"] = torch.nn.Parameter(torch.linspace(-1, 1, 5))
sd["scalar"] = torch.tensor(4.605170249938965)
sd["half_transposed"] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()
torch.save(sd, "torch_variants.bin")

want = collections.OrderedDict()
for k, v in torch.load("torch_variants.bin").items():
    t = v.detach().float()
    want[k] = {"shape": list(t.shape), "data": t.reshape(-1).tolist()}
with open("torch_variants.json", "w") as f:
    json.dump(want, f, indent=1)
