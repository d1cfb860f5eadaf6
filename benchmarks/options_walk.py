"""Follow `kcolors compress`'s options from kcolors.cli.main down to the k-means fit.

Run:  python benchmarks/options_walk.py [-v] [--case=still|animated|target]
      (PYTHONPATH picks which kcolors is measured; the animated case is a 3-frame GIF, the target case
      --target-delta-e 3: the routes where the options once went into animation.py and sweep.py)

Issue 21 asks that the walk be at most 10 modules and 10 climbs back up the layers.

Definitions (all counted from the call to kcolors.cli.main until the fit starts):
- fit start: the first Python call into kcolors.kmeans.{fit, fit_with_alpha, local_optima}
  (the fit entries; Lloyd's iterations run below them).
- a call: a sys.setprofile 'call' event of a Python function whose module (frame.f_globals['__name__'])
  is kcolors or kcolors.*; module-level code ('<module>', i.e. a lazy import being executed) is not a call.
  Generator resumptions also raise 'call'; they are counted separately and left out of the main numbers.
- its caller: the nearest frame up the stack that is kcolors code (frames of the stdlib / numpy /
  Pillow in between are skipped, so a callback passed down and called back counts).
- layer: the line number of the module's top-level name (kcolors.X.Y -> X; the package itself -> 'kcolors')
  in the "Layers:" list of kcolors.__doc__, read the way tests/test_imports.py reads it.
- climb: a call whose caller module is in a LOWER layer than the callee module (a call up the layers).
- upward return (second reading of "climb back up"): a 'return' of a kcolors function to a caller
  (nearest kcolors frame) in a HIGHER layer; generators' yields/ends are counted apart.
- whole run: the same counts from kcolors.cli.main's call to its return (not only until the fit).
- modules on the stack at the fit: distinct kcolors modules of the frames from kcolors.cli.main to the fit.
- modules entered: distinct kcolors modules with at least one call before the fit starts.
- options carried (the issue's own reading, "following compress's args through the calls"): calls before the fit
  that are handed the options themselves (an argparse Namespace, or the options record: Options, batch's
  Settings, the web's CompressOptions) as an argument; the modules they enter; those of them that climb; and
  returns up the layers from a function that was handed them.
"""
import argparse
import dis
import importlib
import os
import pkgutil
import sys
import tempfile
import threading
from collections import Counter

import numpy as np
from PIL import Image

import kcolors
import kcolors.cli

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
from test_imports import layers  # noqa: E402 -- the layer reader the import test uses

# Import every kcolors module first, so that the run measures calls, not import-time code.
PREIMPORT_FAILED = []
for _info in pkgutil.walk_packages(kcolors.__path__, "kcolors."):
    if _info.name.endswith("__main__"):  # python -m kcolors: importing it runs the demo
        continue
    try:
        importlib.import_module(_info.name)
    except Exception as _error:  # an optional dependency missing: that module is imported lazily, if at all
        PREIMPORT_FAILED.append(f"{_info.name} ({type(_error).__name__})")

FIT_ENTRIES = {"fit", "fit_with_alpha", "local_optima"}
OPTION_RECORDS = {"Options", "Settings", "CompressOptions"}


def carries_options(frame):
    """Whether this call was handed the options: a Namespace or an options record among its arguments."""
    code = frame.f_code
    count = code.co_argcount + code.co_kwonlyargcount + bool(code.co_flags & 0x04) + bool(code.co_flags & 0x08)
    values = [frame.f_locals.get(n) for n in code.co_varnames[:count]]
    values += [v for x in values if isinstance(x, (tuple, dict)) for v in (x.values() if isinstance(x, dict) else x)]
    return any(isinstance(v, argparse.Namespace) or type(v).__name__ in OPTION_RECORDS for v in values)


LAYERS = layers()  # read as tests/test_imports.py reads them: one reader of the package docstring


def modname(frame):
    return frame.f_globals.get("__name__", "") or ""


def is_kc(name):
    return name == "kcolors" or name.startswith("kcolors.")


def layer_of(name):
    top = "kcolors" if name == "kcolors" else name.split(".")[1]
    return LAYERS.get(top, LAYERS.get(top.lstrip("_")))


def kc_caller(frame):
    caller = frame.f_back
    while caller is not None and not (is_kc(modname(caller)) and caller.f_code.co_name != "<module>"):
        caller = caller.f_back
    return caller


def at_import(frame):
    f = frame
    while f is not None:
        if f.f_code.co_name == "<module>" and is_kc(modname(f)):
            return True
        f = f.f_back
    return False


