#!/usr/bin/env python3
"""libcommon's layering: every header says its layer in its first comment
("/* Layer N (name)."), and no module (header or source) includes a header
of a layer above its own. Third-party headers belong to the layer that wraps
them: civetweb only to the service layer, librdkafka, libpq, hiredis and
libcurl to the clients and above."""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2])
INCLUDE = ROOT / "libcommon" / "include" / "tg"
SRC = ROOT / "libcommon" / "src"
LAYER = re.compile(r"\A/\* Layer (\d) \(([a-z ]+)\)\.")
TG_INCLUDE = re.compile(r'^\s*#\s*include\s+"tg/(\w+)\.h"', re.M)
SYS_INCLUDE = re.compile(r"^\s*#\s*include\s+<([\w/.-]+)>", re.M)
# The lowest layer that may include a third-party header.
THIRD_PARTY = {"civetweb.h": 3, "librdkafka/rdkafka.h": 2, "libpq-fe.h": 2,
               "hiredis/hiredis.h": 2, "curl/curl.h": 2}

failures = []
layers = {}
for header in sorted(INCLUDE.glob("*.h")):
    m = LAYER.match(header.read_text(encoding="utf-8"))
    if not m:
        failures.append(f"{header.name}: the first comment does not start with '/* Layer N (name).'")
    else:
        layers[header.stem] = int(m.group(1))

files = sorted(INCLUDE.glob("*.h")) + sorted(SRC.glob("*.c"))
for path in files:
    own = layers.get(path.stem)
    if own is None:
        if path.suffix == ".c":
            failures.append(f"{path.name}: no header tg/{path.stem}.h says its layer")
        continue
    text = path.read_text(encoding="utf-8")
    for name in TG_INCLUDE.findall(text):
        if name not in layers:
            failures.append(f"{path.name}: includes tg/{name}.h, which states no layer")
        elif layers[name] > own:
            failures.append(f"{path.name} (layer {own}) includes tg/{name}.h (layer {layers[name]})")
    for name in SYS_INCLUDE.findall(text):
        if own < THIRD_PARTY.get(name, 0):
            failures.append(f"{path.name} (layer {own}) includes <{name}> "
                            f"(layer {THIRD_PARTY[name]} or above)")

for f in failures:
    print(f)
print(f"{len(files)} files, {len(layers)} headers with a layer, {len(failures)} problems")
sys.exit(1 if failures else 0)
