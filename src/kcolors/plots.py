"""Plots: the quality-against-k curve and the pixels as points in colour space.

The curve and the PNG/SVG/PDF space plot are matplotlib figures made with the object API on the Agg backend
(no window, no global pyplot state); matplotlib is imported only when a plot is asked for. The interactive
colour-space plot is one self-contained HTML file: the points as JSON and a small canvas renderer, so it opens
offline with no network.
"""

import html
import io
import json
import math
from pathlib import Path

import numpy as np

from .colorspace import fitting_space, to_space
from .errors import UsageError
from .output import write_bytes

FIGURE_FORMATS = (".png", ".svg", ".pdf")
SPACE_SAMPLE = 20_000  # points drawn in a colour-space plot


def _figure(width, height, *, dpi=100):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, *, force=False):
    """Write a matplotlib figure as PNG, SVG or PDF (from the extension), atomically; return the bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lower().lstrip("."), dpi=fig.dpi)
    write_bytes(path, buffer.getvalue(), force=force)
    return buffer.tell()


def curve_figure(ks, psnr, delta_e, *, knee=None, title=None, tail=None):
    """PSNR and mean ΔE2000 against k: PSNR (dB) on the left axis, ΔE on the right; 800x500 px.

    Infinite PSNR (lossless) is left out of the line. ``tail``, if given, is a
    second ΔE curve (the 90th percentile of the pixels' ΔE2000, which
    ``--suggest`` takes the knee of), drawn dotted. ``knee``, if given, is
    marked with a dashed vertical line, a ring on the ΔE curve (``tail`` if
    given) and a label beside the ring, inside the plot. Returns the Figure
    (its ``axes[0]`` is the PSNR axis, ``axes[1]`` the ΔE axis).
    """
    fig = _figure(800, 500)
    ax = fig.add_subplot()
    ks = np.asarray(ks)
    psnr = np.array([np.nan if p is None or math.isinf(p) else p for p in psnr], dtype=np.float64)
    ax.plot(ks, psnr, "o-", color="tab:blue", label="PSNR")
    ax.set_xlabel("k (colours)")
    ax.set_ylabel("PSNR (dB)", color="tab:blue")
    ax.tick_params(axis="y", colors="tab:blue")
    right = ax.twinx()
    right.plot(ks, delta_e, "s-", color="tab:red", label="mean ΔE2000")
    if tail is not None:
        right.plot(ks, tail, "^:", color="tab:red", label="90th percentile ΔE2000")
        lines = ax.get_lines() + right.get_lines()
        right.legend(lines, [line.get_label() for line in lines], loc="upper right", fontsize=9)
    right.set_ylabel("mean ΔE2000" if tail is None else "ΔE2000", color="tab:red")
    right.tick_params(axis="y", colors="tab:red")
    if knee is not None:
        ax.axvline(knee, color="grey", linestyle="--")
        _mark_knee(right, ks, np.asarray(delta_e if tail is None else tail, dtype=np.float64), knee)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _mark_knee(axis, ks, values, knee):
    """Ring the knee's point on ``axis`` and label it beside the point, on the side with room (clear of the axes)."""
    at = int(np.argmin(np.abs(ks - knee)))
    y = values[at]
    if not np.isfinite(y):
        y = np.nanmean(values)
    axis.plot([knee], [y], "o", markersize=14, markerfacecolor="none", markeredgecolor="black", markeredgewidth=1.5)
    left_end, right_end = axis.get_xlim()
    low, high = axis.get_ylim()
    # the curve falls: up and to the right of the point is clear of it, and so is down and to the left
    right = (knee - left_end) <= 0.6 * (right_end - left_end)
    height = (y - low) / (high - low) if high > low else 0.5
    up = height < 0.85 if right else height < 0.15
    axis.annotate(f"knee: k = {knee}", (knee, y), xytext=(14 if right else -14, 14 if up else -14),
                  textcoords="offset points", ha="left" if right else "right", va="bottom" if up else "top",
                  color="black", fontsize=11, bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "grey"},
                  annotation_clip=False)


def space_sample(picture, n=SPACE_SAMPLE, *, seed=0):
    """Up to ``n`` pixel colours of ``picture`` drawn without replacement (seeded), and the total.

    (m, 3) uint8; (m, 4) with each pixel's alpha when the picture has
    transparency (fully transparent pixels are left out: they have no colour).
    """
    rgb = picture.rgb.reshape(-1, 3)
    if picture.mask is not None:
        rgb = np.column_stack([rgb, picture.alpha.reshape(-1)])[picture.mask.reshape(-1)]
    if len(rgb) > n:
        rgb = rgb[np.random.default_rng(seed).choice(len(rgb), size=n, replace=False)]
    return rgb, int(picture.mask.sum()) if picture.mask is not None else picture.rgb.shape[0] * picture.rgb.shape[1]