class Walk:
    def on_return(self, frame):
        name = modname(frame)
        if not self.active or not is_kc(name) or frame.f_code.co_name == "<module>" or at_import(frame):
            return
        caller = kc_caller(frame)
        if caller is None:
            return
        lo, hi = layer_of(name), layer_of(modname(caller))
        if lo is not None and hi is not None and lo < hi:
            if not self.done and id(frame) in self.carrying:
                self.carried_returns_up += 1
            if frame.f_code.co_flags & 0x2A0:     # a generator's yield or end: counted apart
                if not self.done:
                    op = dis.opname[frame.f_code.co_code[frame.f_lasti]]
                    self.gen_events[op] += 1
                self.returns_up_gen += not self.done
                return
            if not self.done:
                self.returns_up[(name, modname(caller))] += 1
            self.whole_returns_up += 1
            self.whole_return_edges[(name, modname(caller))] += 1

    def after_fit(self, frame):
        name = modname(frame)
        if not self.active or not is_kc(name) or frame.f_code.co_name == "<module>" or at_import(frame):
            return
        if name not in self.whole_entered:
            self.whole_entered.append(name)
        caller = kc_caller(frame)
        if caller is not None:
            lo, hi = layer_of(modname(caller)), layer_of(name)
            if lo is not None and hi is not None and lo < hi:
                self.whole_climbs += 1
                self.whole_climb_edges[(modname(caller), name, frame.f_code.co_qualname)] += 1

    def __init__(self):
        self.active = False
        self.done = False
        self.entered = []            # modules in order of first call
        self.functions = {}          # module -> Counter of functions called
        self.calls = 0
        self.resumes = 0
        self.climbs = Counter()      # (caller module, callee module) -> count
        self.climbs_with_resumes = 0
        self.lazy_imports = []
        self.unlayered = set()
        self.stack_at_fit = None
        self.seen_gen = set()
        self.returns_up = Counter()  # (callee module, caller module) -> returns from a lower layer to a higher one
        self.whole_entered = []
        self.whole_climbs = 0
        self.whole_returns_up = 0
        self.returns_up_gen = 0
        self.gen_events = Counter()
        self.whole_return_edges = Counter()
        self.whole_climb_edges = Counter()
        self.keep = []               # keep generator frames alive so ids stay unique
        self.carried = []            # modules handed the options, in order
        self.carried_climbs = 0
        self.carried_returns_up = 0
        self.carrying = set()        # ids of live frames handed the options

    def profile(self, frame, event, arg):
        if event == "return":
            self.on_return(frame)
            return
        if event != "call":
            return
        if self.done:
            self.after_fit(frame)
            return
        code = frame.f_code
        name = modname(frame)
        if not self.active:
            if name == "kcolors.cli" and code.co_name == "main":
                self.active = True
            else:
                return
        if not is_kc(name):
            return
        f = frame
        while f is not None:             # import-time code (a module body and what it calls) is not counted
            if f.f_code.co_name == "<module>" and is_kc(modname(f)):
                if f is frame and name not in self.lazy_imports:
                    self.lazy_imports.append(name)
                return
            f = f.f_back
        resume = False
        if code.co_flags & 0x2A0:    # generator / coroutine / async generator
            if id(frame) in self.seen_gen:
                resume = True
            else:
                self.seen_gen.add(id(frame))
                self.keep.append(frame)
        caller = frame.f_back
        while caller is not None and not (is_kc(modname(caller)) and caller.f_code.co_name != "<module>"):
            caller = caller.f_back
        lo, hi = (layer_of(modname(caller)) if caller else None), layer_of(name)
        for m, l in ((name, hi), (modname(caller) if caller else None, lo)):
            if m and l is None:
                self.unlayered.add(m)
        climb = caller is not None and lo is not None and hi is not None and lo < hi
        if resume:
            self.resumes += 1
            self.climbs_with_resumes += climb
            return
        self.calls += 1
        if name not in self.entered:
            self.entered.append(name)
        self.functions.setdefault(name, Counter())[code.co_qualname] += 1
        if carries_options(frame):
            self.carrying.add(id(frame))
            self.keep.append(frame)
            if name not in self.carried:
                self.carried.append(name)
            self.carried_climbs += climb
        if name not in self.whole_entered:
            self.whole_entered.append(name)
        if climb:
            self.whole_climbs += 1
            self.climbs[(modname(caller), name)] += 1
            self.climbs_with_resumes += 1
        if name == "kcolors.kmeans" and code.co_name in FIT_ENTRIES:
            stack, f = [], frame
            while f is not None:
                if is_kc(modname(f)):
                    stack.append((modname(f), f.f_code.co_qualname))
                if modname(f) == "kcolors.cli" and f.f_code.co_name == "main":
                    break
                f = f.f_back
            self.stack_at_fit = stack[::-1]
            self.done = True


