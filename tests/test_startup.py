"""The compress path's import budget: what a still image needs, and nothing a sweep, a palette file, a colour
profile or a thread pool needs (each was start-up time for every run; benchmarks/bench_startup.py times it)."""

import subprocess
import sys

from PIL import Image

# Imported by the path of a still PNG compress before this budget, none of them used by it.
NOT_NEEDED = ("kcolors.sweep", "csv", "json", "tempfile", "shutil", "hashlib", "PIL.ImageCms", "PIL.ImageOps",
              "concurrent.futures", "kcolors.batch", "kcolors.web", "kcolors.plots", "kcolors.commands.sweep",
              "sklearn", "matplotlib", "dask", "pyvips", "skimage",
              # Image.open imports these decoders (and subprocess, for JPEG's djpeg) whatever the file is
              "PIL.JpegImagePlugin", "PIL.GifImagePlugin", "PIL.BmpImagePlugin", "PIL.IcoImagePlugin", "subprocess")


def modules_after(args, tmp_path):
    code = ("import sys\nfrom kcolors.cli import main\ncode = main(sys.argv[1:])\n"
            "print('--', code)\nprint('\\n'.join(sorted(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    marker = max(i for i, line in enumerate(lines) if line.startswith("-- "))  # after what the command printed
    return int(lines[marker][3:]), set(lines[marker + 1:])


def test_a_still_compress_imports_only_what_it_needs(tmp_path):
    Image.new("RGB", (1, 1), (9, 9, 9)).save(tmp_path / "one.png")
    code, modules = modules_after(["one.png", "-o", "out.png", "-q"], tmp_path)
    assert code == 0 and (tmp_path / "out.png").exists()
    assert sorted(m for m in NOT_NEEDED if m in modules) == []


def test_what_is_left_out_comes_when_it_is_needed(tmp_path):
    # a small photograph is split over the kernels' threads, --json prints JSON: each imports what it needs
    Image.effect_mandelbrot((512, 512), (-2, -1.5, 1, 1.5), 100).convert("RGB").save(tmp_path / "m.png")
    code, modules = modules_after(["m.png", "-o", "out.png", "-k", "8", "--json", "-q"], tmp_path)
    assert code == 0 and {"json", "concurrent.futures"} <= modules
    assert "numpy.random" not in modules  # 18 ms: the starts' seeds and the ΔE sample are drawn without it


def test_a_jpeg_or_a_broken_png_still_takes_pillows_open(tmp_path):
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "red.jpg")
    code, modules = modules_after(["red.jpg", "-o", "out.png", "-q"], tmp_path)
    assert code == 0 and "PIL.JpegImagePlugin" in modules
    good = (tmp_path / "red.jpg").read_bytes()
    (tmp_path / "fake.png").write_bytes(b"\x89PNG\r\n\x1a\n" + good)  # PNG's magic, then no PNG chunk
    done = subprocess.run([sys.executable, "-m", "kcolors", "compress", "fake.png", "-o", "out2.png"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 3 and done.stderr.count("\n") == 1 and "fake.png" in done.stderr, done.stderr
    assert not (tmp_path / "out2.png").exists()
