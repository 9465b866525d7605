"""PyTorch's bfloat16 and float16 conversions of given float32 values, as a safetensors file.

    python3 bench/reference/half_dtypes.py --input bits.json --output halves.safetensors

bits.json is {"bits": [...]}: float32 values as their uint32 bit patterns (exact, NaN payloads
included). The file holds, each of shape [n]:

    f32        the values (F32)
    bf16, f16  torch's narrowing, .to(torch.bfloat16) and .to(torch.float16) (BF16, F16)
    bf16.f32, f16.f32   torch's widening of those back to float32 (F32)

The safetensors format is written by hand (8-byte little-endian header length, JSON header, data),
as PyTorch 1.13 has no safetensors module.
"""
import argparse
import json
import struct

import numpy as np
import torch

CODES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def raw_bytes(t: torch.Tensor) -> bytes:
    # numpy has no bfloat16: take 16-bit floats' bits as int16.
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return t.contiguous().numpy().tobytes()


def write_safetensors(path: str, tensors: dict) -> None:
    header, chunks, offset = {}, [], 0
    for name, t in tensors.items():
        data = raw_bytes(t)
        header[name] = {"dtype": CODES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    with open(args.input) as f:
        bits = np.array(json.load(f)["bits"], dtype=np.uint32)
    f32 = torch.from_numpy(bits.view(np.float32).copy())
    bf16, f16 = f32.to(torch.bfloat16), f32.to(torch.float16)
    write_safetensors(args.output, {"f32": f32, "bf16": bf16, "f16": f16, "bf16.f32": bf16.float(), "f16.f32": f16.float()})


if __name__ == "__main__":
    main()
