"""Writes small pure-Python wheels (a zip with a dist-info) for offline pip tests.

stdin: JSON list of {"name", "version", "requires": [...], "files": {"pkg/mod.py": "text"}}; argv[1]: out dir.
"""

import base64
import hashlib
import json
import os
import sys
import zipfile


def record_line(path: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def write_wheel(spec: dict, out_dir: str) -> str:
    dist = spec["name"].replace("-", "_")
    info = f"{dist}-{spec['version']}.dist-info"
    metadata = "\n".join(
        ["Metadata-Version: 2.1", f"Name: {spec['name']}", f"Version: {spec['version']}"]
        + [f"Requires-Dist: {req}" for req in spec.get("requires", [])]
    ) + "\n"
    entries = dict(spec.get("files", {}))
    entries[f"{info}/METADATA"] = metadata
    entries[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: fnwm-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    path = os.path.join(out_dir, f"{dist}-{spec['version']}-py3-none-any.whl")
    records = []
    with zipfile.ZipFile(path, "w") as whl:
        for name, text in entries.items():
            data = text.encode()
            whl.writestr(name, data)
            records.append(record_line(name, data))
        records.append(f"{info}/RECORD,,")
        whl.writestr(f"{info}/RECORD", "\n".join(records) + "\n")
    return path


if __name__ == "__main__":
    os.makedirs(sys.argv[1], exist_ok=True)
    for spec in json.load(sys.stdin):
        print(write_wheel(spec, sys.argv[1]))