# Each space's axis names and limits, which hold the whole sRGB cube (OKLab x 100, as the clustering sees it).
# ``blend`` fits in sRGB (colorspace.fitting_space), so its plot is sRGB's.
AXES = {
    "blend": (("Red", "Green", "Blue"), ((0, 255), (0, 255), (0, 255))),
    "rgb": (("Red", "Green", "Blue"), ((0, 255), (0, 255), (0, 255))),
    "lab": (("a* (green-red)", "b* (blue-yellow)", "L* (lightness)"), ((-90, 100), (-110, 100), (0, 100))),
    "oklab": (("a (green-red)", "b (blue-yellow)", "L (lightness)"), ((-35, 35), (-35, 35), (0, 100))),
    "din99": (("a99 (green-red)", "b99 (blue-yellow)", "L99 (lightness)"), ((-30, 40), (-35, 35), (0, 100))),
}


def space_points(colours, space):
    """sRGB colours as coordinates of the plot's axes: (R, G, B) on 0-255, or, in the other spaces of
    :data:`~kcolors.colorspace.SPACES`, (a, b, L) with lightness upwards."""
    if space not in AXES:
        raise UsageError(f"plot space must be one of {', '.join(AXES)}, not {space!r}")
    space = fitting_space(space)
    points = to_space(np.asarray(colours).reshape(-1, 3), space)
    return points if space == "rgb" else points[:, [1, 2, 0]]


def space_figure(colours, total, *, centres=None, space="rgb", title=None):
    """The pixels as points in 3-D colour space, each drawn in its own colour; 800x800 px.

    Parameters
    ----------
    colours : (m, 3) or (m, 4) uint8 array
        The pixels drawn (a sample, see :func:`space_sample`); with alpha, each
        point is drawn as transparent as its pixel, so a soft edge shows as a
        faint cloud.
    total : int
        Pixels in the image (the title says how many of them are shown).
    centres : (k, 3) or (k, 4) uint8 array, optional
        Cluster centres, drawn large with a black edge on top (the transparent
        entry, which has no colour, is left out).
    space : {"blend", "rgb", "lab", "oklab", "din99"}

    Returns
    -------
    matplotlib.figure.Figure
        One 3-D Axes, labelled Red, Green, Blue, each 0-255 (in the other
        spaces: a, b and L upwards).
    """
    centres = _visible(centres)
    points = space_points(np.asarray(colours)[:, :3], space)
    labels, limits = AXES[space]
    fig = _figure(800, 800)
    ax = fig.add_subplot(projection="3d", computed_zorder=False)  # keeps the centres on top
    ax.scatter(points[:, 0], points[:, 1], points[:, 2], c=_with_opacity(colours, 0.8), s=4, depthshade=False,
               linewidths=0)
    if centres is not None and len(centres):
        c = space_points(centres[:, :3], space)
        ax.scatter(c[:, 0], c[:, 1], c[:, 2], c=_with_opacity(centres, 1.0), s=260, edgecolors="black",
                   linewidths=1.5, depthshade=False, zorder=10)
    for axis, name, (low, high) in zip("xyz", labels, limits):
        getattr(ax, f"set_{axis}label")(name, labelpad=12)  # clear of the tick labels
        getattr(ax, f"set_{axis}lim")(low, high)
    # the axes fill the figure: a 3-D Axes otherwise leaves a wide white frame round its box
    fig.subplots_adjust(left=0.0, right=0.93, bottom=0.0, top=1.0)
    ax.set_box_aspect(None, zoom=0.97)
    shown = f"{len(colours):,} of {total:,} pixels shown" if len(colours) < total else f"all {total:,} pixels"
    heading = f"{title}: {shown}" if title else shown
    if centres is not None and len(centres):
        heading += f", {len(centres)} cluster centres"
    ax.set_title(heading, y=0.97)
    return fig


