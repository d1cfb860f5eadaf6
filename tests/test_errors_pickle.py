"""kcolors' errors: each crosses a process boundary whole (batch's workers send them back pickled), and a
missing file is also the FileNotFoundError Python code expects."""

import errno
import io
import pickle

import numpy as np
import pytest
from PIL import Image

import kcolors
import kcolors.io
from kcolors import errors
from kcolors.errors import InputError, KcolorsError, MissingFileError, Terminated, UsageError

from conftest import one_error_line, run_cli


def every_error_class():
    """Every subclass of KcolorsError the package defines (kcolors.errors and any other module), and Terminated."""
    found, todo = set(), [KcolorsError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("kcolors"):
            found.add(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found | {Terminated}, key=lambda cls: cls.__qualname__)


ERROR_CLASSES = every_error_class()


def test_the_list_holds_every_class_of_the_errors_module():
    defined = {value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, BaseException) and value.__module__ == errors.__name__}
    assert defined <= set(ERROR_CLASSES)
    assert MissingFileError in ERROR_CLASSES and UsageError in ERROR_CLASSES


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_an_error_survives_a_pickle_round_trip(cls):
    sent = cls("photo.png: something went wrong, said in one line")
    back = pickle.loads(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL))
    assert type(back) is cls
    assert str(back) == str(sent) == "photo.png: something went wrong, said in one line"
    assert back.exit_code == sent.exit_code == cls.exit_code
    assert back.args == sent.args


def test_a_missing_file_error_keeps_its_file_name_and_errno_through_a_pickle():
    sent = MissingFileError("nothere.png: no such file", filename="nothere.png")
    back = pickle.loads(pickle.dumps(sent))
    assert (type(back), str(back), back.filename, back.errno, back.exit_code) == (
        MissingFileError, "nothere.png: no such file", "nothere.png", errno.ENOENT, 3)


# --------------------------------------------------------------------------- a missing file


def test_quantize_of_a_missing_file_raises_file_not_found(tmp_path):
    missing = tmp_path / "nothere.png"
    for catch in (FileNotFoundError, OSError, InputError, KcolorsError):
        with pytest.raises(catch) as caught:
            kcolors.quantize(missing, 8)
        assert str(caught.value) == f"{missing}: no such file"
        assert caught.value.exit_code == 3
        assert caught.value.errno == errno.ENOENT and caught.value.filename == str(missing)


def test_a_missing_file_in_the_working_folder_is_a_file_not_found_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"^nothere\.png: no such file$"):
        kcolors.quantize("nothere.png", 8)


def test_a_missing_palette_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such palette file") as caught:
        kcolors.Palette.load(tmp_path / "gone.gpl")
    assert isinstance(caught.value, InputError) and caught.value.exit_code == 3


def test_the_command_line_still_says_a_missing_file_in_one_line_with_exit_3(tmp_path):
    proc = run_cli(tmp_path / "nothere.png", "-o", tmp_path / "out.png")
    assert proc.returncode == 3
    assert one_error_line(proc) == f"kcolors: {tmp_path / 'nothere.png'}: no such file"
    assert not (tmp_path / "out.png").exists()


def test_other_read_failures_are_not_file_not_found(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError) as caught:
        kcolors.quantize(tmp_path / "empty.png", 8)
    assert not isinstance(caught.value, OSError)
    with pytest.raises(InputError) as caught:
        kcolors.quantize(tmp_path, 8)  # a folder
    assert not isinstance(caught.value, OSError)


@pytest.mark.parametrize("raised", [MissingFileError("inner.png: no such file", filename="inner.png"),
                                    UsageError("an option out of range")], ids=["MissingFileError", "UsageError"])
def test_the_decoder_passes_kcolors_own_errors_on_unreworded(monkeypatch, raised):
    """io.decode words Pillow's OSError and ValueError as "damaged or truncated"; kcolors' own errors (a
    MissingFileError is an OSError, a UsageError a ValueError) keep their class and their line."""
    def refuse(*args, **kwargs):
        raise raised

    monkeypatch.setattr(kcolors.io, "read_header", refuse)
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(buffer, "PNG")
    with pytest.raises(type(raised)) as caught:
        kcolors.load_image(buffer.getvalue())
    assert caught.value is raised and "damaged" not in str(caught.value)
