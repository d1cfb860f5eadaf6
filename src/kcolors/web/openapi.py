"""The OpenAPI 3.1 description of the kcolors web API, served at ``/api/openapi.json``.

Written by hand but for the options: the multipart bodies, binary answers and
the metrics header are what a client needs to know; the fields of a compress
come from the options table (:mod:`kcolors.table`), with those it refuses on
the web and why (``x-kcolors-refused``).
"""

from .. import __version__
from ..options import DITHER_METHODS, MAX_K, SEEDS
from ..table import OPTIONS, number, seed, table_for, whole

MB = 1024 * 1024


def _error(description):
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _errors(settings):
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}}
    return {
        "400": _error("Damaged or truncated image, empty file, malformed form data, a field given twice, or a "
                      "request with both Content-Length and Transfer-Encoding (then the connection is closed)"),
        "403": _error("A request from another origin: a browser's Origin or Sec-Fetch-Site header shows it "
                      "comes from a page other than this server's own (POST only from the same origin)"),
        "408": _error(f"The request sent nothing for {settings.read_timeout:g} s (headers or body)"),
        "413": _error(f"Upload over {settings.max_upload_bytes / MB:g} MB, image (any frame or page) over "
                      f"{settings.max_pixels:,} pixels (decompression-bomb guard), more than "
                      f"{settings.max_frames:,} frames, pages or images, or a job that would need over "
                      f"{settings.max_job_memory / MB:,.0f} MB of memory (estimated from the header)"),
        "415": _error("Not an image (or a format Pillow cannot read), or the body is not multipart/form-data"),
        "421": _error("The Host header names another server (DNS rebinding)"),
        "422": _error("A field is missing, unknown or out of range; the message names it"),
        "503": {**_error(f"All workers busy and the queue full, out of memory, or the image took over "
                         f"{settings.job_timeout:g} s; try again"), "headers": retry_after},
    }


IMAGE = {"type": "string", "format": "binary", "description": "The image file (any format Pillow reads)"}


def _table_fields():
    """The fields of ``POST /api/compress``, from the options table (:data:`kcolors.table.OPTIONS`): those any
    caller may set on the web, typed, with their range, default and help."""
    fields = {}
    for option in table_for("web"):
        schema = {"type": {whole: "integer", seed: "integer", number: "number"}.get(option.parse, "string"), "description": option.help}
        if option.choices:
            schema["enum"] = list(option.choices)
        if option.default is not None:
            schema["default"] = option.default
        fields[option.name] = schema
    fields["k"].update(minimum=1, maximum=MAX_K)
    fields["seed"].update(minimum=0, maximum=SEEDS - 1)
    fields["dither"].update(type="string", default="off")  # on, off or a strength
    return fields


def openapi_document(settings):
    """The OpenAPI document as a dict, with the server's own limits written in."""
    fields = _table_fields()
    compress_body = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": IMAGE, **fields},
        "x-kcolors-refused": {o.name: o.reason("web") for o in OPTIONS if o.reason("web")}}}}}
    sweep_body = {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["image"],
        "properties": {"image": IMAGE,
                       "k": {"type": "string", "default": "2-15",
                             "description": "The k of each frame: a range (2-15) or a list (2,4,8); at most 32"},
                       **{key: fields[key] for key in ("space", "dither", "dither_method", "seed")},
                       "format": {"type": "string", "enum": ["gif", "webp"], "default": "gif"},
                       "duration": {"type": "integer", "minimum": 20, "maximum": 10000, "default": 500,
                                    "description": "Milliseconds per frame"},
                       "max_side": {"type": "integer", "minimum": 0, "default": 0,
                                    "description": "Scale the picture down to this longer side first (0: as is)"}}}}}}
    metrics_header = {"X-Kcolors-Metrics": {"description": "The figures, as JSON (schema Metrics)",
                                            "schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "kcolors", "version": __version__,
                 "description": "Flatten images to k colours with k-means. Every error answer is JSON: "
                                "{\"error\": message, \"status\": code}."},
        "paths": {
            "/api/compress": {"post": {
                "summary": "Flatten an image to k colours; answer the indexed PNG (an animation: GIF, WebP or APNG)",
                "requestBody": compress_body,
                "responses": {"200": {"description": "The PNG; the figures in X-Kcolors-Metrics",
                                      "headers": metrics_header,
                                      "content": {media: {"schema": {"type": "string", "format": "binary"}}
                                                  for media in ("image/png", "image/gif", "image/webp")}},
                              **_errors(settings)}}},
            "/api/compress.json": {"post": {
                "summary": "The same as /api/compress, answered as JSON with the PNG in base64",
                "requestBody": compress_body,
                "responses": {"200": {"description": "Figures and PNG", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"metrics": {"$ref": "#/components/schemas/Metrics"},
                                                     "png_base64": {"type": "string"}}}}}},
                              **_errors(settings)}}},
            "/api/sweep": {"post": {
                "summary": "The animation over k (2-15 by default), smallest k first, ending on the original",
                "requestBody": sweep_body,
                "responses": {"200": {"description": "The animation",
                                      "headers": {"X-Kcolors-Frames": {
                                          "description": "JSON list naming each frame", "schema": {"type": "string"}}},
                                      "content": {"image/gif": {}, "image/webp": {}}},
                              **_errors(settings)}}},
            "/api/health": {"get": {"summary": "Liveness, load and limits",
                                    "responses": {"200": {"description": "{\"status\": \"ok\", ...}"}}}},
            "/api": {"get": {"summary": "The endpoints, each with its method and summary (this document in short)",
                             "responses": {"200": {"description": "{\"name\": \"kcolors\", \"endpoints\": "
                                                                  "[{\"method\", \"path\", \"summary\"}, ...]}"}}}},
            "/api/openapi.json": {"get": {"summary": "This document",
                                          "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error", "status"],
                      "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
            "Metrics": {"type": "object", "properties": {
                "input": {"type": "string", "description": "The upload's name (as kcolors compress --json)"},
                "output": {"type": "string", "description": "The download's name: STEM-kK.png, or .gif/.webp/.png for "
                                                            "an animation, kept in its own container"},
                "frames": {"type": "integer", "description": "An animation's frames, every one kept"},
                "target_missed": {"type": "string", "description": "Even 256 colours miss the quality target: "
                                                                   "the 256-colour result is the answer"},
                "width": {"type": "integer"}, "height": {"type": "integer"},
                "k": {"type": "integer"}, "space": {"type": "string"}, "engine": {"type": "string"},
                "dither": {"type": "number"},
                "dither_method": {"type": "string", "enum": list(DITHER_METHODS)}, "colors_in": {"type": "integer"}, "colors_out": {"type": "integer"},
                "psnr": {"type": ["number", "null"], "description": "dB; null when lossless"},
                "delta_e": {"type": "number", "description": "Mean CIEDE2000"},
                "delta_e_sample": {"type": ["integer", "null"],
                                   "description": "Pixels sampled for delta_e; null when exact"},
                "seconds": {"type": "number"},
                "palette": {"type": "array", "items": {"type": "string"}, "description": "#rrggbb (#rrggbbaa with alpha), most used first"},
                "shares": {"type": "array", "items": {"type": "number"}},
                "bytes_in": {"type": "integer"}, "bytes_out": {"type": "integer"},
                "notes": {"type": "array", "items": {"type": "string"},
                          "description": "How the file was read, a line each: \"photo.jpg: holds 2 images (MPO); "
                                         "the first was taken\" (a TIFF's pages, an animation's frames alike)"}}},
        }},
    }