def make_input(work, case):
    """The image each case flattens: a 64x48 gradient with noise; 'animated' makes it a 3-frame GIF."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:48, 0:64]
    pixels = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1) + rng.integers(0, 16, (48, 64, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    if case == "animated":
        path = os.path.join(work, "in.gif")
        frames = [image.rotate(90 * i) for i in range(3)]
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=0)
        return path, os.path.join(work, "out.gif"), []
    path = os.path.join(work, "in.png")
    image.save(path)
    return path, os.path.join(work, "out.png"), (["--target-delta-e", "3"] if case == "target" else [])


CASES = ("still", "animated", "target")


def main():
    holder = tempfile.TemporaryDirectory(prefix="walk-")
    work = holder.name
    case = next((a.removeprefix("--case=") for a in sys.argv if a.startswith("--case=")), "still")
    if case not in CASES:
        print("--case= takes", ", ".join(CASES))
        return 2
    img, out, extra = make_input(work, case)
    print("case:", case)

    walk = Walk()
    threading.setprofile(walk.profile)
    sys.setprofile(walk.profile)
    try:
        code = kcolors.cli.main(["compress", img, "-k", "8", "-o", out, "-q", *extra])
    finally:
        sys.setprofile(None)
        threading.setprofile(None)

    print("kcolors:", os.path.dirname(kcolors.__file__), "| python", sys.version.split()[0])
    if PREIMPORT_FAILED:
        print("not pre-imported:", ", ".join(PREIMPORT_FAILED))
    print("exit code:", code, "| output written:", os.path.exists(out))
    if walk.stack_at_fit is None:
        print("FIT NOT REACHED (no call to kcolors.kmeans.%s in this process)" % "/".join(sorted(FIT_ENTRIES)))
        return 1
    stack_mods = list(dict.fromkeys(m for m, _ in walk.stack_at_fit))
    print(f"\nstack at the fit ({len(walk.stack_at_fit)} kcolors frames, {len(stack_mods)} modules):")
    for m, q in walk.stack_at_fit:
        print(f"    {m}.{q}  (layer {layer_of(m)})")
    print("modules on the stack:", ", ".join(m.removeprefix("kcolors.") or m for m in stack_mods))
    print(f"\nmodules entered before the fit: {len(walk.entered)}")
    print("   ", ", ".join(m.removeprefix("kcolors.") for m in walk.entered))
    if "-v" in sys.argv:
        for m in walk.entered:
            print(f"      {m} (layer {layer_of(m)}): " + ", ".join(f"{q} x{n}" for q, n in walk.functions[m].items()))
    print(f"calls before the fit: {walk.calls} (+{walk.resumes} generator resumptions)")
    print(f"climbs (caller in a lower layer than callee): {sum(walk.climbs.values())}"
          f" over {len(walk.climbs)} distinct edges"
          f" [{walk.climbs_with_resumes} counting generator resumptions]")
    for (a, b), n in sorted(walk.climbs.items(), key=lambda kv: -kv[1]):
        print(f"    {n:4d}  {a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})")
    print(f"returns from a lower layer to a higher one before the fit: {sum(walk.returns_up.values())}"
          f" over {len(walk.returns_up)} distinct edges (+{walk.returns_up_gen} from generators: {dict(walk.gen_events)})")
    if "-v" in sys.argv:
        for (a, b), n in sorted(walk.returns_up.items(), key=lambda kv: -kv[1]):
            print(f"    {n:4d}  {a} (layer {layer_of(a)}) returns to {b} (layer {layer_of(b)})")
    print(f"\noptions carried (calls handed the options record or a Namespace): {len(walk.carried)} modules,"
          f" {walk.carried_climbs} climbs, {walk.carried_returns_up} returns up the layers")
    print("   ", ", ".join(m.removeprefix("kcolors.") for m in walk.carried))
    print(f"whole run (until main returns): {len(walk.whole_entered)} modules entered, {walk.whole_climbs} climbs,"
          f" {walk.whole_returns_up} returns upward")
    print(f"    whole-run distinct upward-return edges: {len(walk.whole_return_edges)}")
    if "-v" in sys.argv:
        for (a, b, q), n in walk.whole_climb_edges.items():
            print(f"    climb after the fit: {n} x {a} -> {b}.{q}")
    print("    whole-run modules:", ", ".join(m.removeprefix("kcolors.") for m in walk.whole_entered))
    if walk.lazy_imports:
        print("modules imported during the run (not counted):", ", ".join(walk.lazy_imports))
    if walk.unlayered:
        print("modules with no layer in the docstring (not counted as climbs):", ", ".join(sorted(walk.unlayered)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