def space_html(colours, total, *, centres=None, space="rgb", title="kcolors"):
    """A self-contained, rotatable 3-D view of the pixels (drag to turn, wheel to zoom), as HTML text.

    The points and a small canvas renderer are inline: no script or style is
    fetched, so the file works offline.
    """
    centres = _visible(centres)
    points = space_points(np.asarray(colours)[:, :3], space)
    centre_points = space_points(centres[:, :3], space) if centres is not None else np.zeros((0, 3))
    labels, _ = AXES[space]
    box, ticks = space_box(np.concatenate([points, centre_points]), space)
    data = {
        "labels": labels, "limits": box, "ticks": ticks, "scale": box_scale(box), "total": total,
        "points": np.round(points, 1).tolist(), "colours": _hex_list(colours),
        "centres": np.round(centre_points, 1).tolist(), "centre_colours": _hex_list(centres) if centres is not None else [],
    }
    shown = f"{len(points):,} of {total:,} pixels shown" if len(points) < total else f"all {total:,} pixels"
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    return _HTML.replace("{{title}}", html.escape(title)).replace("{{shown}}", shown).replace("{{data}}", payload)


def space_box(points, space):
    """The box the HTML view draws: each axis from the cloud's least to its greatest value, widened to the
    next tick (within the space's own limits), and the ticks along each axis.

    Returns ``(limits, ticks)``: three ``[low, high]`` and three lists of tick values.
    """
    _, full = AXES[space]
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    spans = [high - low for low, high in full]
    limits, ticks = [], []
    for axis, (low, high) in enumerate(full):
        if len(points):
            lo, hi = float(points[:, axis].min()), float(points[:, axis].max())
        else:
            lo, hi = low, high
        step = _tick_step(max(hi - lo, spans[axis] / 20))
        lo, hi = max(low, math.floor(lo / step) * step), min(high, math.ceil(hi / step) * step)
        if hi - lo < step:
            lo, hi = max(low, lo - step), min(high, hi + step)
        limits.append([lo, hi])
        first = math.ceil(lo / step) * step
        ticks.append([round(v, 6) for v in np.arange(first, hi + step / 2, step).tolist() if lo <= v <= hi])
    return limits, ticks


def _tick_step(span):
    """A round step (1, 2 or 5 times a power of ten) giving four to seven ticks over ``span``."""
    raw = span / 6
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def box_scale(limits):
    """Pixels per unit of the view's largest half-side, as a fraction of the canvas width: the box fits the
    canvas however it is turned (its circumscribed sphere does), with a margin for the tick labels."""
    half = [(high - low) / 2 for low, high in limits]
    radius = math.sqrt(sum((h / max(half)) ** 2 for h in half))
    return round(0.46 / radius, 4)


def _hex_list(colours):
    """``#rrggbb``, or ``#rrggbbaa`` (which canvas fill styles take) for colours with alpha."""
    return ["#" + "".join(f"{v:02x}" for v in c) for c in np.asarray(colours, dtype=np.uint8).tolist()]


def _visible(centres):
    """Palette entries that have a colour: the transparent entry (alpha 0) left out."""
    if centres is None:
        return None
    centres = np.asarray(centres, dtype=np.uint8)
    return centres[centres[:, 3] > 0] if centres.shape[1] == 4 else centres


def _with_opacity(colours, opacity):
    """(m, 4) matplotlib colours, 0-1: the colours' own alpha times ``opacity``."""
    colours = np.asarray(colours, dtype=np.float64) / 255.0
    alpha = colours[:, 3] if colours.shape[1] == 4 else np.ones(len(colours))
    return np.column_stack([colours[:, :3], alpha * opacity])


