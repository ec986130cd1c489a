"""A real PyTorch DataLoader over the trajectory set, as a user would write it.

Run by torch-loader.ts with Debian's /usr/bin/python3 (python3-torch, python3-h5py,
python3-boto3): `torch_loader.py CONFIG.json`. Each sample is one HDF5 episode. Over a
POSIX location the Dataset opens it with h5py on the path and reads every dataset in it
(camera images, qpos, action); over S3 it GETs the whole object with boto3 and opens the
bytes with h5py. Every sample's file bytes are checked against the CRC32 the caller
computed from the source (zlib.crc32 is the same plain CRC32 as @node-rs/crc32); over
POSIX that is a second, sequential read of the file after h5py's, so it is counted in the
wall time too. A mismatch fails the run. Prints one JSON line with the result.
"""

import io
import json
import os
import sys
import time
import zlib

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def read_all_datasets(h5):
    """Reads every dataset in the episode into memory; returns (images, qpos, bytes decoded)."""
    arrays = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    h5.visititems(visit)
    decoded = sum(a.nbytes for a in arrays.values())
    cams = sorted(name for name in arrays if name.startswith("observations/images/"))
    images = np.stack([arrays[c] for c in cams]) if cams else np.zeros((0,), dtype=np.uint8)
    qpos = arrays.get("observations/qpos", np.zeros((0,), dtype=np.float32))
    return images, qpos, decoded


class EpisodeDataset(Dataset):
    def __init__(self, config):
        self.location = config["location"]
        self.files = config["files"]
        self._client = None
        self._client_pid = None

    def __len__(self):
        return len(self.files)

    def _s3(self):
        # boto3 clients are not fork-safe: one per DataLoader worker process.
        if self._client is None or self._client_pid != os.getpid():
            import boto3
            from botocore import UNSIGNED
            from botocore.config import Config

            loc = self.location
            creds = loc.get("credentials")
            options = {"s3": {"addressing_style": "path"}, "retries": {"max_attempts": 3}, "max_pool_connections": 4}
            if creds:
                config = Config(**options)
                self._client = boto3.client(
                    "s3",
                    endpoint_url=loc["endpoint"],
                    region_name="auto",
                    aws_access_key_id=creds["accessKeyId"],
                    aws_secret_access_key=creds["secretAccessKey"],
                    config=config,
                )
            else:
                # The agent's loopback endpoint takes unsigned requests.
                config = Config(signature_version=UNSIGNED, **options)
                self._client = boto3.client("s3", endpoint_url=loc["endpoint"], region_name="auto", config=config)
            self._client_pid = os.getpid()
        return self._client

    def __getitem__(self, index):
        entry = self.files[index]
        loc = self.location
        if loc["kind"] == "posix":
            path = os.path.join(loc["root"], entry["name"])
            with h5py.File(path, "r") as h5:
                images, qpos, decoded = read_all_datasets(h5)
            with open(path, "rb") as f:
                verify(entry, f.read())
        else:
            got = self._s3().get_object(Bucket=loc["bucket"], Key=loc["prefix"] + entry["name"])
            raw = got["Body"].read()
            verify(entry, raw)
            with h5py.File(io.BytesIO(raw), "r") as h5:
                images, qpos, decoded = read_all_datasets(h5)
        return {"images": torch.from_numpy(images), "qpos": torch.from_numpy(np.asarray(qpos)), "bytes": entry["bytes"], "decoded": decoded}


def verify(entry, raw):
    """The file's bytes are the source's: same length, same CRC32; anything else fails the run."""
    if len(raw) != entry["bytes"] or (zlib.crc32(raw) & 0xFFFFFFFF) != entry["crc32"]:
        raise ValueError(f"sample bytes do not match the source: {entry['name']} ({len(raw)} of {entry['bytes']} bytes)")

def collate_whole(batch):
    """Episodes differ in length: keep each one whole rather than padding a batch."""
    return batch


def main():
    with open(sys.argv[1]) as f:
        config = json.load(f)
    # Two cores here: each worker decoding with many intra-op threads would only contend.
    torch.set_num_threads(1)
    dataset = EpisodeDataset(config)
    workers = int(config["numWorkers"])
    # Older torch refuses prefetch_factor without worker processes, even as None.
    extra = {"prefetch_factor": 2} if workers > 0 else {}
    loader = DataLoader(
        dataset,
        batch_size=1,
        shuffle=True,
        num_workers=workers,
        collate_fn=collate_whole,
        **extra,
    )
    started = time.perf_counter()
    samples = 0
    total_bytes = 0
    decoded = 0
    for batch in loader:
        for sample in batch:
            samples += 1
            total_bytes += sample["bytes"]
            decoded += sample["decoded"]
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "samples": samples,
                "seconds": seconds,
                "samplesPerSec": samples / seconds if seconds > 0 else 0,
                "mibPerSec": total_bytes / 2**20 / seconds if seconds > 0 else 0,
                "verifiedSamples": samples,
                "decodedBytes": decoded,
                "torch": torch.__version__,
                "h5py": h5py.__version__,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
