"""Checks for the JSON records a user hands nascomp (a saved student's ``quant_spec.json``, ...): a file that
is not UTF-8, not JSON, nested too deeply, not an object, or lacks a key becomes one error line that names
the file, the problem and the fix, never a traceback.

    spec = read_json_object(folder / "quant_spec.json", "quantization spec", CheckpointError)
    require_keys(spec, {"model": str, "wbits": int, "abits": int}, folder / "quant_spec.json")
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .errors import CheckpointError, UserError

REMAKE = "re-save it with the nascomp run that made it, or pass a finished run folder"


def read_json_object(path: str | Path, what: str = "quantization spec",
                     error: type[UserError] = CheckpointError) -> dict[str, Any]:
    """The JSON object in ``path``, or ``error`` with one line (unreadable, not UTF-8, not JSON, too deep,
    not an object)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{what} {path} is not UTF-8 text (byte {e.start}); {REMAKE}") from None
    except OSError as e:
        raise error(f"{what} {path} cannot be read ({e.strerror or type(e).__name__}); check that it exists and "
                    "its permissions") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(f"{what} {path} is not valid JSON ({e.msg}, line {e.lineno}); {REMAKE}") from None
    except RecursionError:
        raise error(f"{what} {path} is JSON nested too deeply; {REMAKE}") from None
    if not isinstance(data, dict):
        raise error(f"{what} {path} is not a JSON object (it holds a {_json_type(data)}); {REMAKE}")
    return data


def require_keys(obj: Any, keys: Iterable[str] | Mapping[str, type | tuple[type, ...]], path: str | Path,
                 what: str = "quantization spec", error: type[UserError] = CheckpointError) -> dict[str, Any]:
    """``obj`` itself when it is a JSON object holding every key of ``keys`` (of the given types, where
    ``keys`` maps names to types; ``bool`` never passes for ``int``), else ``error`` with one line naming the
    file and the first missing or mistyped key."""
    if not isinstance(obj, dict):
        raise error(f"{what} {path} is not a JSON object (it holds a {_json_type(obj)}); {REMAKE}")
    types = keys if isinstance(keys, Mapping) else dict.fromkeys(keys)
    missing = [k for k in types if k not in obj]
    if missing:
        shown = ", ".join(repr(k) for k in missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise error(f"{what} {path} lacks {'key' if len(missing) == 1 else 'keys'} {shown}; {REMAKE}")
    for key, expected in types.items():
        if expected is None:
            continue
        value = obj[key]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
            names = " or ".join(_type_name(t) for t in allowed)
            raise error(f"{what} {path}: {key!r} must be {names}, not {_json_type(value)} {value!r:.40}; {REMAKE}")
    return obj


def _type_name(t: type) -> str:
    return {str: "a string", int: "a whole number", float: "a number", bool: "true/false", list: "a list",
            dict: "an object", type(None): "null"}.get(t, t.__name__)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {dict: "object", list: "list", str: "string", int: "number", float: "number",
            type(None): "null"}.get(type(value), type(value).__name__)