_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{title}}</title>
<style>body{margin:0;font:14px sans-serif;background:#fff}p{margin:8px}canvas{display:block;cursor:grab}</style>
</head><body>
<p><b>{{title}}</b>: {{shown}}. Drag to turn, scroll to zoom.</p>
<canvas id="view" width="800" height="800"></canvas>
<script id="kcolors-data" type="application/json">{{data}}</script>
<script>
(function () {
  const D = JSON.parse(document.getElementById("kcolors-data").textContent);
  const canvas = document.getElementById("view"), g = canvas.getContext("2d");
  let yaw = 0.6, pitch = 0.45, zoom = 1.0, drag = null;
  const mid = D.limits.map(l => (l[0] + l[1]) / 2);
  const unit = Math.max(...D.limits.map(l => (l[1] - l[0]) / 2));  // one scale on every axis: no stretching
  function project(p) {  // centre the box on 0, turn it, then an orthographic view
    const x = (p[0] - mid[0]) / unit, y = (p[1] - mid[1]) / unit, z = (p[2] - mid[2]) / unit;
    const x1 = x * Math.cos(yaw) - y * Math.sin(yaw), y1 = x * Math.sin(yaw) + y * Math.cos(yaw);
    const y2 = y1 * Math.cos(pitch) - z * Math.sin(pitch), z2 = y1 * Math.sin(pitch) + z * Math.cos(pitch);
    const s = canvas.width * D.scale * zoom;
    return [canvas.width / 2 + x1 * s, canvas.height / 2 - z2 * s, y2];
  }
  function corner(i, j, k) { return [D.limits[0][i], D.limits[1][j], D.limits[2][k]]; }
  function label(text, p, q) {  // text at p, pushed away from q (the box's centre side)
    const dx = p[0] - q[0], dy = p[1] - q[1], n = Math.hypot(dx, dy) || 1;
    g.fillText(text, p[0] + dx / n * 14, p[1] + dy / n * 14);
  }
  function draw() {
    g.fillStyle = "#fff"; g.fillRect(0, 0, canvas.width, canvas.height);
    g.strokeStyle = "#bbb"; g.lineWidth = 1;
    const edges = [[[0,0,0],[1,0,0]],[[0,0,0],[0,1,0]],[[0,0,0],[0,0,1]],[[1,1,1],[0,1,1]],[[1,1,1],[1,0,1]],
      [[1,1,1],[1,1,0]],[[1,0,0],[1,1,0]],[[1,0,0],[1,0,1]],[[0,1,0],[1,1,0]],[[0,1,0],[0,1,1]],[[0,0,1],[1,0,1]],
      [[0,0,1],[0,1,1]]];
    for (const [a, b] of edges) {
      const p = project(corner(...a)), q = project(corner(...b));
      g.beginPath(); g.moveTo(p[0], p[1]); g.lineTo(q[0], q[1]); g.stroke();
    }
    // ticks and names on an outer edge of each axis: the lowest on screen for the two level axes, the
    // leftmost for the upright one
    const centre = project(mid);
    function edge(i) {
      let best = null, score = -Infinity;
      for (const u of [0, 1]) for (const v of [0, 1]) {
        const at = [0, 0, 0], others = [0, 1, 2].filter(j => j != i);
        at[others[0]] = D.limits[others[0]][u]; at[others[1]] = D.limits[others[1]][v]; at[i] = mid[i];
        const p = project(at), s = i == 2 ? -p[0] : p[1];
        if (s > score) { score = s; best = at; }
      }
      return best;
    }
    g.fillStyle = "#444"; g.font = "12px sans-serif"; g.textAlign = "center"; g.textBaseline = "middle";
    D.ticks.forEach((ticks, i) => {
      const base = edge(i);
      for (const t of ticks) {
        const at = base.slice(); at[i] = t;
        const p = project(at), q = project([i == 0 ? t : mid[0], i == 1 ? t : mid[1], i == 2 ? t : mid[2]]);
        g.strokeStyle = "#888"; g.beginPath(); g.moveTo(p[0], p[1]);
        const dx = p[0] - q[0], dy = p[1] - q[1], n = Math.hypot(dx, dy) || 1;
        g.lineTo(p[0] + dx / n * 5, p[1] + dy / n * 5); g.stroke();
        label(String(t), p, q);
      }
    });
    g.fillStyle = "#000"; g.font = "bold 14px sans-serif";
    D.labels.forEach((name, i) => {
      const p = project(edge(i)), q = project(mid), dx = p[0] - q[0], dy = p[1] - q[1], n = Math.hypot(dx, dy) || 1;
      g.fillText(name, p[0] + dx / n * 42, p[1] + dy / n * 42);
    });
    g.textAlign = "start"; g.textBaseline = "alphabetic";
    const order = D.points.map((p, i) => [project(p), i]).sort((a, b) => b[0][2] - a[0][2]);
    for (const [p, i] of order) { g.fillStyle = D.colours[i]; g.fillRect(p[0] - 1.5, p[1] - 1.5, 3, 3); }
    D.centres.forEach((c, i) => {
      const p = project(c); g.beginPath(); g.arc(p[0], p[1], 9, 0, 2 * Math.PI);
      g.fillStyle = D.centre_colours[i]; g.fill(); g.lineWidth = 2; g.strokeStyle = "#000"; g.stroke();
    });
  }
  canvas.addEventListener("mousedown", e => { drag = [e.clientX, e.clientY]; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", e => {
    if (!drag) return;
    yaw -= (e.clientX - drag[0]) * 0.01;
    pitch = Math.max(-1.55, Math.min(1.55, pitch + (e.clientY - drag[1]) * 0.01));
    drag = [e.clientX, e.clientY]; draw();
  });
  canvas.addEventListener("wheel", e => { e.preventDefault(); zoom *= e.deltaY < 0 ? 1.1 : 1 / 1.1; draw(); },
                          {passive: false});
  draw();
  window.kcolorsReady = true;
})();
</script></body></html>
"""
