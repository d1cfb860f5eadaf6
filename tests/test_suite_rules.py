"""The suite's own rules (issue #22): a clone's tests run exactly what CI's run, and none fails for a slow machine.

- every picture a test reads is in the repository (tests/images, small and described), none in ../shared;
- a wall-clock bound in a test is a hang guard (HANG_GUARD or at least 60 s), never a measure of speed:
  how fast is the benchmarks' to say.
"""

import re
from pathlib import Path

from PIL import Image

TESTS = Path(__file__).resolve().parent
IMAGES = TESTS / "images"
HANG_GUARD = 60  # seconds: the shortest bound a test may set on the wall clock


def suite_sources():
    return sorted(p for p in TESTS.glob("*.py") if p.name != Path(__file__).name)  # not its own examples


def test_no_test_reads_pictures_from_outside_the_repository():
    outside = [f"{path.name}:{n}" for path in suite_sources()
               for n, line in enumerate(path.read_text().splitlines(), 1)
               if re.search(r"shared[\"'/ )]*images|SHARED_IMAGES|parents\[2\]", line)]
    assert not outside, f"tests that read ../shared/images (skipped in a clone): {outside}"


def test_the_test_pictures_are_small_photographs_each_described():
    pictures = sorted(IMAGES.glob("*.png"))
    assert pictures, "tests/images holds the photographs the tests need"
    assert sum(p.stat().st_size for p in pictures) < 512 * 1024  # well under 1 MB in the repository
    readme = (IMAGES / "README.md").read_text()
    assert "Kodak" in readme and "unrestricted" in readme  # where they come from, and the licence
    for picture in pictures:
        assert f"`{picture.name}`" in readme, f"{picture.name} is not described in tests/images/README.md"
        with Image.open(picture) as image:
            assert image.mode == "RGB" and len(image.getcolors(1 << 24)) > 5000  # a photograph, not a drawing


def wall_clock_bounds(source):
    """(line number, seconds) of each bound a test file sets on the wall clock with a number: ``monotonic() -
    start < N`` on one line, ``elapsed < N`` where ``elapsed = time.monotonic() - ...``, a deadline
    ``monotonic() + N``, and ``wait_until(..., N)``."""
    code = [line.split("#", 1)[0] for line in source.splitlines()]
    clocks = {m for line in code for m in re.findall(r"(\w+) = time\.(?:monotonic|perf_counter)\(\) -", line)}
    number = r"(\d+(?:\.\d+)?)\b"
    elapsed = r"(?:(?:monotonic|perf_counter)\(\) - \w+" + "".join(rf"|\b{c}\b" for c in sorted(clocks)) + ")"
    for n, line in enumerate(code, 1):
        found = re.findall(elapsed + r" *<=? *" + number, line)
        found += re.findall(r"(?:monotonic|perf_counter)\(\) \+ *" + number, line)
        found += re.findall(r"\bwait_until\(.*, *" + number + r"(?:, *step=[\d.]+)?\)", line)
        for seconds in found:
            yield n, float(seconds)


def test_wall_clock_bounds_are_hang_guards():
    short = [f"{path.name}:{n} < {seconds:g} s" for path in suite_sources()
             for n, seconds in wall_clock_bounds(path.read_text()) if seconds < HANG_GUARD]
    assert not short, f"wall-clock bounds under the {HANG_GUARD} s hang guard (a busy machine fails them): {short}"


def test_the_bound_finder_sees_each_kind_of_bound():
    assert list(wall_clock_bounds("    assert time.monotonic() - start < 5\n")) == [(1, 5.0)]
    assert list(wall_clock_bounds("    took = time.monotonic() - t0\n    assert 0.9 < took < 5\n")) == [(2, 5.0)]
    assert list(wall_clock_bounds("    while len(done) < 3 and time.monotonic() < deadline:\n")) == []
    assert list(wall_clock_bounds("    deadline = time.monotonic() + 10\n")) == [(1, 10.0)]
    assert list(wall_clock_bounds("    assert wait_until(lambda: done(x, 3), 8, step=0.5)\n")) == [(1, 8.0)]
    assert list(wall_clock_bounds("    assert time.monotonic() - start < HANG_GUARD  # < 5 in the past\n")) == []
