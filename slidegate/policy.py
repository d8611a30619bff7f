"""Strict YAML-backed models: an unknown key is a load error that names the file and the key."""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from slidegate import safeyaml
from slidegate.errors import PolicyError


class StrictModel(BaseModel):
    """Frozen, and unknown fields are errors, not no-ops."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=StrictModel)


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Load `path` into `model`; any problem raises PolicyError naming file, key and fix."""
    try:
        text = safeyaml.read_text(path)
    except OSError as exc:
        raise PolicyError(
            f"cannot read policy file {path}: {exc.strerror}; check the path"
        ) from None
    except UnicodeDecodeError:
        raise PolicyError(
            f"policy file {path} is not UTF-8 text (a binary file?); give the YAML file"
        ) from None
    except safeyaml.UnsafeYamlError as exc:
        raise PolicyError(f"policy file {path} is refused: {exc}") from None
    try:
        data = safeyaml.loads(text)
    except safeyaml.UnsafeYamlError as exc:
        raise PolicyError(f"policy file {path} is refused: {exc}") from None
    except yaml.YAMLError as exc:
        raise PolicyError(
            f"policy file {path} is not valid YAML: {safeyaml.describe(exc)}"
        ) from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} must hold a mapping at top level")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown key '{where}' (remove it or fix its spelling)")
            else:
                problems.append(f"'{where}': {err['msg']}")
        raise PolicyError(f"policy file {path} is invalid: " + "; ".join(problems)) from None
